"""What the grid member's phone page needs: photos, idempotent visits, volunteer tasks.

* ``photos``: pictures attached to reports and feedback, stored in the database (a few hundred kB each, at most
  ``gis.db.member.MAX_PHOTO_BYTES``), addressed by their SHA-256 (``photo:<hex>``): the same picture sent twice
  (a retry from a phone's queue) is stored once.
* ``patrol_visits.idempotency_key``: a visit logged offline and sent again when the signal returns is stored once;
  ``patrol_visits.position``: where the member was when they logged it (a phone's position, WGS-84).
* ``volunteer_tasks``: tasks a community posts for a grid ("residents order, the community posts, members take
  the order"), taken and closed by a member or a volunteer.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TASK_STATES = ("open", "taken", "closed")


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("uploaded_by", sa.String(64)),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.add_column("patrol_visits", sa.Column("idempotency_key", sa.String(128)))
    op.create_unique_constraint("patrol_visits_idempotency_key_key", "patrol_visits", ["idempotency_key"])
    op.add_column("patrol_visits", sa.Column("position", Geometry("POINT", srid=4326, spatial_index=False)))
    op.create_index("patrol_visits_position_idx", "patrol_visits", ["position"], postgresql_using="gist")
    op.create_table(
        "volunteer_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("grid_code", sa.String(15), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.String(8), nullable=False, server_default="open"),
        sa.Column("posted_by", sa.String(64), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("taken_by", sa.String(64)),
        sa.Column("taken_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("state IN (" + ", ".join(repr(s) for s in TASK_STATES) + ")",
                           name="volunteer_tasks_state_check"),
    )
    op.create_index("volunteer_tasks_grid_idx", "volunteer_tasks", ["grid_code", "state"])


def downgrade() -> None:
    op.drop_table("volunteer_tasks")
    op.drop_index("patrol_visits_position_idx", "patrol_visits")
    op.drop_column("patrol_visits", "position")
    op.drop_constraint("patrol_visits_idempotency_key_key", "patrol_visits")
    op.drop_column("patrol_visits", "idempotency_key")
    op.drop_table("photos")
