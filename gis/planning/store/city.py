"""Read layers out of PostGIS: as GeoJSON FeatureCollections (built in SQL) or as GeoDataFrames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.access.scope import Scope
from gis.errors import NotFoundError
from gis.geo.bbox import BBox
from gis.geo.crs import WGS84
from gis.planning.queries import GRID_TOTALS


@dataclass(frozen=True)
class Layer:
    table: str
    properties: tuple[str, ...]
    filters: dict[str, str] = field(default_factory=dict)
    """Query parameter → SQL column it filters on by equality."""
    city: str = "city_id"
    """The SQL expression of a row's city, for a jurisdiction's city."""
    within: str = "FALSE"
    """SQL true for the rows inside a jurisdiction below the city (``:scope_prefix``: its unit or grid code)."""


SCOPE_GEOM = ("(SELECT geom FROM grids WHERE code = :scope_prefix UNION ALL "
              "SELECT geom FROM admin_units WHERE code = :scope_prefix LIMIT 1)")
"""The outline of the unit or grid whose code is ``:scope_prefix``."""

LAYERS: dict[str, Layer] = {
    "admin_units": Layer("admin_units", ("level", "code", "name", "name_en", "parent_id", "city_id", "source"),
                         {"level": "level", "city_id": "city_id", "parent_id": "parent_id"},
                         city="coalesce(city_id, id)", within="code LIKE :scope_prefix || '%'"),
    "grids": Layer(
        f"(SELECT g.*, {GRID_TOTALS}, c.city_id FROM grids g JOIN admin_units c ON c.id = g.community_id) AS grids",
        ("code", "name", "community_id", "households", "buildings", "source", "note", "version", "city_id"),
        {"community_id": "community_id", "city_id": "city_id"}, within="code LIKE :scope_prefix || '%'"),
    "buildings": Layer("buildings", ("osm_type", "osm_id", "name", "building_type", "use", "levels",
                                     "levels_source", "area_m2", "households", "households_est",
                                     "households_override", "households_source", "residents", "grid_id",
                                     "city_id"),
                       {"city_id": "city_id", "grid_id": "grid_id", "use": "use"},
                       within="grid_id IN (SELECT id FROM grids WHERE code LIKE :scope_prefix || '%')"),
    "key_places": Layer("key_places", ("osm_type", "osm_id", "kind", "name", "city_id"),
                        {"city_id": "city_id", "kind": "kind"}, within=f"ST_Intersects(geom, {SCOPE_GEOM})"),
}


def _where(layer: Layer, bbox: BBox | None, filters: dict[str, Any],
           scope: Scope | None = None) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if scope is not None and scope.city_id is not None:
        clauses.append(f"{layer.city} = :scope_city")
        params["scope_city"] = scope.city_id
        if scope.prefix is not None:
            clauses.append(f"({layer.within})")
            params["scope_prefix"] = scope.prefix
    if bbox is not None:
        clauses.append("geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)")
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
    for name, value in filters.items():
        if value is None:
            continue
        column = layer.filters[name]
        clauses.append(f"{column} = :f_{name}")
        params[f"f_{name}"] = value
    return " AND ".join(clauses), params


def feature_collection(conn: Connection, name: str, *, bbox: BBox | None = None, limit: int = 1000,
                       offset: int = 0, filters: dict[str, Any] | None = None, scope: Scope | None = None) -> str:
    """A page of a layer as a GeoJSON FeatureCollection (text), with ``numberMatched``/``numberReturned``; only
    the rows inside ``scope`` (a user's jurisdiction) when given."""
    layer = LAYERS[name]
    where, params = _where(layer, bbox, filters or {}, scope)
    props = ", ".join(f"'{p}', {p}" for p in layer.properties)
    sql = text(f"""
        WITH page AS (
            SELECT id, geom, {', '.join(layer.properties)} FROM {layer.table}
            WHERE {where} ORDER BY id LIMIT :limit OFFSET :offset
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberMatched', (SELECT count(*) FROM {layer.table} WHERE {where}),
            'numberReturned', (SELECT count(*) FROM page),
            'features', COALESCE((SELECT json_agg(json_build_object(
                'type', 'Feature', 'id', id,
                'geometry', ST_AsGeoJSON(geom, 7)::json,
                'properties', json_build_object('id', id, {props})) ORDER BY id) FROM page), '[]'::json)
        )::text
    """)
    return str(conn.execute(sql, {**params, "limit": limit, "offset": offset}).scalar_one())


def read_layer(conn: Connection, name: str, *, filters: dict[str, Any] | None = None,
               bbox: BBox | None = None, scope: Scope | None = None) -> gpd.GeoDataFrame:
    """A whole layer (optionally filtered, or only inside ``scope``) as a GeoDataFrame in WGS-84, for the maps."""
    layer = LAYERS[name]
    where, params = _where(layer, bbox, filters or {}, scope)
    sql = f"SELECT id, {', '.join(layer.properties)}, geom FROM {layer.table} WHERE {where} ORDER BY id"
    frame = gpd.read_postgis(text(sql), conn, geom_col="geom", params=params, crs=WGS84)
    return frame.rename_geometry("geometry")


@dataclass(frozen=True)
class CityRow:
    id: int
    name: str
    name_en: str | None
    code: str | None


def list_cities(conn: Connection) -> list[CityRow]:
    rows = conn.execute(text(
        "SELECT id, name, name_en, code FROM admin_units WHERE level = 'city' ORDER BY id"
    )).all()
    return [CityRow(*row) for row in rows]


def find_city(conn: Connection, name: str) -> CityRow:
    """An imported city by key, name or English name (case-insensitive), or :class:`NotFoundError`."""
    wanted = name.strip().casefold()
    cities = list_cities(conn)
    for city in cities:
        if wanted in {city.name.casefold(), (city.name_en or "").casefold(), str(city.id)}:
            return city
    known = ", ".join(c.name_en or c.name for c in cities) or "none yet (run gridpatrol import-osm)"
    raise NotFoundError(f"no imported city {name!r}; imported cities: {known}")


def city_summary(conn: Connection, city_id: int) -> dict[str, Any]:
    row = conn.execute(text("""
        SELECT (SELECT count(*) FROM buildings WHERE city_id = :c),
               (SELECT coalesce(sum(households), 0) FROM buildings WHERE city_id = :c),
               (SELECT coalesce(sum(households_est), 0) FROM buildings WHERE city_id = :c),
               (SELECT count(*) FROM buildings WHERE city_id = :c AND households_override IS NOT NULL),
               (SELECT count(*) FROM key_places WHERE city_id = :c),
               (SELECT count(*) FROM admin_units WHERE city_id = :c),
               (SELECT count(*) FROM road_edges WHERE city_id = :c AND network = 'walk'),
               (SELECT count(*) FROM road_edges WHERE city_id = :c AND network = 'drive')
    """), {"c": city_id}).one()
    keys = ("buildings", "households", "households_est", "buildings_confirmed", "key_places", "admin_units",
            "walk_edges", "drive_edges")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def city_extent(conn: Connection, city_id: int) -> shapely.Geometry | None:
    """The outline of the city's data (its first polygon), or ``None``."""
    raw = conn.execute(text("SELECT ST_AsBinary(ST_GeometryN(geom, 1)) FROM admin_units WHERE id = :id"),
                       {"id": city_id}).scalar()
    return shapely.from_wkb(bytes(raw)) if raw is not None else None


def unit_name(conn: Connection, level: str, code: str) -> tuple[str, str] | None:
    """``(name, code)`` of the unit of ``level`` with ``code``; ``None`` when there is none."""
    row = conn.exec_driver_sql("SELECT name, code FROM admin_units WHERE level = %(l)s AND code = %(c)s",
                               {"l": level, "c": code}).first()
    return (str(row[0]), str(row[1])) if row is not None else None
