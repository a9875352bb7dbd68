"""What the public may see: categories that are public, reports whose reporter published them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

Open311's reads are public. A category now says whether its events may be shown there at all
(``categories.public``): a social-governance matter (a dispute, a resident in need) or a police route never is,
and a CHECK keeps it so. A report says whether its reporter chose to publish its description and photo
(``events.published``, false unless they did): ``gridpatrol_intake_batch`` stores the choice with a new event, in
the same call. The function's text is the frozen copy ``0015_intake_batch.sql`` beside this file.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

from gis.db.migrate import revision_module

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE categories ADD COLUMN public boolean NOT NULL DEFAULT true")
    op.execute("UPDATE categories SET public = false WHERE kind = 'social' OR route = 'police'")
    op.execute("ALTER TABLE categories ADD CONSTRAINT categories_never_public "
               "CHECK (NOT public OR (kind <> 'social' AND route <> 'police'))")
    op.execute("ALTER TABLE events ADD COLUMN published boolean NOT NULL DEFAULT false")  # no rewrite: a default
    op.execute(Path(__file__).with_name("0015_intake_batch.sql").read_text())


def downgrade() -> None:
    op.execute(revision_module("0010_intake_batches.py").INTAKE_BATCH)
    op.execute("ALTER TABLE events DROP COLUMN published")
    op.execute("ALTER TABLE categories DROP CONSTRAINT categories_never_public")
    op.execute("ALTER TABLE categories DROP COLUMN public")
