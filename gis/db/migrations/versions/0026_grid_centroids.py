"""Each grid's centroid, stored: the point the grids' vector tiles draw for it below zoom 12.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05

A province's overview tile holds thousands of grids; computing their points per request was most of its cost. The
column is generated (``ST_Centroid(geom)``, which never fails on an odd outline), so every write of a grid keeps
it true with no code of its own.
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE grids ADD COLUMN centroid geometry(Point, 4326) "
               "GENERATED ALWAYS AS (ST_Centroid(geom)) STORED")
    op.execute("CREATE INDEX grids_centroid_idx ON grids USING gist (centroid)")


def downgrade() -> None:
    op.execute("ALTER TABLE grids DROP COLUMN centroid")
