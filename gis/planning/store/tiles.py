"""Mapbox vector tiles of the city model, built in PostGIS (``ST_AsMVT``, ``ST_AsMVTGeom``, ``ST_TileEnvelope``):
admin units, grids with the figures the maps colour by, buildings, streets with their names, key places. Each
tile holds only the rows of the caller's jurisdiction (the layers' rules in ``gis.planning.store.city``), read
through the GiST index of the tile's WGS-84 box, outlines simplified to half a pixel of its zoom before encoding,
and per zoom only what reads at that scale (no buildings below zoom 14, only main roads below 13, …)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.access.scope import Scope
from gis.db import mvt
from gis.geo.tiles import GRID_OUTLINES_FROM, search_box, tile_layer
from gis.planning.queries import GRID_CITY, GRID_OPEN, GRID_OVERDUE, GRID_PENDING
from gis.planning.store.city import LAYERS, _where

MAIN_ROADS = ("motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link", "trunk_link", "primary_link",
              "secondary_link", "tertiary_link")
LOCAL_ROADS = ("residential", "unclassified", "living_street", "road")


def encode(conn: Connection, name: str, rows_sql: str, params: dict[str, Any], z: int, x: int, y: int, *,
           simplify: bool, fields: tuple[str, ...] | None = None) -> bytes:
    return mvt.encode(conn, name, rows_sql, params, z, x, y, fields=fields or tuple(tile_layer(name).fields),
                      simplify=simplify)


GRID_TILE_ROWS = replace(LAYERS["grids"], table="grids",
                         city=GRID_CITY.format(alias="grids"))
"""The grids layer's rows for a tile: the grid rows themselves, which carry their figures (migration 0033), the
city looked up only for a jurisdiction inside one city, not joined to every grid (a zoom-10 tile holds thousands)."""

GRID_POINT_FIELDS = ("households", "open", "open_overdue")
"""What a grid's point carries below zoom 12: the figures a map colours by, nothing else (a province's overview
tile holds thousands of them)."""


def city_tile(conn: Connection, name: str, z: int, x: int, y: int, *, scope: Scope | None) -> bytes:
    """A tile of one of the city model's layers (``admin_units``, ``grids``, ``buildings``, ``streets``,
    ``key_places``), empty below the layer's minimum zoom."""
    layer = tile_layer(name)
    if z < layer.minzoom:
        return b""
    box = search_box(z, x, y)
    if name == "streets":
        return _streets(conn, z, x, y, box, scope)
    # a grid tile reads its rows without the unit join (GRID_TILE_ROWS); the other layers as the API does
    where, params = _where(GRID_TILE_ROWS if name == "grids" else LAYERS[name], box, {}, scope)
    if name == "admin_units":
        levels = ["city", "district"] + (["street"] if z >= 10 else []) + (["community"] if z >= 12 else [])
        rows = (f"SELECT geom, code, name, name_en, level FROM {LAYERS[name].table} "
                f"WHERE {where} AND level = ANY(:levels)")
        return encode(conn, name, rows, {**params, "levels": levels}, z, x, y, simplify=True)
    if name == "grids":
        outlines = z >= GRID_OUTLINES_FROM
        shape = "geom, code, name, buildings" if outlines else "centroid AS geom"
        # the figures are on the grid's row (migrations 0033, 0034): no join of the buildings or the cases
        rows = f"""
            SELECT {shape}, households, {GRID_OPEN.format(alias="grids")} AS open,
                   {GRID_OVERDUE.format(alias="grids")} AS open_overdue
            FROM {GRID_TILE_ROWS.table} {GRID_PENDING.format(alias="grids")} WHERE {where}"""
        return encode(conn, name, rows, params, z, x, y, simplify=outlines,
                      fields=None if outlines else GRID_POINT_FIELDS)
    if name == "buildings":
        rows = f"SELECT geom, name, building_type, households, levels FROM {LAYERS[name].table} WHERE {where}"
        return encode(conn, name, rows, params, z, x, y, simplify=z < 16)
    rows = f"SELECT geom, kind, name FROM {LAYERS[name].table} WHERE {where}"
    return encode(conn, name, rows, params, z, x, y, simplify=False)


def _streets(conn: Connection, z: int, x: int, y: int, box: tuple[float, float, float, float],
             scope: Scope | None) -> bytes:
    """The city's walkable streets (one edge of each two-way pair), main roads only below zoom 13, no paths below
    15; a jurisdiction below the city sees its city's streets (the map's context, public OSM data)."""
    classes = list(MAIN_ROADS) + (list(LOCAL_ROADS) if z >= 13 else [])
    rows = """
        SELECT geom, name, highway FROM road_edges
        WHERE network = 'walk' AND u <= v AND geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)
          AND (:all_classes OR highway = ANY(:classes))
          AND (CAST(:city AS int) IS NULL OR city_id = :city)"""
    params = {"minx": box[0], "miny": box[1], "maxx": box[2], "maxy": box[3], "all_classes": z >= 15,
              "classes": classes, "city": scope.city_id if scope is not None else None}
    return encode(conn, "streets", rows, params, z, x, y, simplify=z < 15)


COLLECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "grids": ("code", "name", "households", "buildings", "source", "version", "updated_at"),
    "admin_units": ("level", "code", "name", "name_en", "parent_id"),
    "buildings": ("name", "building_type", "use", "levels", "households", "grid_id"),
    "key_places": ("kind", "name"),
}
"""The OGC API — Features collections of the city model and the properties each feature carries."""


def collection_rows(name: str, *, bbox: tuple[float, float, float, float] | None,
                    interval: tuple[Any, Any] | None, scope: Scope | None) -> tuple[str, dict[str, Any]]:
    """The rows of a city-model collection (``id``, ``geom``, its fields) inside ``bbox`` (CRS84) and the
    jurisdiction; ``interval`` filters the grids by the time of their current version (the other collections have
    no time and ignore it)."""
    layer = LAYERS[name]
    where, params = _where(layer, bbox, {}, scope)
    if name == "grids" and interval is not None:
        start, end = interval
        where += " AND (CAST(:dt_start AS timestamptz) IS NULL OR updated_at >= :dt_start)" \
                 " AND (CAST(:dt_end AS timestamptz) IS NULL OR updated_at <= :dt_end)"
        params.update(dt_start=start, dt_end=end)
    fields = ", ".join(COLLECTION_FIELDS[name])
    return f"SELECT id, geom, {fields} FROM {layer.table} WHERE {where}", params


def grids_extent(conn: Connection, *, scope: Scope | None) -> tuple[tuple[float, float, float, float] | None, int]:
    """The WGS-84 box of the grids in the jurisdiction and their number (None: no grid)."""
    where, params = _where(LAYERS["grids"], None, {}, scope)
    row = conn.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), n FROM (SELECT "
                            f"ST_Extent(geom)::geometry AS e, count(*) AS n FROM {LAYERS['grids'].table} "
                            f"WHERE {where}) q"), params).one()
    if row[0] is None:
        return None, 0
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3])), int(row[4])
