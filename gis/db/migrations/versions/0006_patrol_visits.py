"""Patrol visits: what grid members log (a patrol with its GPS track, the buildings they visited), the proof
behind compliance and coverage.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_visits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="SET NULL")),
        sa.Column("grid_code", sa.String(15), nullable=False),
        sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id", ondelete="SET NULL")),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("track", Geometry("LINESTRING", srid=4326, spatial_index=False)),
        sa.Column("tolerance_m", sa.Double, nullable=False),
        sa.Column("required_m", sa.Double, nullable=False),
        sa.Column("walked_m", sa.Double, nullable=False),
        sa.Column("segments_required", sa.Integer, nullable=False),
        sa.Column("segments_walked", sa.Integer, nullable=False),
        sa.Column("buildings", ARRAY(sa.Integer), nullable=False, server_default="{}"),
        sa.Column("unknown_buildings", ARRAY(sa.Integer), nullable=False, server_default="{}"),
        sa.Column("walked_segments", JSONB, nullable=False, server_default="[]"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('basic', 'inspection', 'budgeted')", name="patrol_visits_kind_check"),
        sa.CheckConstraint("ended_at >= started_at", name="patrol_visits_time_check"),
    )
    op.create_index("patrol_visits_grid_time_idx", "patrol_visits", ["grid_code", "started_at"])
    op.create_index("patrol_visits_staff_idx", "patrol_visits", ["staff_id", "started_at"])
    op.create_index("patrol_visits_track_idx", "patrol_visits", ["track"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("patrol_visits")
