"""What a leader's map shows: a unit (city, district, street, community or grid), its children, and their figures.

The figures are the API's own: coverage from :func:`gis.patrol.store.coverage.coverage_report` (streets walked,
buildings visited, response circles, events per 1,000 households) and the ranking figures from
:func:`gis.oversight.store.kpis.kpis` (on-time closure, open-overdue), per child unit, plus households and grids
counted here. A city whose data has no street network (the synthetic benchmark city) has no coverage figures: those
measures say so instead of drawing.

Coverage is computed for the whole city at once (response circles need the whole network), so it is cached per
city, period and mode for :data:`COVERAGE_TTL_S` seconds: a map refreshed within that time may miss a visit
logged meanwhile (an approximation the page states).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from gis.db.replicas import primary_of
from gis.db.singleton import lock_key
from gis.errors import InputError, NotFoundError
from gis.oversight.store.kpis import kpis
from gis.patrol.store.coverage import coverage_report
from gis.planning.queries import GRID_TOTALS
from gis.planning.store.city import find_city

LEVELS = ("city", "district", "street", "community", "grid")
BELOW = dict(itertools.pairwise(LEVELS))
COVERAGE_TTL_S = 60.0
SIMPLIFY_DEG = 0.00002  # ≈2 m: invisible at the zooms a unit is shown at, and a third of the vertices
DIGITS = 5  # ≈1 m


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    source: str  # "coverage", "kpi" or "counts"
    share: bool  # a share 0–1 (shown as %), else a number
    higher_is_better: bool


MEASURES: dict[str, Measure] = {m.key: m for m in (
    Measure("walked_share", "streets walked 巡查覆盖率", "coverage", True, True),
    Measure("buildings_visited_share", "buildings visited 楼栋走访率", "coverage", True, True),
    Measure("on_time_closure_rate", "on-time closure 按期结案率", "kpi", True, True),
    Measure("open_overdue", "open overdue events 超期未结", "kpi", False, False),
    Measure("households_per_grid", "households per grid 每格户数", "counts", False, True),
    Measure("households_police_share", "households in the police response circle 警务响应圈覆盖率", "coverage",
            True, True),
    Measure("households_base_share", "households in the grid-base response circle 网格响应圈覆盖率", "coverage",
            True, True),
    Measure("events_per_1000_households", "events per 1,000 households 千户事件数", "coverage", False, False),
)}


@dataclass(frozen=True)
class Unit:
    level: str
    id: int
    code: str | None
    name: str
    city_id: int


def find_unit(conn: Connection, *, city: str | None, unit: str | None) -> Unit:
    """A grid by its 15-digit code, an administrative unit by its code, or else a city (by key, name or id:
    :func:`gis.planning.store.city.find_city`)."""
    if unit:
        if not unit.isdigit() or len(unit) not in (6, 9, 12, 15):
            raise InputError(f"a unit code has 6 (district), 9 (street), 12 (community) or 15 (grid) digits; "
                             f"got {unit!r}")
        if len(unit) == 15:
            row = conn.exec_driver_sql(
                "SELECT g.id, g.code, coalesce(g.name, g.code), c.city_id FROM grids g "
                "JOIN admin_units c ON c.id = g.community_id WHERE g.code = %(c)s", {"c": unit}).first()
            if row is None:
                raise NotFoundError(f"no grid {unit}")
            return Unit("grid", row[0], row[1], row[2], row[3])
        row = conn.exec_driver_sql("SELECT id, level, code, name, city_id FROM admin_units WHERE code = %(c)s",
                                   {"c": unit}).first()
        if row is None:
            raise NotFoundError(f"no district, street or community with code {unit}")
        return Unit(row[1], row[0], row[2], row[3], row[4])
    if not city:
        raise InputError("say which city (city=…) or unit (unit=code)")
    found = find_city(conn, city)
    return Unit("city", found.id, None, found.name, found.id)


def breadcrumb(conn: Connection, unit: Unit) -> list[Unit]:
    """The unit's ancestors, city first, and the unit itself last."""
    chain = [unit]
    parent_id = None
    if unit.level == "grid":
        parent_id = conn.exec_driver_sql("SELECT community_id FROM grids WHERE id = %(i)s",
                                         {"i": unit.id}).scalar()
    elif unit.level != "city":
        parent_id = conn.exec_driver_sql("SELECT parent_id FROM admin_units WHERE id = %(i)s",
                                         {"i": unit.id}).scalar()
    while parent_id is not None:
        row = conn.exec_driver_sql("SELECT id, level, code, name, city_id, parent_id FROM admin_units "
                                   "WHERE id = %(i)s", {"i": parent_id}).first()
        if row is None:
            break
        chain.append(Unit(row[1], row[0], row[2], row[3], row[4] or row[0]))
        parent_id = row[5]
    return chain[::-1]


