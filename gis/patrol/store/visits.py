"""Visits and proof: members log their patrols (a GPS track, the buildings visited); tracks are matched to the
grid's streets; compliance says per week whether the basic patrol was done and per month whether the full
inspection was; the schedule is a month's plan per grid and member honouring that cadence (DOMAIN.md: a basic
patrol every week, a full inspection every month, every visit logged).

* **Track matching** (:mod:`gis.patrol.matching`): the track is matched to the grid's walk network (with its
  margin) by a hidden-Markov map matcher (FMM), and a street segment of the grid (the basic patrol's required
  segments) counts as walked when the matched path walked at least :data:`WALKED_SHARE` of its length
  (``matched_by: "hmm"``). Where the matcher finds no path at all, or the caller asks for it (``method="buffer"``),
  the buffer test instead: at least :data:`WALKED_SHARE` of the segment within ``tolerance_m`` (default 20 m) of
  the track (``matched_by: "buffer"``; every visit logged before the matcher came was tested so).
* **A basic patrol is done** in a week (Monday to Sunday, the city's time zone) when the visits of that week walked
  at least :data:`BASIC_DONE_SHARE` of the grid's street length, together.
* **The full inspection is done** in a month when every building of the grid was logged as visited that month.
"""

from __future__ import annotations

import calendar
import json
import math
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
from shapely.geometry import LineString, MultiLineString
from sqlalchemy.engine import Connection, Engine

from gis.errors import ConflictError, InputError, NotFoundError
from gis.geo.crs import WGS84
from gis.patrol import matching
from gis.patrol.store.plans import load_grid_network, segment_key
from gis.patrol.store.shares import get_share, grid_crew, rotation
from gis.vocabulary import VISIT_KINDS

DEFAULT_TOLERANCE_M = 20.0
WALKED_SHARE = matching.WALKED_SHARE
METHODS = ("hmm", "buffer")
BASIC_DONE_SHARE = 0.8
MAX_TRACK_POINTS = 50_000
MAX_BUILDINGS = 10_000
TRACK_NEAR_GRID_M = 200.0
MATCH_MARGIN_M = 250.0


def _check_track(coords: list[Any]) -> LineString:
    if len(coords) < 2:
        raise InputError("a track needs at least 2 points")
    if len(coords) > MAX_TRACK_POINTS:
        raise InputError(f"a track has at most {MAX_TRACK_POINTS:,} points; got {len(coords):,}: split it")
    try:
        points = [(float(c[0]), float(c[1])) for c in coords]
    except (TypeError, ValueError, IndexError):
        raise InputError("each track point is [lon, lat] with numbers") from None
    if not all(math.isfinite(x) and math.isfinite(y) and abs(x) <= 180 and abs(y) <= 90 for x, y in points):
        raise InputError("track points must be finite lon/lat in range (lon -180..180, lat -90..90)")
    line = LineString(points)
    if line.length == 0:
        raise InputError("the track does not move: all its points are the same")
    return line


