"""Indexes that let a period's figures skip the cases closed before the period (the big screen, the bulletin, KPIs).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05

``events_clock_idx`` indexes each case's latest clock, ``greatest(reported_at, dispatched_at, due_at, closed_at,
supervision_due_at)`` (``greatest`` skips NULLs). A case whose clocks all fell before a period's start took no part
in it unless it is still open (``events_open_idx``, a few thousand rows) or was sent back in it
(``event_transitions_return_idx``: the returns alone, which the figures also count per case).
``gis.oversight.store.kpis`` asks for exactly these three, which the planner combines (BitmapOr), so a month of a
city with years of history reads the month's cases, not all of them.
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

OPEN = "('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified', 'hung')"


def upgrade() -> None:
    op.execute("CREATE INDEX events_clock_idx ON events "
               "(greatest(reported_at, dispatched_at, due_at, closed_at, supervision_due_at))")
    op.execute(f"CREATE INDEX events_open_idx ON events (reported_at) WHERE state IN {OPEN}")
    op.execute("CREATE INDEX event_transitions_return_idx ON event_transitions (event_id, at) "
               "WHERE action = 'return'")


def downgrade() -> None:
    op.execute("DROP INDEX event_transitions_return_idx")
    op.execute("DROP INDEX events_open_idx")
    op.execute("DROP INDEX events_clock_idx")
