"""Grid versions: every saved change is a new version with who, when and why.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grids", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("grids", sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                                     nullable=False))
    op.create_table(
        "grid_versions",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("grid_id", sa.Integer(), nullable=False),  # no FK: a deleted grid keeps its history
        sa.Column("code", sa.String(15), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="grid_versions_interval_check"),
        sa.UniqueConstraint("grid_id", "version", name="grid_versions_key"),
    )
    op.create_index("grid_versions_geom_idx", "grid_versions", ["geom"], postgresql_using="gist")
    op.create_index("grid_versions_code_idx", "grid_versions", ["code"])
    # grids that exist already (from a division) get their first version
    op.execute("""
        INSERT INTO grid_versions (grid_id, code, version, community_id, geom, valid_from, change, author, reason)
        SELECT id, code, 1, community_id, geom, created_at, 'division', 'gridpatrol', 'automatic division'
        FROM grids
    """)


def downgrade() -> None:
    op.drop_index("grid_versions_code_idx", table_name="grid_versions")
    op.drop_index("grid_versions_geom_idx", table_name="grid_versions")
    op.drop_table("grid_versions")
    op.drop_column("grids", "updated_at")
    op.drop_column("grids", "version")