def _check_times(times: list[Any] | None, points: int) -> np.ndarray | None:
    """The track's times as seconds (one per point, never going back), or None."""
    if times is None:
        return None
    if len(times) != points:
        raise InputError(f"the track has {points:,} points and {len(times):,} times: give one time per point")
    try:
        seconds = np.array([float(t) for t in times], dtype=float)
    except (TypeError, ValueError):
        raise InputError("each track time is a number of seconds (Unix time)") from None
    if not np.isfinite(seconds).all():
        raise InputError("track times must be finite numbers of seconds")
    back = np.flatnonzero(np.diff(seconds) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise InputError(f"the track's times go backwards at point {i + 1:,} ({seconds[i]:.0f} s after "
                         f"{seconds[i - 1]:.0f} s): send the points in the order they were recorded")
    return seconds


def log_visit(conn: Connection, code: str, *, kind: str, started_at: datetime, ended_at: datetime,
              staff_id: int | None = None, track: list[Any] | None = None, buildings: list[int] | None = None,
              note: str = "", tolerance_m: float = DEFAULT_TOLERANCE_M,
              idempotency_key: str | None = None, position: tuple[float, float] | None = None,
              times: list[Any] | None = None, gps_error_m: float | None = None,
              method: str = "hmm") -> dict[str, Any]:
    """Store a visit to grid ``code``, its track matched to the grid's streets; the stored visit as a dict.
    ``idempotency_key``: a visit sent again with the same key (a phone's queue retried) is stored once, and the
    answer is the first one's with ``replayed`` set. ``position``: (lon, lat) where the member logged it.
    ``times``: each track point's time (Unix seconds), which lets the matcher drop GPS jumps and estimate the GPS
    error; ``gps_error_m``: the phone's own figure for it (σ, metres); ``method``: ``hmm`` (the map matcher) or
    ``buffer`` (the buffer test within ``tolerance_m``)."""
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 128:
            raise InputError("an idempotency key has 1 to 128 characters")
        first = _visit_by_key(conn, idempotency_key)
        if first is not None:
            return _replayed(conn, first, code)
    if kind not in VISIT_KINDS:
        raise InputError(f"unknown visit kind {kind!r}: one of {', '.join(VISIT_KINDS)}")
    if started_at.tzinfo is None or ended_at.tzinfo is None:
        raise InputError("give the visit's times with their time zone (ISO 8601, e.g. 2026-11-20T09:00:00+08:00)")
    if ended_at < started_at:
        raise InputError("the visit ends before it starts")
    if ended_at > datetime.now(ZoneInfo("UTC")) + timedelta(minutes=10):
        raise InputError("the visit ends in the future")
    if not 1 <= tolerance_m <= 100:
        raise InputError("the matching tolerance is 1 to 100 m")
    if method not in METHODS:
        raise InputError(f"unknown matching method {method!r}: one of {', '.join(METHODS)}")
    if gps_error_m is not None and not (math.isfinite(gps_error_m) and 1 <= gps_error_m <= 100):
        raise InputError("the GPS error is 1 to 100 m")
    if len(note) > 2000:
        raise InputError("the note is longer than 2,000 characters")
    buildings = sorted(set(buildings or []))
    if len(buildings) > MAX_BUILDINGS:
        raise InputError(f"at most {MAX_BUILDINGS:,} buildings per visit")
    if track is None and not buildings:
        raise InputError("a visit needs a track, buildings visited, or both")
    line = _check_track(track) if track is not None else None
    if times is not None and track is None:
        raise InputError("times came without a track")
    seconds = _check_times(times, len(line.coords)) if line is not None else None
    grid = conn.exec_driver_sql("SELECT id FROM grids WHERE code = %(c)s", {"c": code}).scalar()
    if grid is None:
        raise NotFoundError(f"no grid {code}")
    if staff_id is not None and conn.exec_driver_sql(
            "SELECT 1 FROM staff WHERE id = %(s)s", {"s": staff_id}).scalar() is None:
        raise InputError(f"no staff member {staff_id}")
    known = {r[0] for r in conn.exec_driver_sql(
        "SELECT id FROM buildings WHERE grid_id = %(g)s AND id = ANY(%(b)s)", {"g": grid, "b": buildings})}
    # the grid's streets with a wide margin: a walk leaves a grid and comes back, and the matcher follows it only
    # where the network goes (with the basic patrol's 60 m, two streets can be joined only outside it)
    net = load_grid_network(conn, code, MATCH_MARGIN_M) if line is not None else load_grid_network(conn, code)
    required = net["required"]
    graph = net["graph"]
    required_m = sum(graph.edges[e]["length"] for e in required)
    walked: list[list[Any]] = []
    walked_m = 0.0
    matched_by, sigma, path_wkt = method, None, None
    if line is not None:
        polygon = net["polygon"]
        streets, _, metric = matching.metric_streets(graph, polygon)
        shapes = gpd.GeoSeries([line, polygon], crs=WGS84).to_crs(metric)
        track_m, grid_m = shapes.iloc[0], shapes.iloc[1]
        if track_m.distance(grid_m) > TRACK_NEAR_GRID_M:
            raise InputError(f"the track never comes within {TRACK_NEAR_GRID_M:.0f} m of grid {code}: "
                             "is it the right grid?")
        keys = {segment_key(e): e for e in required}
        found: list[Any] = []
        if method == "hmm":
            matched = matching.match_track(list(streets.items()), np.asarray(track_m.coords), seconds,
                                           sigma_m=gps_error_m)
            if matched.stretches:
                found = matched.walked({k: streets[k].length for k in keys})
                sigma = matched.sigma_m
                path = gpd.GeoSeries([MultiLineString(matched.path)], crs=metric).to_crs(WGS84).iloc[0]
                path_wkt = path.wkt
            else:  # nothing the matcher could follow: the buffer test
                matched_by = "buffer"
        if matched_by == "buffer":
            found = matching.buffer_walked(track_m, [(k, streets[k]) for k in keys], tolerance_m)
        for key in found:  # kept as the walk network's undirected (least, greatest, key), whichever way it was read
            walked.append(list(key))
            walked_m += graph.edges[keys[key]]["length"]
    else:
        matched_by = "buffer"
    row = conn.exec_driver_sql(
        """INSERT INTO patrol_visits (grid_id, grid_code, staff_id, kind, started_at, ended_at, track,
               tolerance_m, required_m, walked_m, segments_required, segments_walked, buildings,
               unknown_buildings, walked_segments, note, idempotency_key, position, matched_by, gps_sigma_m,
               matched_path)
           VALUES (%(g)s, %(c)s, %(s)s, %(k)s, %(a)s, %(b)s, ST_GeomFromText(%(t)s, 4326), %(tol)s, %(rm)s,
               %(wm)s, %(sr)s, %(sw)s, %(bu)s, %(ub)s, %(ws)s::jsonb, %(n)s, %(key)s,
               ST_SetSRID(ST_MakePoint(%(px)s, %(py)s), 4326), %(mb)s, %(sg)s, ST_GeomFromText(%(mp)s, 4326))
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING id""",
        {"g": grid, "c": code, "s": staff_id, "k": kind, "a": started_at, "b": ended_at,
         "t": line.wkt if line is not None else None, "tol": tolerance_m, "rm": required_m, "wm": walked_m,
         "sr": len(required), "sw": len(walked), "bu": sorted(known),
         "ub": [b for b in buildings if b not in known], "ws": json.dumps(walked), "n": note,
         "key": idempotency_key, "px": position[0] if position else None,
         "py": position[1] if position else None, "mb": matched_by, "sg": sigma, "mp": path_wkt}).scalar()
    if row is None:  # the same key stored meanwhile, by a retry that overtook this request
        first = _visit_by_key(conn, idempotency_key or "")
        assert first is not None
        return _replayed(conn, first, code)
    return get_visit(conn, row)


def _visit_by_key(conn: Connection, key: str) -> int | None:
    found = conn.exec_driver_sql("SELECT id FROM patrol_visits WHERE idempotency_key = %(k)s",
                                 {"k": key}).scalar()
    return int(found) if found is not None else None


def _replayed(conn: Connection, visit_id: int, code: str) -> dict[str, Any]:
    visit = get_visit(conn, visit_id)
    if visit["grid"] != code:
        raise ConflictError(f"the idempotency key was used for a visit to grid {visit['grid']}, not {code}")
    return {**visit, "replayed": True}


def get_visit(conn: Connection, visit_id: int) -> dict[str, Any]:
    row = conn.exec_driver_sql(
        "SELECT id, grid_code, staff_id, kind, started_at, ended_at, tolerance_m, required_m, walked_m, "
        "segments_required, segments_walked, buildings, unknown_buildings, note, track IS NOT NULL, "
        "ST_X(position), ST_Y(position), matched_by, gps_sigma_m "
        "FROM patrol_visits WHERE id = %(i)s", {"i": visit_id}).first()
    if row is None:
        raise NotFoundError(f"no visit {visit_id}")
    (vid, code, staff, kind, start, end, tol, req_m, walk_m, seg_req, seg_walk, blds, unknown, note, has, px,
     py, matched_by, sigma) = row
    return {"id": vid, "grid": code, "staff_id": staff, "kind": kind, "started_at": start.isoformat(),
            "ended_at": end.isoformat(), "track": has, "tolerance_m": tol, "required_m": round(req_m, 1),
            "walked_m": round(walk_m, 1), "walked_share": round(walk_m / req_m, 4) if req_m else None,
            "segments_required": seg_req, "segments_walked": seg_walk, "buildings": list(blds),
            "unknown_buildings": list(unknown), "note": note,
            "position": {"type": "Point", "coordinates": [px, py]} if px is not None else None,
            "matched_by": matched_by, "gps_sigma_m": round(sigma, 1) if sigma is not None else None}


def visit_streets(conn: Connection, visit_id: int) -> dict[str, Any]:
    """What a visit was credited with, to draw: a GeoJSON FeatureCollection of the grid's street segments it walked
    (``kind: walked``, with name and length), the path the matcher found (``kind: matched``) and the track as sent
    (``kind: track``); its properties are the visit's figures (:func:`get_visit`)."""
    visit = get_visit(conn, visit_id)
    features: list[dict[str, Any]] = []
    for name, length, geometry in conn.exec_driver_sql(
            """SELECT e.name, e.length_m, ST_AsGeoJSON(e.geom, 7)
               FROM patrol_visits v JOIN grids g ON g.id = v.grid_id
               JOIN admin_units c ON c.id = g.community_id,
               jsonb_array_elements(v.walked_segments) s
               JOIN road_edges e ON e.network = 'walk'
                AND e.u = least((s->>0)::bigint, (s->>1)::bigint) AND e.v = greatest((s->>0)::bigint, (s->>1)::bigint)
                AND e.key = (s->>2)::int
               WHERE v.id = %(i)s AND e.city_id = c.city_id ORDER BY e.u, e.v, e.key""", {"i": visit_id}):
        features.append({"type": "Feature", "geometry": json.loads(geometry),
                         "properties": {"kind": "walked", "name": name or "", "length_m": round(length, 1)}})
    for kind, geometry in conn.exec_driver_sql(
            "SELECT 'matched', ST_AsGeoJSON(matched_path, 7) FROM patrol_visits WHERE id = %(i)s "
            "AND matched_path IS NOT NULL UNION ALL "
            "SELECT 'track', ST_AsGeoJSON(track, 7) FROM patrol_visits WHERE id = %(i)s AND track IS NOT NULL",
            {"i": visit_id}):
        features.append({"type": "Feature", "geometry": json.loads(geometry), "properties": {"kind": kind}})
    return {"type": "FeatureCollection", "features": features, "properties": visit}


def month_bounds(month: str) -> tuple[date, date]:
    """The first and last day of ``YYYY-MM``."""
    try:
        year, mon = (int(v) for v in month.split("-"))
        first = date(year, mon, 1)
    except ValueError:
        raise InputError(f"month is YYYY-MM, e.g. 2026-11; got {month!r}") from None
    return first, date(year, mon, calendar.monthrange(year, mon)[1])


def month_weeks(month: str) -> list[date]:
    """The Mondays of the month's weeks: the weeks whose Thursday falls in the month (ISO 8601's rule, so every
    week belongs to exactly one month)."""
    first, last = month_bounds(month)
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        if first <= monday + timedelta(days=3) <= last:
            weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


def compliance(conn: Connection, code: str, month: str, timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    """Was the weekly basic patrol done in each week of ``month``, and the monthly full inspection?"""
    tz = ZoneInfo(timezone)
    weeks = month_weeks(month)
    first, last = month_bounds(month)
    start = datetime.combine(min(weeks[0], first), datetime.min.time(), tz)
    end = datetime.combine(max(weeks[-1] + timedelta(days=7), last + timedelta(days=1)), datetime.min.time(), tz)
    grid = conn.exec_driver_sql("SELECT id FROM grids WHERE code = %(c)s", {"c": code}).scalar()
    if grid is None:
        raise NotFoundError(f"no grid {code}")
    visits = conn.exec_driver_sql(
        "SELECT started_at, staff_id, walked_segments, buildings FROM patrol_visits "
        "WHERE grid_code = %(c)s AND started_at >= %(a)s AND started_at < %(b)s ORDER BY started_at",
        {"c": code, "a": start, "b": end}).all()
    all_buildings = {r[0] for r in conn.exec_driver_sql(
        "SELECT id FROM buildings WHERE grid_id = %(g)s", {"g": grid})}
    net = load_grid_network(conn, code)
    graph = net["graph"]
    lengths = {segment_key((u, v, k)): graph.edges[u, v, k]["length"] for u, v, k in net["required"]}
    required_m = sum(lengths.values())
    now = datetime.now(tz)
    rows = []
    month_walked: set[tuple[int, int, int]] = set()
    for monday in weeks:
        a = datetime.combine(monday, datetime.min.time(), tz)
        b = a + timedelta(days=7)
        week = [v for v in visits if a <= v[0] < b]
        walked = {segment_key(s) for v in week for s in v[2]} & set(lengths)
        month_walked |= walked  # type: ignore[arg-type]
        share = sum(lengths[s] for s in walked) / required_m if required_m else 0.0  # type: ignore[index]
        done = share >= BASIC_DONE_SHARE
        rows.append({"week_of": monday.isoformat(), "visits": len(week), "walked_share": round(share, 4),
                     "staff": sorted({v[1] for v in week if v[1] is not None}),
                     "basic_patrol": "done" if done else ("missed" if b <= now else "open")})
    in_month = [v for v in visits if first <= v[0].astimezone(tz).date() <= last]
    visited = {b for v in in_month for b in v[3]} & all_buildings
    complete = bool(all_buildings) and visited == all_buildings
    month_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    return {"grid": code, "month": month, "weeks": rows,
            "basic_patrols_done": sum(r["basic_patrol"] == "done" for r in rows), "weeks_in_month": len(rows),
            "street_share_walked": round(sum(lengths[s] for s in month_walked) / required_m, 4)  # type: ignore[index]
            if required_m else None,
            "buildings": len(all_buildings), "buildings_visited": len(visited),
            "full_inspection": "done" if complete else ("missed" if month_end <= now else "open"),
            "rules": {"tolerance_m_default": DEFAULT_TOLERANCE_M, "segment_walked_share": WALKED_SHARE,
                      "basic_done_share": BASIC_DONE_SHARE, "inspection": "every building visited in the month"}}


def _week_shares(conn: Connection, city_id: int, prefix: str | None, starts: list[datetime],
                 tz: ZoneInfo) -> tuple[dict[tuple[str, datetime], float], dict[tuple[str, datetime], int]]:
    """Per (grid code, week start) with visits: the share of the grid's streets walked that week, and the visits."""
    shares: dict[tuple[str, datetime], float] = {}
    visitors: dict[tuple[str, datetime], int] = {}
    if starts:
        rows = conn.exec_driver_sql(
            """WITH wk AS (SELECT unnest(%(starts)s::timestamptz[]) AS a),
                    vis AS (SELECT v.grid_code, wk.a, v.walked_segments, v.required_m, v.started_at
                            FROM patrol_visits v JOIN grids g ON g.code = v.grid_code
                            JOIN admin_units c ON c.id = g.community_id AND c.city_id = %(city)s
                            JOIN wk ON v.started_at >= wk.a AND v.started_at < wk.a + interval '7 days'
                            WHERE v.grid_code LIKE %(p)s),
                    seg AS (SELECT DISTINCT vis.grid_code, vis.a, (s->>0)::bigint AS u, (s->>1)::bigint AS v,
                                   (s->>2)::int AS k
                            FROM vis, jsonb_array_elements(vis.walked_segments) s),
                    walked AS (SELECT seg.grid_code, seg.a, sum(coalesce(
                                   (SELECT e.length_m FROM road_edges e WHERE e.city_id = %(city)s
                                    AND e.network = 'walk' AND e.u = seg.u AND e.v = seg.v AND e.key = seg.k),
                                   (SELECT e.length_m FROM road_edges e WHERE e.city_id = %(city)s
                                    AND e.network = 'walk' AND e.u = seg.v AND e.v = seg.u AND e.key = seg.k),
                                   0)) AS m
                               FROM seg GROUP BY 1, 2),
                    req AS (SELECT DISTINCT ON (grid_code, a) grid_code, a, required_m FROM vis
                            ORDER BY grid_code, a, started_at DESC),
                    n AS (SELECT grid_code, a, count(*) AS visits FROM vis GROUP BY 1, 2)
               SELECT req.grid_code, req.a, coalesce(walked.m, 0) / nullif(req.required_m, 0), n.visits
               FROM req JOIN n USING (grid_code, a) LEFT JOIN walked USING (grid_code, a)""",
            {"starts": starts, "city": city_id, "p": (prefix or "") + "%"}).all()
        for code, a, share, visits in rows:
            shares[code, a.astimezone(tz)] = float(share or 0.0)
            visitors[code, a.astimezone(tz)] = int(visits)
    return shares, visitors


def week_summary(conn: Connection, *, city_id: int, prefix: str | None, monday: date,
                 timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    """How many of a city's grids (whose code starts with ``prefix``) had their basic patrol done in the week of
    ``monday``, and how many were visited at all: :func:`compliance_many`'s counts for one week, without a row per
    grid (the big screen's figure for a city of thousands of grids)."""
    tz = ZoneInfo(timezone)
    grids = conn.exec_driver_sql(
        "SELECT count(*) FROM grids g JOIN admin_units c ON c.id = g.community_id "
        "WHERE c.city_id = %(city)s AND g.code LIKE %(p)s", {"city": city_id, "p": (prefix or "") + "%"}).scalar_one()
    start = datetime.combine(monday, datetime.min.time(), tz)
    shares, visitors = _week_shares(conn, city_id, prefix, [start], tz)
    return {"week_of": monday.isoformat(), "grids": int(grids),
            "done": sum(share >= BASIC_DONE_SHARE for share in shares.values()), "visited": len(visitors)}


def compliance_many(conn: Connection, *, city_id: int, prefix: str | None = None, weeks: list[date],
                    month: str | None = None, timezone: str = "Asia/Shanghai",
                    now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """:func:`compliance` for every grid of a city (whose code starts with ``prefix``) at once, set-based: per grid
    code, the share of its streets walked in each week of ``weeks`` (their Mondays) with the basic patrol's status,
    and, with ``month``, the month's full inspection (buildings visited of the grid's buildings).

    It counts what :func:`compliance` counts, in a few queries for a whole city instead of a street network per
    grid: a week's walked length is the union of the week's walked segments, over the grid's required length as
    recorded with the week's latest visit. The two agree while a grid's streets are unchanged since its visits;
    after a planner marks a street optional, the per-grid figure (which re-reads the network) is the exact one."""
    tz = ZoneInfo(timezone)
    at = now or datetime.now(tz)
    grids = conn.exec_driver_sql(
        "SELECT g.id, g.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
        "WHERE c.city_id = %(city)s AND g.code LIKE %(p)s ORDER BY g.code",
        {"city": city_id, "p": (prefix or "") + "%"}).all()
    starts = [datetime.combine(m, datetime.min.time(), tz) for m in weeks]
    shares, visitors = _week_shares(conn, city_id, prefix, starts, tz)
    month_rows: dict[str, tuple[int, int]] = {}
    month_end = None
    if month is not None:
        first, last = month_bounds(month)
        m_start = datetime.combine(first, datetime.min.time(), tz)
        month_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
        totals: dict[int, int] = dict(conn.exec_driver_sql(
            "SELECT b.grid_id, count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id JOIN admin_units c "
            "ON c.id = g.community_id WHERE c.city_id = %(city)s AND g.code LIKE %(p)s GROUP BY 1",
            {"city": city_id, "p": (prefix or "") + "%"}).all())
        visited: dict[int, int] = dict(conn.exec_driver_sql(
            """SELECT g.id, count(DISTINCT x) FROM patrol_visits v JOIN grids g ON g.code = v.grid_code
                   JOIN admin_units c ON c.id = g.community_id AND c.city_id = %(city)s
                   CROSS JOIN LATERAL unnest(v.buildings) x JOIN buildings b ON b.id = x AND b.grid_id = g.id
               WHERE v.grid_code LIKE %(p)s AND v.started_at >= %(a)s AND v.started_at < %(b)s GROUP BY 1""",
            {"city": city_id, "p": (prefix or "") + "%", "a": m_start, "b": month_end}).all())
        month_rows = {code: (int(totals.get(gid, 0)), int(visited.get(gid, 0))) for gid, code in grids}
    out: dict[str, dict[str, Any]] = {}
    for _gid, code in grids:
        week_rows = []
        for a in starts:
            share = shares.get((code, a), 0.0)
            done = share >= BASIC_DONE_SHARE
            week_rows.append({"week_of": a.date().isoformat(), "visits": visitors.get((code, a), 0),
                              "walked_share": round(share, 4),
                              "basic_patrol": "done" if done else ("missed" if a + timedelta(days=7) <= at
                                                                   else "open")})
        row: dict[str, Any] = {"grid": code, "weeks": week_rows,
                               "basic_patrols_done": sum(w["basic_patrol"] == "done" for w in week_rows),
                               "weeks_in_month": len(week_rows)}
        if month is not None and month_end is not None:
            buildings, seen = month_rows[code]
            complete = buildings > 0 and seen == buildings
            row |= {"buildings": buildings, "buildings_visited": seen,
                    "full_inspection": "done" if complete else ("missed" if month_end <= at else "open")}
        out[code] = row
    return out


def schedule(engine: Engine, code: str, month: str, timezone: str = "Asia/Shanghai", *,
             shared: bool = False) -> dict[str, Any]:
    """A month's patrol plan for grid ``code`` and its people (chief and members), with each item's status.

    Every person walks the basic patrol once a week, on a weekday that differs per person and per grid (the
    grid chief's day is the grid id modulo 5, so a street's grids are not all patrolled on Monday; members follow
    two days apart). The full inspection's tours (days or members, as planned by the inspection) fall on the working
    days from the month's second week on, in turn to each person. Status comes from the logged visits
    (:func:`compliance`): a basic patrol item is done when its person logged a visit that week and the week's
    patrol is done; an inspection item when the month's inspection is; otherwise missed once its time has passed.

    Where the planner set a share (:mod:`gis.patrol.store.shares`), its parts, whatever ``shared`` says; else
    ``shared``: with two or more people, the basic patrol is shared among them
    (:func:`gis.patrol.split.split_route`, one part each) and the parts rotate week by week, so that each person
    walks every part of the grid in turn; the week's patrol is done when the parts together walked the grid (the
    week's visits count together, as always).
    """
    from gis.patrol.split import MAX_PARTS, split_route
    from gis.patrol.store.plans import MARGIN_M, _network_and_base, plan_full_inspection

    tz = ZoneInfo(timezone)
    weeks = month_weeks(month)
    with engine.connect() as conn:  # a short read; the inspection is planned without a connection held
        grid = conn.exec_driver_sql("SELECT id FROM grids WHERE code = %(c)s", {"c": code}).scalar()
        if grid is None:
            raise NotFoundError(f"no grid {code}")
        people = grid_crew(conn, code)
        status = compliance(conn, code, month, timezone)
        stored = get_share(conn, code)
    try:
        tours = plan_full_inspection(engine, code)["properties"]["tours"]
    except InputError:  # no buildings, or none reachable: nothing to inspect
        tours = 0
    now = datetime.now(tz).date()
    crew: list[tuple[int | None, str | None, str | None]] = [*people] or [(None, None, None)]
    parts: list[float] = []
    if stored is not None:  # the share the planner set: its parts, the same ones every member's route shows
        parts = list(stored["lengths_m"])
    elif shared and len(people) >= 2:
        net, node, _ = _network_and_base(engine, code, None, MARGIN_M)
        k = min(len(people), MAX_PARTS, len(net["required"]))
        if k >= 2:
            parts = [p.length_m for p in split_route(net["graph"], net["required"], node, k).parts]
    items: list[dict[str, Any]] = []
    for w, (monday, week) in enumerate(zip(weeks, status["weeks"], strict=True)):
        for i, (staff_id, name, duty) in enumerate(crew):
            day = monday + timedelta(days=(grid + 2 * i) % 5)
            done = week["basic_patrol"] == "done" and staff_id in week["staff"]
            item: dict[str, Any] = {
                "date": day.isoformat(), "kind": "basic", "staff_id": staff_id, "staff_name": name, "duty": duty,
                "week_of": monday.isoformat(),
                "status": "done" if done else ("missed" if monday + timedelta(days=7) <= now else "planned")}
            if parts:  # each week the parts move on by one, so everyone walks all of them in turn
                part = rotation(i, w, len(parts))
                item |= {"part": part + 1, "parts": len(parts), "part_length_m": round(parts[part], 1)}
            items.append(item)
    first, last = month_bounds(month)
    day = weeks[1] if len(weeks) > 1 else weeks[0]
    for tour in range(1, tours + 1):
        while day.weekday() >= 5 or day < first:
            day += timedelta(days=1)
        staff_id, name, duty = crew[(tour - 1) % len(crew)]
        done = status["full_inspection"] == "done"
        items.append({"date": min(day, last).isoformat(), "kind": "inspection", "tour": tour, "staff_id": staff_id,
                      "staff_name": name, "duty": duty,
                      "status": "done" if done else ("missed" if last < now else "planned")})
        day += timedelta(days=1)
    items.sort(key=lambda item: (item["date"], item["kind"], str(item["staff_id"])))
    return {"grid": code, "month": month, "people": len(people), "inspection_tours": tours,
            "shared_parts": len(parts),
            "warning": None if people else f"grid {code} has no chief or member: the plan names nobody",
            "items": items, "compliance": {k: status[k] for k in ("basic_patrols_done", "weeks_in_month",
                                                                   "full_inspection", "buildings_visited",
                                                                   "buildings")}}
