"""Events indexed by the time they were reported, instead of by category and time.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

The (category, reported_at) index served the duplicate check of migration 0004, which the open events' spatial
index has served since migration 0005. What reads events by time does so without a category: Open311's
``requests.json`` (the last 90 days by default, a category only if asked), the leaders' maps and figures of a
period. An index on ``reported_at`` alone serves them all (with a category, as a filter on the period's rows); it
is also cheaper to keep, a number instead of a text and a number (a bulk import builds it in half the time).
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX events_category_time_idx")  # with each partition's
    op.execute("CREATE INDEX events_reported_idx ON events (reported_at)")


def downgrade() -> None:
    op.execute("DROP INDEX events_reported_idx")
    # the live partition's under the name migration 0012 gave it (its downgrade renames it back)
    op.execute("CREATE INDEX events_live_category_time_idx ON events_live (category_code, reported_at)")
    op.execute("CREATE INDEX events_category_time_idx ON events (category_code, reported_at)")
