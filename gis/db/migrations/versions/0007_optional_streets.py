"""Streets a planner marks optional in a grid's basic patrol: the route may walk them but need not (the rural
postman on the remaining, required streets), and coverage does not count them as streets to patrol.

Keyed by the grid's code (stable across boundary edits; a split or merge retires it) and the walk network's
undirected segment (least(u, v), greatest(u, v), key).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_optional_streets",
        sa.Column("grid_code", sa.String(15), primary_key=True),
        sa.Column("u", sa.BigInteger, primary_key=True),
        sa.Column("v", sa.BigInteger, primary_key=True),
        sa.Column("key", sa.Integer, primary_key=True),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("u <= v", name="patrol_optional_streets_order_check"),
    )


def downgrade() -> None:
    op.drop_table("patrol_optional_streets")
