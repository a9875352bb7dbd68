"""Which events and steps show a photo: so that a photo goes only to those who may see one of them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

``GET /photos/{key}`` served any photo to any signed-in user. It now looks for the events (``events.photos``) and
the steps (``event_transitions.data -> 'photos'``) that show the photo, and serves it to whoever may see one of them
(and to its uploader). Both lookups get a GIN index over only the rows that have photos: most events (every bulk
row) have none, and leave the index alone.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX events_photos_idx ON events USING gin (photos jsonb_path_ops) "
               "WHERE photos <> '[]'::jsonb")
    op.execute("CREATE INDEX event_transitions_photos_idx ON event_transitions USING gin (data jsonb_path_ops) "
               "WHERE data ? 'photos'")


def downgrade() -> None:
    op.execute("DROP INDEX event_transitions_photos_idx")
    op.execute("DROP INDEX events_photos_idx")
