"""An index of the open cases that lie on no grid, for the event clusters of the low zooms.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06

Up to zoom 10 an event tile's clusters are counted from the grids' rows, which carry their open cases and
deadlines (migrations 0033, 0034), not from the cases themselves (a province's zoom-10 tile covers tens of
thousands): ``gis.dispatch.store.tiles``. The cases that lie on no grid (outside every grid, or reported before the
grids were drawn) are still read one by one; ``events_gridless_geom_idx`` holds only those, so the tile reads them
through the tile's box without passing over the others. Where a city has no grids yet, it holds all its open
cases and the tile reads them as before.
"""

from __future__ import annotations

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

OPEN = "('reported', 'accepted', 'dispatched', 'suspended', 'handled', 'verified', 'hung')"


def upgrade() -> None:
    op.execute(f"CREATE INDEX events_gridless_geom_idx ON events USING gist (geom) "
               f"WHERE grid_id IS NULL AND state IN {OPEN}")


def downgrade() -> None:
    op.execute("DROP INDEX events_gridless_geom_idx")
