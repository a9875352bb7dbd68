"""Imports of historic events as records of their own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A file loaded in bulk wrote one ``import`` step per event into ``event_transitions``: 200,000 copies of the same
actor and note, and an eighth of the import's time (three more index entries per row). The import is now one
``event_imports`` row per file and state (the file's cases closed at import, and those still open), which each
imported event points to (``events.import_id``); an event's history shows it as its first step, as before
(``gis.db.events.history``). Events imported before this migration keep their ``import`` steps.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_name", sa.String(200), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("state IN ('dispatched', 'closed')", name="event_imports_state_check"),
    )
    op.add_column("events", sa.Column("import_id", sa.Integer, sa.ForeignKey("event_imports.id"), nullable=True))


def downgrade() -> None:
    # the imports' steps come back as rows, as they were written before
    op.execute("""
        INSERT INTO event_transitions (event_id, action, from_state, to_state, actor, role, at, note)
        SELECT e.id, 'import', NULL, i.state, i.author, 'system', e.reported_at, i.note
        FROM events e JOIN event_imports i ON i.id = e.import_id""")
    op.drop_column("events", "import_id")
    op.drop_table("event_imports")
