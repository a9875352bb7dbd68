"""The leaders' coverage reports, computed once for every instance of the service and kept for a minute.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05

Coverage is computed for a whole city at once (seconds on a large one). Each worker kept its own copy; with
several instances on a cluster every one of them computed it. ``coverage_cache`` holds the report (JSON, the
response circles as WKB in hex) under its parameters; the one computing holds an advisory lock on the key, so the
others wait for its result instead of computing it again (``gis.oversight.store.leaders.cached_coverage``). A
logged table: the replicas, where the leaders' reads go, hold it too.
"""

from __future__ import annotations

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE coverage_cache (
        key text PRIMARY KEY,
        computed_at timestamptz NOT NULL DEFAULT now(),
        report jsonb NOT NULL)""")


def downgrade() -> None:
    op.execute("DROP TABLE coverage_cache")
