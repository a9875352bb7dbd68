"""The cities and their settings; layers read out of PostGIS as GeoJSON FeatureCollections (built in SQL) or as
GeoDataFrames."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.access.scope import Scope
from gis.errors import ConflictError, NotFoundError
from gis.geo.bbox import BBox
from gis.geo.cities import City, city_from_options
from gis.geo.crs import WGS84


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
        "(SELECT g.*, c.city_id FROM grids g JOIN admin_units c ON c.id = g.community_id) AS grids",
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
    key: str | None = None


def list_cities(conn: Connection) -> list[CityRow]:
    rows = conn.execute(text(
        "SELECT u.id, u.name, u.name_en, u.code, s.key FROM admin_units u "
        "LEFT JOIN city_settings s ON s.city_id = u.id WHERE u.level = 'city' ORDER BY u.id"
    )).all()
    return [CityRow(*row) for row in rows]


def find_city(conn: Connection, name: str) -> CityRow:
    """A city by its handle, name, English name or id (case-insensitive), or :class:`NotFoundError`."""
    wanted = name.strip().casefold()
    cities = list_cities(conn)
    for city in cities:
        if wanted in {city.name.casefold(), (city.name_en or "").casefold(), (city.key or "").casefold(),
                      str(city.id)}:
            return city
    known = ", ".join(f"{c.key or c.id} ({c.name} / {c.name_en or c.name})" for c in cities) or "none yet"
    raise NotFoundError(f"no city {name!r}; cities: {known} (add one: gridpatrol city add NAME --code CODE)")


def load_city(conn: Connection, name: str) -> City:
    """The stored settings of the city named ``name`` (:func:`find_city`'s ways), as a :class:`City`."""
    found = find_city(conn, name)
    row = conn.execute(text(
        "SELECT key, district_codes, default_storeys, m2_per_household, timezone FROM city_settings "
        "WHERE city_id = :id"), {"id": found.id}).first()
    if row is None:  # a city stored before settings were data (migration 0018 gives each one a row)
        raise NotFoundError(f"city {found.name} has no settings: gridpatrol city add {found.name_en or found.name}")
    return City(key=row.key, name=found.name, name_en=found.name_en or found.name, code=found.code,
                district_codes=dict(row.district_codes), default_storeys=int(row.default_storeys),
                m2_per_household=float(row.m2_per_household), timezone=row.timezone)


def save_city(cur: Any, city: City, *, extent_ewkb: str | None = None) -> int:
    """Create or update a city's row and its settings (``cur``: a DB-API cursor in the caller's transaction).

    The city is found by its handle, else by its name; an extent replaces its outline (the latest import's).
    Refuses a name or code another city already has.
    """
    cur.execute("SELECT city_id FROM city_settings WHERE key = %(key)s", {"key": city.key})
    found = cur.fetchone()
    cur.execute("SELECT u.id, s.key FROM admin_units u LEFT JOIN city_settings s ON s.city_id = u.id "
                "WHERE u.level = 'city' AND (u.name = %(name)s OR u.code = %(code)s)",
                {"name": city.name, "code": city.code})
    for other_id, other_key in cur.fetchall():
        if found is None or other_id != found[0]:
            raise ConflictError(f"city {city.name} ({city.code or 'no code'}) is already stored as "
                                f"{other_key or other_id!r}: use that handle, or give another --name/--code")
    params = {"name": city.name, "name_en": city.name_en, "code": city.code, "geom": extent_ewkb}
    if found is not None:
        city_id = int(found[0])
        cur.execute("UPDATE admin_units SET name = %(name)s, name_en = %(name_en)s, code = %(code)s, "
                    "geom = coalesce(%(geom)s::geometry, geom) WHERE id = %(id)s", {**params, "id": city_id})
    else:
        cur.execute("INSERT INTO admin_units (level, code, name, name_en, source, geom) "
                    "VALUES ('city', %(code)s, %(name)s, %(name_en)s, 'registry', %(geom)s::geometry) RETURNING id",
                    params)
        city_id = int(cur.fetchone()[0])
    cur.execute(
        """
        INSERT INTO city_settings (city_id, key, district_codes, default_storeys, m2_per_household, timezone)
        VALUES (%(id)s, %(key)s, %(districts)s, %(storeys)s, %(m2)s, %(tz)s)
        ON CONFLICT (city_id) DO UPDATE SET key = EXCLUDED.key, district_codes = EXCLUDED.district_codes,
            default_storeys = EXCLUDED.default_storeys, m2_per_household = EXCLUDED.m2_per_household,
            timezone = EXCLUDED.timezone, updated_at = now()
        """,
        {"id": city_id, "key": city.key, "districts": json.dumps(city.district_codes, ensure_ascii=False),
         "storeys": city.default_storeys, "m2": city.m2_per_household, "tz": city.timezone})
    return city_id


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


def grid_timezone(conn: Connection, code: str) -> str | None:
    """The time zone of the city a grid lies in (its settings), or ``None``."""
    return conn.execute(text(
        "SELECT s.timezone FROM grids g JOIN admin_units c ON c.id = g.community_id "
        "JOIN city_settings s ON s.city_id = c.city_id WHERE g.code = :code"), {"code": code}).scalar()


def resolve_city(conn: Connection, city: str, /, **options: Any) -> City:
    """The settings of the city named ``city`` with ``options`` (:func:`gis.geo.cities.city_from_options`'s) on
    top: the stored city's when there is one, else a new city's, checked against GB/T 2260."""
    try:
        stored: City | None = load_city(conn, city)
    except NotFoundError:
        stored = None
    return city_from_options(stored.key if stored else city, base=stored, **options)


def building_count(conn: Connection, city_id: int) -> int:
    """How many buildings a city has."""
    return int(conn.execute(text("SELECT count(*) FROM buildings WHERE city_id = :c"), {"c": city_id}).scalar_one())


def household_classes(conn: Connection, city_id: int, *, classes: int = 6) -> list[float]:
    """The upper bounds of ``classes`` quantile classes of the households of a city's buildings that hold any (what
    the city map colours buildings by), computed in PostGIS for a city too large to read whole."""
    fractions = [(i + 1) / classes for i in range(classes)]
    bounds = conn.execute(text(
        "SELECT percentile_disc(CAST(:f AS float8[])) WITHIN GROUP (ORDER BY households) FROM buildings "
        "WHERE city_id = :c AND households > 0"), {"c": city_id, "f": fractions}).scalar()
    return sorted({float(b) for b in (bounds or []) if b is not None}) or [1.0]
