"""Hung cases (挂账): a state of their own.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04

A case that cannot be solved now (no funds, it needs a project) is parked with a reason and a review date: its
clock stops, it stays open and is counted apart in the figures, never dropped from them. ``events.state`` takes
``hung``; the reason and the review date are the ``hang`` step's note and data.
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

STATES = ("reported", "accepted", "rejected", "dispatched", "suspended", "handled", "verified", "closed", "merged")


def _check(states: tuple[str, ...]) -> str:
    return f"state IN ({', '.join(repr(s) for s in states)})"


def upgrade() -> None:
    op.execute("ALTER TABLE events DROP CONSTRAINT events_state_check")
    op.execute(f"ALTER TABLE events ADD CONSTRAINT events_state_check CHECK ({_check((*STATES, 'hung'))})")


def downgrade() -> None:
    op.execute("UPDATE events SET state = 'suspended' WHERE state = 'hung'")
    op.execute("ALTER TABLE events DROP CONSTRAINT events_state_check")
    op.execute(f"ALTER TABLE events ADD CONSTRAINT events_state_check CHECK ({_check(STATES)})")
