"""Buildings the city knows by its own id, and buildings the city adds that OSM lacks.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04

``buildings.ref`` is the city's own building id (楼栋编码), unique in the city: a household register can name a
building by it. A footprint from the city's file (``gridpatrol import-buildings``) is stored with ``osm_type``
``city`` (its ``osm_id`` derived from the ref), and an OSM re-import leaves such buildings alone.
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE buildings ADD COLUMN ref text")
    op.execute("CREATE UNIQUE INDEX buildings_ref_key ON buildings (city_id, ref) WHERE ref IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX buildings_ref_key")
    op.execute("ALTER TABLE buildings DROP COLUMN ref")
