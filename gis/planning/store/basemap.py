"""The offline basemap in PostGIS: stored at import from the city's own OSM extract (``gis.geo.basemap`` reads
it), rebuilt by ``gridpatrol basemap build``, and cut into one Mapbox vector tile per request with a layer per
theme (water, green, landuse, waterways, roads, rail, buildings, places, pois), which ``maps/static/basemap.js``
styles and draws under every map of the service.

A basemap is public OpenStreetMap data and the context of every map: its tiles are the same for every signed-in
user and are not cut to a jurisdiction (the city model's and the cases' tiles are). A tile holds the features whose
``minzoom`` it has reached; outlines are simplified to half a pixel of the zoom.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from psycopg2.extensions import cursor as Cursor
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from gis.db import mvt
from gis.db.engine import raw_transaction
from gis.geo.basemap import LAYERS, Basemap, read_basemap
from gis.geo.tiles import BUFFER, EXTENT, tolerance_m
from gis.planning.store.city import find_city
from gis.planning.store.load import copy_rows, ewkb_hex

BUILDINGS_MINZOOM = 14
LINE_LAYERS = ("roads", "rail", "waterways")
"""Layers whose ways are merged into one line per named road or river (OSM splits them at every change of tag),
so that a street's name is placed along the street rather than along each short piece."""
FIELDS = "kind, name, name_en, ref"


@dataclass
class BasemapReport:
    city: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        shown = ", ".join(f"{layer} {n:,}" for layer, n in self.counts.items())
        return [f"basemap of {self.city}: {shown} ({self.seconds:.1f} s)"]


def load_basemap(cur: Cursor, basemap: Basemap, *, city_id: int) -> dict[str, int]:
    """Replace a city's basemap with ``basemap``, inside the caller's transaction; the rows stored per layer."""
    cur.execute("CREATE TEMP TABLE basemap_in (layer text, kind text, name text, name_en text, ref text, "
                "minzoom smallint, geom geometry(Geometry, 4326)) ON COMMIT DROP")
    features = basemap.features
    geoms = ewkb_hex(f.geometry for f in features)
    copy_rows(cur, "basemap_in", ("layer", "kind", "name", "name_en", "ref", "minzoom", "geom"),
              ((f.layer, f.kind, f.name, f.name_en, f.ref, f.minzoom, g) for f, g in zip(features, geoms, strict=True)))
    cur.execute("DELETE FROM basemap_features WHERE city_id = %s", (city_id,))
    cur.execute("""
        INSERT INTO basemap_features (city_id, layer, kind, name, name_en, ref, minzoom, geom)
        SELECT %(city)s, layer, kind, name, name_en, ref, minzoom, ST_Transform(geom, 3857)
        FROM basemap_in WHERE layer <> ALL(%(lines)s)
        UNION ALL
        SELECT %(city)s, layer, kind, name, name_en, ref, minzoom, (ST_Dump(ST_LineMerge(ST_Collect(geom)))).geom
        FROM (SELECT layer, kind, name, name_en, ref, minzoom, ST_Transform(geom, 3857) AS geom
              FROM basemap_in WHERE layer = ANY(%(lines)s)) l
        GROUP BY layer, kind, name, name_en, ref, minzoom""", {"city": city_id, "lines": list(LINE_LAYERS)})
    cur.execute("SELECT layer, count(*) FROM basemap_features WHERE city_id = %s GROUP BY layer", (city_id,))
    stored = dict(cur.fetchall())
    cur.execute("DROP TABLE basemap_in")
    return {layer: int(stored.get(layer, 0)) for layer in LAYERS}


def build_basemap(engine: Engine, path: str | Path, *, city: str,
                  progress: Callable[[str], None] | None = None) -> BasemapReport:
    """Rebuild an imported city's basemap from an OSM file (``gridpatrol basemap build``), cut to the city's
    extent; the old basemap stays until the new one is stored whole."""
    started = time.perf_counter()
    with engine.connect() as conn:
        found = find_city(conn, city)
        extent = conn.execute(text("SELECT ST_AsBinary(ST_Envelope(geom)) FROM admin_units WHERE id = :id"),
                              {"id": found.id}).scalar()
    bounds = shapely.from_wkb(bytes(extent)) if extent is not None else None
    basemap = read_basemap(path, bounds=bounds, progress=progress)
    with raw_transaction(engine) as cur:
        counts = load_basemap(cur, basemap, city_id=found.id)
    return BasemapReport(city=found.name_en or found.name, counts=counts, seconds=time.perf_counter() - started)


def _layer_sql(name: str, rows: str, *, simplify: bool) -> str:
    geom = "ST_Simplify(r.geom, :tolerance, true)" if simplify else "r.geom"
    return f"""coalesce((SELECT ST_AsMVT(t, '{name}', {EXTENT}, 'g') FROM (
        SELECT ST_AsMVTGeom({geom}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS g, {FIELDS}
        FROM ({rows}) r) t WHERE t.g IS NOT NULL), ''::bytea)"""


def _rows(layer: str, order: str = "") -> str:
    return (f"SELECT geom, {FIELDS} FROM basemap_features WHERE layer = '{layer}' AND minzoom <= :level "
            f"AND geom && ST_TileEnvelope(:z, :x, :y, margin => :margin){order}")


_BUILDINGS = f"""SELECT ST_Transform(geom, 3857) AS geom, 'building'::text AS kind, name, NULL::text AS name_en,
    NULL::text AS ref FROM buildings
    WHERE :level >= {BUILDINGS_MINZOOM}
      AND geom && ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => :margin), 4326)"""

_TILE_SQL = "SELECT " + " || ".join([
    _layer_sql("water", _rows("water"), simplify=True),
    _layer_sql("green", _rows("green"), simplify=True),
    _layer_sql("landuse", _rows("landuse"), simplify=True),
    _layer_sql("waterways", _rows("waterways"), simplify=True),
    _layer_sql("rail", _rows("rail"), simplify=True),
    _layer_sql("buildings", _BUILDINGS, simplify=True),
    _layer_sql("roads", _rows("roads"), simplify=True),
    _layer_sql("places", _rows("places", " ORDER BY minzoom"), simplify=False),
    _layer_sql("pois", _rows("pois", " ORDER BY minzoom"), simplify=False),
])


TILE_SIZES = (256, 512)


def basemap_tile(conn: Connection, z: int, x: int, y: int, *, tile_size: int = 256) -> bytes:
    """The basemap tile ``z/x/y`` (every city's features there): one Mapbox vector tile with a layer per theme,
    empty bytes where there is nothing.

    ``tile_size`` is the pixels the client draws a tile at: 256 (Leaflet, QGIS) or 512 (MapLibre GL, which draws
    each tile over four 256-pixel ones, one zoom level down). A 512-pixel tile holds what a 256-pixel one of the
    next zoom would, at its detail, so that a street shows at the same scale on every client."""
    level = z + (1 if tile_size == 512 else 0)
    params: dict[str, Any] = {"z": z, "x": x, "y": y, "level": level, "margin": BUFFER / EXTENT,
                              "tolerance": tolerance_m(level)}
    return mvt.run(conn, _TILE_SQL, params)


def basemap_built(conn: Connection) -> bool:
    """Whether any city's basemap has been built."""
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM basemap_features)")).scalar())