def _geometry_sql(column: str) -> str:
    return f"ST_AsGeoJSON(ST_SimplifyPreserveTopology({column}, {SIMPLIFY_DEG}), {DIGITS})"


def child_units(conn: Connection, unit: Unit, *, grids: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """The level shown under ``unit`` and its units there (code, name, geometry as GeoJSON, households, grids):
    its children, or with ``grids`` every grid inside it. A grid shows itself."""
    level = "grid" if grids or unit.level in ("community", "grid") else BELOW[unit.level]
    totals = ("(SELECT count(*) FROM grids g2 JOIN admin_units c2 ON c2.id = g2.community_id WHERE c2.code LIKE "
              "u.code || '%%' AND c2.city_id = u.city_id)")
    if level == "grid":
        inside = {"city": "c.city_id = %(id)s", "district": "c.code LIKE %(prefix)s", "street": "c.parent_id = %(id)s",
                  "community": "g.community_id = %(id)s", "grid": "g.id = %(id)s"}[unit.level]
        if unit.level == "district":
            inside += " AND c.city_id = %(city)s"
        rows = conn.exec_driver_sql(
            f"""SELECT code, name, geojson, households, 1, buildings FROM (
                    SELECT g.code, coalesce(g.name, g.code) AS name, {_geometry_sql('g.geom')} AS geojson,
                           {GRID_TOTALS}
                    FROM grids g JOIN admin_units c ON c.id = g.community_id WHERE {inside}) t ORDER BY code""",
            {"id": unit.id, "prefix": (unit.code or "") + "%", "city": unit.city_id}).all()
    else:
        parent = "u.parent_id = %(id)s" if unit.level != "city" else "u.city_id = %(id)s"
        rows = conn.exec_driver_sql(
            f"""SELECT u.code, u.name, {_geometry_sql('u.geom')},
                       coalesce((SELECT sum(b.households) FROM buildings b JOIN grids g ON g.id = b.grid_id
                                 JOIN admin_units c ON c.id = g.community_id
                                 WHERE c.city_id = u.city_id AND c.code LIKE u.code || '%%'), 0)::int,
                       {totals},
                       (SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id
                        JOIN admin_units c ON c.id = g.community_id
                        WHERE c.city_id = u.city_id AND c.code LIKE u.code || '%%')
                FROM admin_units u WHERE u.level = %(level)s AND {parent} AND u.code IS NOT NULL
                ORDER BY u.code""", {"id": unit.id, "level": level}).all()
    return level, [{"code": code, "name": name, "geometry": json.loads(geom), "households": int(households),
                    "grids": int(n_grids), "buildings": int(n_buildings),
                    "households_per_grid": round(households / n_grids, 1) if n_grids else None}
                   for code, name, geom, households, n_grids, n_buildings in rows]


_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def cached_coverage(engine: Engine, city_id: int, start: datetime, end: datetime, *, by: str, mode: str,
                    minutes: float) -> dict[str, Any]:
    """:func:`coverage_report` with its response circles, kept for :data:`COVERAGE_TTL_S` seconds: in this
    worker, and in ``coverage_cache`` for every worker of every instance. One computes it at a time (an advisory
    lock on its key, taken on the primary); the others wait for its result and read it. Without a primary (a
    failover) each computes its own from the replica it reads."""
    # by database, not by server: the replicas a read is spread over share one entry
    key = (engine.url.database, city_id, start, end, by, mode, minutes)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < COVERAGE_TTL_S:
            return hit[1]  # type: ignore[no-any-return]
    name = f"{city_id}|{start.isoformat()}|{end.isoformat()}|{by}|{mode}|{minutes:g}"
    with engine.connect() as conn:
        report = _kept(conn, name)
    if report is None:
        try:
            report = _computed_once(engine, name, city_id, start, end, by=by, mode=mode, minutes=minutes)
        except OperationalError:  # no primary to share it through: this worker's own
            report = coverage_report(engine, city_id, start, end, by=by, mode=mode, minutes=[minutes],
                                     with_areas=True)
    with _cache_lock:
        for k in [k for k, (at, _) in _cache.items() if now - at >= COVERAGE_TTL_S]:
            del _cache[k]
        _cache[key] = (now, report)
    return report


def _kept(conn: Connection, name: str) -> dict[str, Any] | None:
    found = conn.exec_driver_sql("SELECT report FROM coverage_cache WHERE key = %(k)s AND computed_at > now() - "
                                 "make_interval(secs => %(ttl)s)", {"k": name, "ttl": COVERAGE_TTL_S}).scalar()
    if found is None:
        return None
    report = dict(found)
    if "areas" in report:
        report["areas"] = {k: shapely.from_wkb(bytes.fromhex(v)) for k, v in report["areas"].items()}
    return report


def _computed_once(engine: Engine, name: str, city_id: int, start: datetime, end: datetime, *, by: str,
                   mode: str, minutes: float) -> dict[str, Any]:
    writer = primary_of(engine)
    lock = lock_key(f"coverage:{name}")
    with writer.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(%(k)s)", {"k": lock})  # another may be computing it
        conn.commit()  # a session lock: it outlives the transaction
        try:
            report = _kept(conn, name)  # it was, and is kept now
            if report is None:
                report = coverage_report(engine, city_id, start, end, by=by, mode=mode, minutes=[minutes],
                                         with_areas=True)
                stored = {**report, **({"areas": {k: shapely.to_wkb(v, hex=True) for k, v in report["areas"].items()}}
                                       if "areas" in report else {})}
                conn.exec_driver_sql(
                    "INSERT INTO coverage_cache (key, report) VALUES (%(k)s, %(r)s) ON CONFLICT (key) DO UPDATE "
                    "SET report = excluded.report, computed_at = now()", {"k": name, "r": json.dumps(stored)})
                conn.exec_driver_sql("DELETE FROM coverage_cache WHERE computed_at < now() - interval '1 day'")
            conn.commit()  # before the lock goes: the next to take it must find the report
        finally:
            conn.rollback()
            conn.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": lock})
            conn.commit()
    return report


def unit_figures(engine: Engine, unit: Unit, level: str, units: list[dict[str, Any]], start: datetime,
                 end: datetime, *, mode: str = "ebike", minutes: float = 5.0) -> dict[str, Any]:
    """Each unit's figures (in place: ``units[i]["figures"]``) and what could not be computed, and why."""
    if end <= start:
        raise InputError("the period is empty: its end must come after its start")
    missing: dict[str, str] = {}
    cover: dict[str, dict[str, Any]] = {}
    areas: dict[str, Any] = {}
    try:
        report = cached_coverage(engine, unit.city_id, start, end, by=level, mode=mode, minutes=minutes)
        cover = {str(r["code"]): r for r in report["rows"]}
        areas = report["areas"]
    except InputError as exc:
        missing["coverage"] = str(exc)
    kpi_level = level if level in ("grid", "community", "street", "district") else None
    ranking: dict[str, dict[str, Any]] = {}
    if kpi_level is not None:
        with engine.connect() as conn:
            ranking = {str(r["unit"]): r for r in kpis(conn, kpi_level, start, end, prefix=unit.code)}
    tag = f"{minutes:g}min"
    for u in units:
        c = cover.get(u["code"], {})
        k = ranking.get(u["code"], {})
        u["figures"] = {
            "households": u["households"], "grids": u["grids"], "buildings": u["buildings"],
            "households_per_grid": u["households_per_grid"],
            "walked_share": c.get("walked_share"), "planned_share": c.get("planned_share"),
            "buildings_visited_share": c.get("buildings_visited_share"),
            "key_places_visited_share": c.get("key_places_visited_share"),
            "households_police_share": c.get(f"households_police_{tag}_share"),
            "households_base_share": c.get(f"households_base_{tag}_share"),
            "events_per_1000_households": c.get("events_per_1000_households"),
            "reported": k.get("reported", 0), "on_time_closure_rate": k.get("on_time_closure_rate"),
            "closure_rate": k.get("closure_rate"), "open_overdue": k.get("open_overdue", 0),
        }
    return {"missing": missing, "areas": areas, "minutes": minutes, "mode": mode}


def events_in(conn: Connection, unit: Unit, start: datetime, end: datetime, *,
              category: str | None = None) -> list[tuple[float, float, str, bool]]:
    """(lon, lat, category, open) of the unit's events reported in the period (duplicates and merged left out)."""
    where = {"city": "c.city_id = %(id)s", "district": "c.code LIKE %(prefix)s AND c.city_id = %(city)s",
             "street": "e.street_id = %(id)s", "community": "e.community_id = %(id)s",
             "grid": "e.grid_id = %(id)s"}[unit.level]
    rows = conn.exec_driver_sql(
        f"""SELECT ST_X(e.geom), ST_Y(e.geom), e.category_code,
                   e.state NOT IN ('closed', 'rejected', 'merged')
            FROM events e LEFT JOIN admin_units c ON c.id = e.community_id
            WHERE {where} AND e.reported_at >= %(s)s AND e.reported_at < %(e)s AND e.duplicate_of IS NULL
              AND e.state <> 'merged' {"AND e.category_code = %(cat)s" if category else ""}""",
        {"id": unit.id, "prefix": (unit.code or "") + "%", "city": unit.city_id, "s": start, "e": end,
         "cat": category}).all()
    return [(float(x), float(y), str(cat), bool(is_open)) for x, y, cat, is_open in rows]


def key_places_in(conn: Connection, unit: Unit) -> list[tuple[float, float, str, str | None]]:
    """(lon, lat, kind, name) of the key places inside the unit."""
    table, geom = ("grids", "g.geom") if unit.level == "grid" else ("admin_units", "g.geom")
    rows = conn.exec_driver_sql(
        f"""SELECT ST_X(p), ST_Y(p), k.kind, k.name FROM {table} g JOIN key_places k ON k.city_id = %(city)s
            AND k.geom && {geom} CROSS JOIN LATERAL ST_PointOnSurface(k.geom) p
            WHERE g.id = %(id)s AND ST_Intersects({geom}, p) ORDER BY k.id""",
        {"id": unit.id, "city": unit.city_id}).all()
    return [(float(x), float(y), str(kind), name) for x, y, kind, name in rows]


def unit_outline(conn: Connection, unit: Unit) -> dict[str, Any] | None:
    table = "grids" if unit.level == "grid" else "admin_units"
    geom = conn.exec_driver_sql(f"SELECT {_geometry_sql('geom')} FROM {table} WHERE id = %(i)s",
                                {"i": unit.id}).scalar()
    return json.loads(geom) if geom else None
