"""The offline basemap: what the city's own OSM extract holds beyond the city model (roads by class with their
names, railways, water, green areas, land use, place names, landmarks), cut into vector tiles for the pages.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05

Stored in Web Mercator (EPSG:3857), the tiles' own system, so that a tile is cut without reprojecting a row;
``minzoom`` (decided at import, ``gis.geo.basemap``) keeps a low-zoom tile to what reads at that scale.
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE basemap_features (
            id bigserial PRIMARY KEY,
            city_id integer NOT NULL REFERENCES admin_units (id) ON DELETE CASCADE,
            layer varchar(16) NOT NULL,
            kind varchar(32) NOT NULL,
            name text,
            name_en text,
            ref text,
            minzoom smallint NOT NULL,
            geom geometry(Geometry, 3857) NOT NULL,
            CONSTRAINT basemap_features_layer_check
                CHECK (layer IN ('water', 'green', 'landuse', 'waterways', 'roads', 'rail', 'places', 'pois'))
        )""")
    op.execute("CREATE INDEX basemap_features_geom_idx ON basemap_features USING gist (geom)")
    op.execute("CREATE INDEX basemap_features_city_idx ON basemap_features (city_id)")


def downgrade() -> None:
    op.execute("DROP TABLE basemap_features")
