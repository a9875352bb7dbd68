"""Divisions and the code registry: generated hierarchies, and codes that are never reused.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "divisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("admin_units.id", ondelete="CASCADE"), nullable=False),
        sa.Column("grid_low", sa.Integer(), nullable=False),
        sa.Column("grid_high", sa.Integer(), nullable=False),
        sa.Column("report", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "unit_codes",
        sa.Column("code", sa.String(15), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(15), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_why", sa.Text(), nullable=True),
        sa.CheckConstraint("seq BETWEEN 1 AND 999", name="unit_codes_seq_check"),
    )
    op.create_index("unit_codes_parent_idx", "unit_codes", ["parent_code"])
    op.add_column("admin_units", sa.Column("division_id", sa.Integer(),
                                           sa.ForeignKey("divisions.id", ondelete="SET NULL"), nullable=True))
    op.add_column("grids", sa.Column("division_id", sa.Integer(),
                                     sa.ForeignKey("divisions.id", ondelete="SET NULL"), nullable=True))
    op.add_column("grids", sa.Column("source", sa.String(16), server_default="generated", nullable=False))
    op.add_column("grids", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("grids", "note")
    op.drop_column("grids", "source")
    op.drop_column("grids", "division_id")
    op.drop_column("admin_units", "division_id")
    op.drop_index("unit_codes_parent_idx", table_name="unit_codes")
    op.drop_table("unit_codes")
    op.drop_table("divisions")
