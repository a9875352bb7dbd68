"""Coverage reports: how well each grid is covered, rolled up to community, street, district and city, for a period.

Per grid:
* **street length**: the walk network's segments the grid patrols (those whose middle lies inside it or within
  15 m of it, as for the basic patrol, less those its planner marked optional); **planned**: the part its basic
  patrol covers, i.e. the segments on the piece of the city's walk network that holds most of the grid's streets
  (an approximation of the route's reach: the route itself searches a margin of at most 800 m); **walked**: the
  segments logged visits walked in the period (their union);
* **buildings visited** and **key places visited** in the period (a key place counts when a logged track passed
  within :data:`PLACE_VISIT_M`);
* **events per 1,000 households** reported in the period;
* **response circles**: the share of households and of key places within 1, 3 and 5 minutes (configurable) of a
  police station and of a grid base, on foot (4.5 km/h), by e-bike (15 km/h, on the walk network) or by car
  (30 km/h on the drive network, one-way streets ignored: an approximation). The circles are network isochrones:
  a multi-source Dijkstra from every station (or base) over the city's network, every edge cut where the time
  runs out, the reachable pieces buffered by :data:`ISOCHRONE_BUFFER_M` (the way from the street to a door), never
  convex hulls. A building (a key place) counts when its footprint touches the area: its door is within
  :data:`ISOCHRONE_BUFFER_M` of a street reached in time. Where OSM lacks the footways inside compounds, buildings
  lie further than that from every street and count as outside at any time (``households_near_network_share``
  says how many are within reach of the network at all). A grid's base is the network node nearest its centre (no
  office locations are stored yet).

Rolled-up rows sum numerators and denominators (a boundary street counts for both grids it bounds).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree
from sqlalchemy.engine import Engine

from gis.errors import InputError
from gis.geo.crs import utm_crs_for
from gis.patrol.store.plans import EDGE_M

MODES = {"walk": ("walk", 75.0), "ebike": ("walk", 250.0), "drive": ("drive", 500.0)}  # network, metres/minute
DEFAULT_MINUTES = (1.0, 3.0, 5.0)
ISOCHRONE_BUFFER_M = 30.0
PLACE_VISIT_M = 30.0
LEVELS = ("grid", "community", "street", "district", "city")
SOURCES = ("police", "base")


def coverage_report(engine: Engine, city_id: int, start: datetime, end: datetime, *, by: str = "grid",
                    mode: str = "walk", minutes: Sequence[float] = DEFAULT_MINUTES,
                    with_areas: bool = False) -> dict[str, Any]:
    """The coverage rows of ``city_id``'s grids (or their communities, streets, districts, the city). With
    ``with_areas`` the result also holds the response circles themselves (``areas``: ``"police_5min"`` and so on →
    a shapely geometry in WGS-84, simplified to 5 m), for maps."""
    if by not in LEVELS:
        raise InputError(f"by is one of {', '.join(LEVELS)}")
    if mode not in MODES:
        raise InputError(f"mode is one of {', '.join(MODES)}")
    minutes = sorted(set(minutes))
    if not minutes or len(minutes) > 6 or not all(0 < m <= 60 for m in minutes):
        raise InputError("minutes: 1 to 6 values, each more than 0 and at most 60")
    if end <= start:
        raise InputError("the period ends before it starts")
    started = time.perf_counter()
    network, speed = MODES[mode]
    with engine.connect() as conn:
        grids = conn.exec_driver_sql(
            "SELECT g.id, g.code, g.name, c.id, c.parent_id, s.parent_id, c.city_id, "
            "ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) "
            "FROM grids g JOIN admin_units c ON c.id = g.community_id LEFT JOIN admin_units s ON s.id = c.parent_id "
            "WHERE c.city_id = %(c)s ORDER BY g.code", {"c": city_id}).all()
        if not grids:
            raise InputError(f"city {city_id} has no grids: divide it first (gridpatrol divide)")
        units = {r[0]: (r[1], r[2], r[3]) for r in conn.exec_driver_sql(
            "SELECT id, code, name, level FROM admin_units WHERE city_id = %(c)s OR id = %(c)s", {"c": city_id})}
        buildings = conn.exec_driver_sql(
            "SELECT b.id, b.grid_id, b.households, ST_AsBinary(b.geom) FROM buildings b "
            "WHERE b.city_id = %(c)s AND b.grid_id IS NOT NULL",
            {"c": city_id}).all()
        places = conn.exec_driver_sql(
            "SELECT k.id, g.id, k.kind, ST_AsBinary(k.geom) FROM key_places k CROSS JOIN LATERAL "
            "ST_PointOnSurface(k.geom) p JOIN grids g ON g.geom && p AND ST_Intersects(g.geom, p) "
            "JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = %(c)s", {"c": city_id}).all()
        stations = conn.exec_driver_sql(
            "SELECT ST_X(p), ST_Y(p) FROM key_places k, LATERAL ST_PointOnSurface(k.geom) p "
            "WHERE k.city_id = %(c)s AND k.kind = 'police'", {"c": city_id}).all()
        edges = conn.exec_driver_sql(
            "SELECT u, v, key, length_m, ST_AsBinary(geom) FROM road_edges WHERE city_id = %(c)s "
            "AND network = %(n)s", {"c": city_id, "n": network}).all()
        # (MATERIALIZED: each grid's buffer is computed once, not once per street it is tested against)
        streets = conn.exec_driver_sql(
            f"""WITH area AS MATERIALIZED (
                    SELECT g.id, g.code, ST_Buffer(g.geom::geography, {EDGE_M})::geometry AS a FROM grids g
                    JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = %(c)s),
                streets AS MATERIALIZED (
                    SELECT DISTINCT a.id, a.code, least(e.u, e.v) AS u, greatest(e.u, e.v) AS v, e.key, e.length_m
                    FROM area a JOIN road_edges e ON e.city_id = %(c)s AND e.network = 'walk' AND e.geom && a.a
                     AND ST_Intersects(a.a, ST_LineInterpolatePoint(e.geom, 0.5)))
                SELECT s.id, s.u, s.v, s.key, s.length_m FROM streets s
                WHERE NOT EXISTS (SELECT 1 FROM patrol_optional_streets o WHERE o.grid_code = s.code
                                  AND o.u = s.u AND o.v = s.v AND o.key = s.key)""",
            {"c": city_id}).all()
        visits = conn.exec_driver_sql(
            "SELECT v.grid_id, v.walked_segments, v.buildings FROM patrol_visits v JOIN grids g ON g.id = v.grid_id "
            "JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = %(c)s AND v.started_at >= %(a)s "
            "AND v.started_at < %(b)s", {"c": city_id, "a": start, "b": end}).all()
        places_visited = {r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT k.id FROM patrol_visits v JOIN key_places k ON k.city_id = %(c)s "
            "AND k.geom && ST_Expand(v.track, 0.001) AND ST_DWithin(v.track::geography, "
            "ST_PointOnSurface(k.geom)::geography, %(m)s) WHERE v.track IS NOT NULL AND v.started_at >= %(a)s "
            "AND v.started_at < %(b)s", {"c": city_id, "m": PLACE_VISIT_M, "a": start, "b": end})}
        events: dict[int, int] = dict(conn.exec_driver_sql(
            "SELECT e.grid_id, count(*) FROM events e JOIN grids g ON g.id = e.grid_id JOIN admin_units c "
            "ON c.id = g.community_id WHERE c.city_id = %(c)s AND e.reported_at >= %(a)s AND e.reported_at < %(b)s "
            "AND e.duplicate_of IS NULL AND e.state <> 'merged' GROUP BY e.grid_id",
            {"c": city_id, "a": start, "b": end}).all())
    if not edges:
        raise InputError(f"city {city_id} has no {network} network: import it with its streets")

    # the network, in a metric projection
    lon0, lat0 = grids[0][7], grids[0][8]
    to_metric = Transformer.from_crs(4326, utm_crs_for(lon0, lat0), always_xy=True)

    def metric(wkbs: list[Any]) -> np.ndarray:
        return shapely.transform(shapely.from_wkb([bytes(w) for w in wkbs]), lambda xy: np.column_stack(
            to_metric.transform(xy[:, 0], xy[:, 1])))

    lines = metric([e[4] for e in edges])
    node_ids = sorted({int(e[0]) for e in edges} | {int(e[1]) for e in edges})
    index = {n: i for i, n in enumerate(node_ids)}
    u = np.array([index[int(e[0])] for e in edges])
    v = np.array([index[int(e[1])] for e in edges])
    length = np.array([float(e[3]) for e in edges])
    graph = _undirected_min(u, v, length, len(index))
    starts = shapely.get_coordinates(shapely.get_point(lines, 0))
    ends = shapely.get_coordinates(shapely.get_point(lines, -1))
    node_xy = np.zeros((len(index), 2))
    node_xy[u] = starts
    node_xy[v] = ends
    tree = cKDTree(node_xy)

    def snap(points: list[tuple[float, float]]) -> np.ndarray:
        if not points:
            return np.array([], dtype=int)
        x, y = to_metric.transform([p[0] for p in points], [p[1] for p in points])
        return tree.query(np.column_stack([x, y]))[1]  # type: ignore[no-any-return]

    # response circles
    sources = {"police": snap([(s[0], s[1]) for s in stations]), "base": snap([(g[7], g[8]) for g in grids])}
    footprints = metric([b[3] for b in buildings])
    place_shapes = metric([p[3] for p in places])
    inside: dict[tuple[str, float], tuple[np.ndarray, np.ndarray]] = {}
    areas: dict[str, Any] = {}
    to_wgs84 = Transformer.from_crs(to_metric.target_crs, 4326, always_xy=True)
    for source, nodes in sources.items():
        if len(nodes) == 0:
            for m in minutes:
                inside[source, m] = (np.zeros(len(buildings), bool), np.zeros(len(places), bool))
            continue
        reach = dijkstra(graph, directed=False, indices=np.unique(nodes), min_only=True,
                         limit=max(minutes) * speed + 1)
        for m in minutes:
            area = _isochrone(lines, u, v, length, reach, m * speed)
            inside[source, m] = (shapely.intersects(area, footprints), shapely.intersects(area, place_shapes))
            if with_areas:
                areas[f"{source}_{m:g}min"] = shapely.transform(area.simplify(5.0), lambda xy: np.column_stack(
                    to_wgs84.transform(xy[:, 0], xy[:, 1])))

    near = shapely.union_all(shapely.buffer(lines, ISOCHRONE_BUFFER_M, quad_segs=4))
    near_network = shapely.intersects(near, footprints)

    # streets: required, planned (on the grid's main piece of the walk network), walked
    walk_edges = edges if network == "walk" else []
    if network != "walk":
        with engine.connect() as conn:
            walk_edges = conn.exec_driver_sql("SELECT u, v, key, length_m FROM road_edges WHERE city_id = %(c)s "
                                              "AND network = 'walk'", {"c": city_id}).all()
    windex: dict[int, int] = {}
    for e in walk_edges:
        windex.setdefault(int(e[0]), len(windex))
        windex.setdefault(int(e[1]), len(windex))
    wu = np.array([windex[int(e[0])] for e in walk_edges])
    wv = np.array([windex[int(e[1])] for e in walk_edges])
    _, piece = connected_components(_undirected_min(wu, wv, np.ones(len(wu)), len(windex)), directed=False)
    required: dict[int, dict[tuple[int, int, int], float]] = defaultdict(dict)
    for grid_id, a, b, key, metres in streets:
        required[grid_id][int(a), int(b), int(key)] = float(metres)
    walked: dict[int, set[tuple[int, int, int]]] = defaultdict(set)
    visited: dict[int, set[int]] = defaultdict(set)
    for grid_id, segments, blds in visits:
        walked[grid_id] |= {(min(int(s[0]), int(s[1])), max(int(s[0]), int(s[1])), int(s[2])) for s in segments}
        visited[grid_id] |= set(blds)

    rows: dict[int, dict[str, Any]] = {}
    for gid, code, name, community, street, district, city, _, _ in grids:
        segs = required.get(gid, {})
        by_piece: dict[int, float] = defaultdict(float)
        for (a, _b, _k), metres in segs.items():
            by_piece[int(piece[windex[a]])] += metres
        main = max(by_piece, key=lambda p: by_piece[p]) if by_piece else None
        rows[gid] = {"grid": code, "name": name, "units": {"community": community, "street": street,
                                                            "district": district, "city": city},
                     "grids": 1, "street_m": sum(segs.values()),
                     "planned_m": sum(m for (a, _b, _k), m in segs.items() if piece[windex[a]] == main),
                     "walked_m": sum(m for s, m in segs.items() if s in walked.get(gid, set())),
                     "households": 0, "households_near_network": 0, "buildings": 0, "buildings_visited": 0,
                     "key_places": 0, "key_places_visited": 0, "events": int(events.get(gid, 0)),
                     **{f"{what}_{s}_{m:g}min": 0 for s in SOURCES for m in minutes
                        for what in ("households", "key_places")}}
    for i, (bid, gid, households, _) in enumerate(buildings):
        row = rows.get(gid)
        if row is None:
            continue
        row["households"] += households
        row["households_near_network"] += households * bool(near_network[i])
        row["buildings"] += 1
        row["buildings_visited"] += bid in visited.get(gid, set())
        for s in SOURCES:
            for m in minutes:
                row[f"households_{s}_{m:g}min"] += households * bool(inside[s, m][0][i])
    for i, (pid, gid, _kind, _) in enumerate(places):
        row = rows[gid]
        row["key_places"] += 1
        row["key_places_visited"] += pid in places_visited
        for s in SOURCES:
            for m in minutes:
                row[f"key_places_{s}_{m:g}min"] += bool(inside[s, m][1][i])
    out = _roll_up(list(rows.values()), by, units, minutes)
    return {"city_id": city_id, "by": by, "start": start.isoformat(), "end": end.isoformat(), "mode": mode,
            "minutes": minutes, "speed_m_per_min": speed, "network": network, "police_stations": len(stations),
            "seconds": round(time.perf_counter() - started, 2), "rows": out, **({"areas": areas} if with_areas else {})}


def _undirected_min(u: np.ndarray, v: np.ndarray, weight: np.ndarray, n: int) -> sparse.csr_matrix:
    """A sparse graph with one entry per node pair: the shortest of its parallel edges (both directions)."""
    a, b = np.minimum(u, v), np.maximum(u, v)
    keep = a != b
    order = np.lexsort((weight[keep], b[keep], a[keep]))
    a, b, w = a[keep][order], b[keep][order], weight[keep][order]
    first = np.ones(len(a), bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return sparse.csr_matrix((w[first], (a[first], b[first])), shape=(n, n))


def _isochrone(lines: np.ndarray, u: np.ndarray, v: np.ndarray, length: np.ndarray, reach: np.ndarray,
               radius: float) -> shapely.Geometry:
    """The area within ``radius`` metres of the sources: each edge kept as far as the time lasts from either end,
    buffered by :data:`ISOCHRONE_BUFFER_M`."""
    from_u = np.clip(radius - reach[u], 0, length)
    from_v = np.clip(radius - reach[v], 0, length)
    whole = from_u + from_v >= length
    pieces = list(lines[whole & (length > 0)])
    part = ~whole
    for i in np.flatnonzero(part & (from_u > 0)):
        pieces.append(shapely.ops.substring(lines[i], 0, from_u[i] / length[i], normalized=True))
    for i in np.flatnonzero(part & (from_v > 0)):
        pieces.append(shapely.ops.substring(lines[i], 1 - from_v[i] / length[i], 1, normalized=True))
    if not pieces:
        return shapely.Polygon()
    area = shapely.union_all(shapely.buffer(np.array(pieces, dtype=object), ISOCHRONE_BUFFER_M, quad_segs=4))
    shapely.prepare(area)
    return area


def _roll_up(rows: list[dict[str, Any]], by: str, units: dict[int, tuple[str, str, str]],
             minutes: Sequence[float]) -> list[dict[str, Any]]:
    counts = [k for k in rows[0] if k not in ("grid", "name", "units")]
    groups: dict[Any, dict[str, Any]] = {}
    for row in rows:
        if by == "grid":
            key, code, name = row["grid"], row["grid"], row["name"]
        else:
            key = row["units"][by]
            code, name, _ = units.get(key, (None, None, None))
        group = groups.setdefault(key, {"level": by, "code": code, "name": name, **{k: 0 for k in counts}})
        for k in counts:
            group[k] += row[k]
    out = []
    for group in groups.values():
        street, households, places = group["street_m"], group["households"], group["key_places"]
        shares = {
            "planned_share": _share(group["planned_m"], street), "walked_share": _share(group["walked_m"], street),
            "buildings_visited_share": _share(group["buildings_visited"], group["buildings"]),
            "key_places_visited_share": _share(group["key_places_visited"], places),
            "households_near_network_share": _share(group["households_near_network"], households),
            "events_per_1000_households": round(1000 * group["events"] / households, 2) if households else None,
        }
        for s in SOURCES:
            for m in minutes:
                shares[f"households_{s}_{m:g}min_share"] = _share(group[f"households_{s}_{m:g}min"], households)
                shares[f"key_places_{s}_{m:g}min_share"] = _share(group[f"key_places_{s}_{m:g}min"], places)
        for k in ("street_m", "planned_m", "walked_m"):
            group[k] = round(group[k], 1)
        out.append({**group, **shares})
    return sorted(out, key=lambda r: str(r["code"]))


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None
