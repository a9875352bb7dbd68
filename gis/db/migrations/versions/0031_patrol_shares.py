"""A grid's basic patrol shared among its people: how many parts, and each part's streets, as the planner set it.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05

``parts`` is a JSON list, one list per part of its street segments ``[u, v, key]`` (the walk network's
``(least, greatest, key)``): the split is computed once, when it is set (``PUT /grids/{code}/patrols/share``), so
that the schedule and each member's "today's route" name the same parts week after week (a split computed again
could differ: its local search is time-limited).
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE patrol_shares (
        grid_code varchar(15) PRIMARY KEY REFERENCES grids (code) ON DELETE CASCADE,
        k smallint NOT NULL CONSTRAINT patrol_shares_k_check CHECK (k BETWEEN 2 AND 8),
        parts jsonb NOT NULL,
        lengths_m double precision[] NOT NULL,
        set_at timestamptz NOT NULL DEFAULT now())""")


def downgrade() -> None:
    op.execute("DROP TABLE patrol_shares")
