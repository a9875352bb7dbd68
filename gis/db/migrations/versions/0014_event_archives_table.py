"""A record of each archive partition of events.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

A large historic file's closed cases are now built as several archive partitions at once, one per processor
(``gis.db.bulk``): a partition's key value (``events.archive``) can no longer be the import's id. It is the id of
its row here, which says which import it holds and how many cases. The archives migration 0012 made (keyed by
their import's id) get their rows, under the same ids.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_archives",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("event_imports.id"), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute("""
        INSERT INTO event_archives (id, import_id, rows)
        SELECT e.archive, e.archive, count(*) FROM events e WHERE e.archive <> 0 GROUP BY e.archive""")
    op.execute("SELECT setval('event_archives_id_seq', greatest((SELECT max(id) FROM event_archives), 1))")


def downgrade() -> None:
    op.drop_table("event_archives")
