"""A grid's basic patrol from the stored walk network: load the network around the grid, plan the route
(:func:`gis.patrol.route.basic_route`), and deliver it as GeoJSON (ordered steps, turn list, stops) or GPX 1.1.

* The network is the walk network within ``margin_m`` (default 60 m) of the grid, so a route may use a street just
  outside; the streets **required** are those whose middle lies inside the grid or within ``EDGE_M`` (15 m) of
  it: grids are drawn along streets, so the streets on a grid's boundary are patrolled by the grids on both sides.
* The base is a point the caller gives (the community office, the grid's service station), snapped to the
  nearest network node and refused when that is more than ``MAX_BASE_SNAP_M`` away; by default, the node nearest
  the grid's centre on the piece of network that holds most of the grid's streets.
* Streets a planner marked optional (:mod:`gis.patrol.store.streets`) are in the network but not required: the
  route walks them only where that is the shortest way (the rural postman on the required streets).
* Stops: the grid's key places (schools, markets, clinics, …) at the route's node nearest each, and its hot spots
  (a route intersection with 2+ of the grid's events of the last 90 days within 50 m), with a dwell time (default
  10 minutes, DOMAIN.md's 10–16).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
from shapely.geometry import LineString, mapping
from sqlalchemy.engine import Connection, Engine

from gis.dispatch.rules import OPEN_STATES
from gis.errors import InputError, NotFoundError
from gis.geo.crs import WGS84, utm_crs_for
from gis.patrol.budgeted import EVENT_RISK, KEY_PLACE_RISK, OPEN_EVENT_RISK, plan_budgeted
from gis.patrol.inspection import DEFAULT_MINUTES_PER_BUILDING, DEFAULT_SHIFT_MIN, plan_inspection
from gis.patrol.route import Route, shortest_key
from gis.patrol.rural import exact_route
from gis.patrol.split import DEFAULT_EXACT_S as SPLIT_EXACT_S
from gis.patrol.split import split_route

DEFAULT_EXACT_S = 2.0
"""Seconds CP-SAT may spend on a rural grid's basic patrol (gis.patrol.rural)."""
MARGIN_M = 60.0
WIDER_MARGINS_M = (250.0, 800.0)
EDGE_M = 15.0
MAX_BASE_SNAP_M = 300.0
DEFAULT_DWELL_MIN = 10.0
DEFAULT_HOT_SPOT_DAYS = 90
HOT_SPOT_MIN_EVENTS = 2  # half of all calls come from under 5 % of places (DOMAIN.md): a repeat marks one
HOT_SPOT_NEAR_M = 50.0


def _metres(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Great-circle distance in metres (numpy-friendly)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


def load_grid_network(conn: Connection, code: str, margin_m: float = MARGIN_M) -> dict[str, Any]:
    """The grid's polygon, its undirected walk network (osmnx MultiGraph) with margin, the required edges, its
    key places."""
    grid = conn.exec_driver_sql(
        "SELECT g.id, ST_AsBinary(g.geom), c.city_id FROM grids g JOIN admin_units c ON c.id = g.community_id "
        "WHERE g.code = %(c)s", {"c": code}).first()
    if grid is None:
        raise NotFoundError(f"no grid {code}")
    grid_id, wkb, city_id = grid
    # (MATERIALIZED: the grid's buffer is computed once; inlined, PostgreSQL computed it again for every street it
    # tested, 1.9 s for a 1,000-street rural grid of Liechtenstein.) In a fixed order, streets and nodes: the graph
    # is built in it, and the route's ties follow it, so the same streets give the same route however they were
    # stored (two imports of one file gave Beijing's grids different routes of equal length)
    edges = gpd.read_postgis(
        """WITH a AS MATERIALIZED (SELECT ST_Buffer(geom::geography, %(m)s)::geometry AS area FROM grids
                                    WHERE id = %(g)s)
           SELECT e.u, e.v, e.key, e.osm_ids AS osmid, e.name, e.highway, e.length_m AS length, e.geom
           FROM road_edges e, a
           WHERE e.city_id = %(city)s AND e.network = 'walk' AND e.geom && a.area
             AND ST_Intersects(e.geom, a.area)
           ORDER BY e.u, e.v, e.key""",
        conn, geom_col="geom", params={"m": margin_m, "g": grid_id, "city": city_id}, crs=WGS84)
    places = conn.exec_driver_sql(
        "SELECT k.kind, k.name, ST_X(ST_PointOnSurface(k.geom)), ST_Y(ST_PointOnSurface(k.geom)) "
        "FROM key_places k, grids g WHERE g.id = %(g)s AND k.geom && g.geom "
        "AND ST_Intersects(g.geom, ST_PointOnSurface(k.geom)) ORDER BY k.id", {"g": grid_id}).all()
    marked = {(int(a), int(b), int(k)) for a, b, k in conn.exec_driver_sql(
        "SELECT u, v, key FROM patrol_optional_streets WHERE grid_code = %(c)s", {"c": code})}
    ids = sorted({int(n) for n in pd.concat([edges["u"], edges["v"]])}) if len(edges) else []
    nodes = gpd.read_postgis(
        "SELECT osm_id, geom FROM road_nodes WHERE city_id = %(city)s AND network = 'walk' "
        "AND osm_id = ANY(%(ids)s) ORDER BY osm_id", conn, geom_col="geom", params={"city": city_id, "ids": ids},
        crs=WGS84)
    polygon = shapely.from_wkb(bytes(wkb))
    if edges.empty:
        raise InputError(f"grid {code} has no walkable street within {margin_m:.0f} m: nothing to patrol")
    node_frame = gpd.GeoDataFrame({"x": nodes.geometry.x.values, "y": nodes.geometry.y.values},
                                  geometry=nodes.geometry.values, index=pd.Index(nodes["osm_id"].astype("int64"),
                                                                                 name="osmid"), crs=WGS84)
    edge_frame = edges.rename_geometry("geometry").set_index(["u", "v", "key"])
    edge_frame = edge_frame[edge_frame.index.get_level_values("u").isin(node_frame.index)
                            & edge_frame.index.get_level_values("v").isin(node_frame.index)]
    directed = ox.convert.graph_from_gdfs(node_frame, edge_frame)
    graph = ox.convert.to_undirected(directed)
    # A grid's streets: those inside it, and those along its boundary (grids are drawn along streets, so a boundary
    # street belongs to the grids on both sides): every edge whose middle lies within EDGE_M of the grid.
    keys = list(graph.edges(keys=True))
    middles = gpd.GeoSeries([graph.edges[e]["geometry"].interpolate(0.5, normalized=True) for e in keys], crs=WGS84)
    metric = utm_crs_for(polygon.centroid.x, polygon.centroid.y)
    area = gpd.GeoSeries([polygon], crs=WGS84).to_crs(metric).iloc[0].buffer(EDGE_M)
    inside = middles.to_crs(metric).within(area).to_numpy()
    streets = [e for e, keep in zip(keys, inside, strict=True) if keep]
    # streets the planner marked optional may be walked, never required: the rural postman on the rest
    optional = [e for e in streets if segment_key(e) in marked]
    required = [e for e in streets if segment_key(e) not in marked]
    return {"graph": graph, "required": required, "optional": optional, "polygon": polygon, "places": places,
            "city_id": city_id}


def segment_key(edge: tuple[Any, Any, Any]) -> tuple[int, int, int]:
    """A walk-network segment as stored: undirected, ``(least(u, v), greatest(u, v), key)``."""
    u, v, k = int(edge[0]), int(edge[1]), int(edge[2])
    return (min(u, v), max(u, v), k)


def grid_outline(conn: Connection, code: str) -> shapely.Geometry:
    wkb = conn.exec_driver_sql("SELECT ST_AsBinary(geom) FROM grids WHERE code = %(c)s", {"c": code}).scalar()
    if wkb is None:
        raise NotFoundError(f"no grid {code}")
    return shapely.from_wkb(bytes(wkb))


def _locator(graph: nx.MultiGraph, nodes: Sequence[Any]) -> Callable[[float, float], tuple[int, float]]:
    """A lookup of the position in ``nodes`` of the node nearest a point (lon, lat), and its distance in metres."""
    xs = np.array([graph.nodes[n]["x"] for n in nodes])
    ys = np.array([graph.nodes[n]["y"] for n in nodes])

    def find(lon: float, lat: float) -> tuple[int, float]:
        d = _metres(lon, lat, xs, ys)
        i = int(np.argmin(d))
        return i, float(d[i])

    return find


def nearest_node(graph: nx.MultiGraph, lon: float, lat: float) -> tuple[int, float]:
    ids = list(graph.nodes)
    i, metres = _locator(graph, ids)(lon, lat)
    return ids[i], metres


def _network_and_base(engine: Engine, code: str, base: tuple[float, float] | None,
                      margin_m: float) -> tuple[dict[str, Any], Any, float]:
    """The grid's network (see :func:`load_grid_network`) and the base node on it, with how far the base was."""
    # The network is cut at the margin, which can strand a street that joins the rest only further out: widen
    # the margin until every required street is reachable (or the widest margin says it is not).
    for margin in sorted({margin_m, *WIDER_MARGINS_M}):
        if margin < margin_m:
            continue
        with engine.connect() as conn:  # read, then solve with no connection held
            net = load_grid_network(conn, code, margin)
        graph, polygon = net["graph"], net["polygon"]
        if not net["required"]:
            if net["optional"]:
                raise InputError(f"every street of grid {code} is marked optional: nothing to patrol (mark some "
                                 f"required again: PUT /grids/{code}/streets/optional)")
            raise InputError(f"grid {code} has no street inside it or along its boundary: nothing to patrol")
        if base is not None:
            node, snap = nearest_node(graph, *base)
        else:  # the grid's centre, on the piece of network that holds most of its streets
            centre = polygon.representative_point()
            piece = max(nx.connected_components(graph), key=lambda nodes: sum(
                graph.edges[e]["length"] for e in net["required"] if e[0] in nodes))
            node, snap = nearest_node(graph.subgraph(piece), centre.x, centre.y)
        if snap > MAX_BASE_SNAP_M:
            raise InputError(f"the base is {snap:,.0f} m from the grid's nearest walkable street (at most "
                             f"{MAX_BASE_SNAP_M:,.0f} m): give a base on or near the network")
        reach = nx.node_connected_component(graph, node)
        if all(u in reach for u, _, _ in net["required"]):
            break
    return net, node, snap


def plan_basic(engine: Engine, code: str, *, base: tuple[float, float] | None = None,
               dwell_min: float = DEFAULT_DWELL_MIN, margin_m: float = MARGIN_M,
               exact_s: float = DEFAULT_EXACT_S) -> dict[str, Any]:
    """The grid's weekly basic patrol as a GeoJSON FeatureCollection (steps in order, then stops). Where the grid's
    streets fall into pieces (the rural postman), CP-SAT solves it exactly within ``exact_s`` seconds
    (:func:`gis.patrol.rural.solve_rural`), else gives its best walk with a proven bound and the gap; 0: the
    heuristic alone."""
    if not 0 <= dwell_min <= 60:
        raise InputError("the dwell time at a stop is 0 to 60 minutes")
    if not 0 <= exact_s <= 60:
        raise InputError("exact_s (the rural postman's search time) is 0 to 60 seconds")
    net, node, snap = _network_and_base(engine, code, base, margin_m)
    graph = net["graph"]
    route = exact_route(graph, net["required"], node, time_limit_s=exact_s)
    spots = _hot_spots(engine, code, graph, route, days=DEFAULT_HOT_SPOT_DAYS)
    out = _as_geojson(code, graph, route, [*net["places"], *spots], dwell_min, base_given=base is not None,
                      snap_m=snap)
    out["properties"].update(optional_edges=len(net["optional"]), hot_spots=len(spots),
                             hot_spot_rule=f"a point of the route with {HOT_SPOT_MIN_EVENTS}+ events reported "
                                           f"within {HOT_SPOT_NEAR_M:.0f} m in the last {DEFAULT_HOT_SPOT_DAYS} days")
    return out


def plan_split(engine: Engine, code: str, k: int, *, base: tuple[float, float] | None = None,
               starts: Sequence[tuple[float, float]] | None = None, time_limit_s: float = 0.5,
               exact_s: float = SPLIT_EXACT_S) -> dict[str, Any]:
    """The grid's basic patrol shared among ``k`` members or shifts (:func:`gis.patrol.split.split_route`) as
    GeoJSON: one LineString per part (from its start and back, in walking order) and each part's start; in
    ``properties`` the longest part, the single route, the lower bound and the ratio to it. ``starts``: each
    member's own start (lon, lat), k of them; else every part starts at the base."""
    if not 0 < time_limit_s <= 30:
        raise InputError("the local search's time limit is more than 0 and at most 30 seconds")
    if not 0 <= exact_s <= 30:
        raise InputError("the time for solving the parts exactly is 0 to 30 seconds")
    if starts is not None and len(starts) != k:
        raise InputError(f"give one start per member: {k} members, {len(starts)} starts")
    net, node, snap = _network_and_base(engine, code, base, MARGIN_M)
    graph = net["graph"]
    bases = None
    if starts is not None:
        reach = nx.node_connected_component(graph, node)
        bases = []
        for i, (lon, lat) in enumerate(starts, start=1):
            at, metres = nearest_node(graph.subgraph(reach), lon, lat)
            if metres > MAX_BASE_SNAP_M:
                raise InputError(f"member {i}'s start is {metres:,.0f} m from the grid's walkable streets (at most "
                                 f"{MAX_BASE_SNAP_M:,.0f} m)")
            bases.append(at)
    split = split_route(graph, net["required"], node, k, bases=bases, time_limit_s=time_limit_s, exact_s=exact_s)
    features: list[dict[str, Any]] = []
    for number, (part, start, edges) in enumerate(zip(split.parts, split.bases, split.edges, strict=True), start=1):
        features += part_features(graph, number, part, start, len(edges), f"part {number}")
    return {"type": "FeatureCollection", "features": features, "properties": {
        "grid": code, "title": f"基础巡查分 {k} 段 basic patrol shared by {k}", **split.summary(),
        "base_node": node, "base_snapped_m": round(snap, 1), "own_starts": starts is not None,
        "lower_bound_rule": "the longest single street's round trip from the nearest start, and the single optimal "
                            "route ÷ k (with one base; else the streets' length ÷ k)"}}


def part_features(graph: nx.MultiGraph, number: int, part: Route, start: Any, streets: int,
                  name: str) -> list[dict[str, Any]]:
    """One part of a shared patrol as GeoJSON features: its walk from its start and back (a LineString in walking
    order, with its length, minutes, streets and whether it is optimal or its bound and gap) and its start.
    ``name``: how its label calls it ("part 2", "part 2 of 3")."""
    coords: list[tuple[float, float]] = []
    for a, b, key, _ in part.steps:
        line = list(_oriented(graph, a, b, key).coords)
        coords.extend(line if not coords else line[1:])
    summary = part.summary()
    return [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
             "properties": {"kind": "tour", "tour": number, "length_m": round(part.length_m, 1),
                            "minutes": round(part.minutes, 1), "stops": 0, "streets": streets,
                            "required_m": round(part.required_m, 1), "optimal": part.optimal,
                            "lower_bound_m": summary["lower_bound_m"], "gap": summary["gap"],
                            "label": f"{name}: {part.length_m:,.0f} m, about {part.minutes:.0f} min, "
                                     f"{streets} street segments"}},
            _stop_feature(graph, start, {"kind": "start", "tour": number, "node": start,
                                         "label": f"{name} starts and ends here"})]


def _hot_spots(engine: Engine, code: str, graph: nx.MultiGraph, route: Route, *,
               days: int) -> list[tuple[str, str, float, float]]:
    """Stops at hot spots: the route's intersections with at least :data:`HOT_SPOT_MIN_EVENTS` of the grid's
    events of the last ``days`` days nearest them (within :data:`HOT_SPOT_NEAR_M`), as (kind, name, lon, lat)."""
    with engine.connect() as conn:
        events = conn.exec_driver_sql(
            "SELECT ST_X(e.geom), ST_Y(e.geom) FROM events e JOIN grids g ON g.id = e.grid_id WHERE g.code = %(c)s "
            "AND e.duplicate_of IS NULL AND e.state NOT IN ('merged', 'rejected') "
            "AND e.reported_at >= now() - %(d)s * interval '1 day'", {"c": code, "d": days}).all()
    if not events:
        return []
    nodes = list(dict.fromkeys([route.base, *(b for _a, b, _k, _r in route.steps)]))
    find = _locator(graph, nodes)
    counts: Counter[Any] = Counter()
    for x, y in events:
        i, metres = find(x, y)
        if metres <= HOT_SPOT_NEAR_M:
            counts[nodes[i]] += 1
    return [("hot_spot", f"{n} events in {days} days", graph.nodes[node]["x"], graph.nodes[node]["y"])
            for node, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
            if n >= HOT_SPOT_MIN_EVENTS]


def _oriented(graph: nx.MultiGraph, a: Any, b: Any, k: int) -> LineString:
    geom: LineString = graph.edges[a, b, k]["geometry"]
    start = geom.coords[0]
    ax, ay = graph.nodes[a]["x"], graph.nodes[a]["y"]
    if math.hypot(start[0] - ax, start[1] - ay) > 1e-7:
        geom = LineString(geom.coords[::-1])
    return geom


def _name(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _as_geojson(code: str, graph: nx.MultiGraph, route: Route, places: list[Any], dwell_min: float, *,
                base_given: bool, snap_m: float) -> dict[str, Any]:
    features = []
    visited: list[Any] = [route.base]
    turns: list[dict[str, Any]] = []
    distance = 0.0
    for seq, (a, b, k, required) in enumerate(route.steps, start=1):
        data = graph.edges[a, b, k]
        name = _name(data.get("name"))
        line = _oriented(graph, a, b, k)
        features.append({"type": "Feature", "geometry": mapping(line), "properties": {
            "kind": "step", "seq": seq, "from": a, "to": b, "name": name, "length_m": round(data["length"], 1),
            "required": required, "repeat": not required}})
        if not turns or turns[-1]["name"] != name:
            turns.append({"at_m": round(distance, 1), "name": name, "length_m": 0.0})
        turns[-1]["length_m"] = round(turns[-1]["length_m"] + data["length"], 1)
        distance += data["length"]
        visited.append(b)
    stops = []
    if places:
        find = _locator(graph, visited)
        for kind, name, x, y in places:
            i, metres = find(x, y)
            stops.append({"kind": kind, "name": name, "node": visited[i], "after_step": i, "distance_m": metres,
                          "lon": x, "lat": y})
        stops.sort(key=lambda s: (s["after_step"], str(s["name"])))
    for number, stop in enumerate(stops, start=1):
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [stop["lon"], stop["lat"]]},
                         "properties": {"kind": "stop", "number": number, "place_kind": stop["kind"],
                                        "name": stop["name"], "after_step": stop["after_step"],
                                        "off_route_m": round(stop["distance_m"], 1), "dwell_min": dwell_min}})
    base = graph.nodes[route.base]
    features.insert(0, {"type": "Feature", "geometry": {"type": "Point", "coordinates": [base["x"], base["y"]]},
                        "properties": {"kind": "base", "node": route.base, "given": base_given,
                                       "snapped_m": round(snap_m, 1)}})
    summary = route.summary()
    summary.update(grid=code, stops=len(stops), dwell_min=dwell_min,
                   minutes_with_stops=round(route.minutes + dwell_min * len(stops), 1),
                   unreachable=[list(e) for e in route.unreachable], turns=turns)
    return {"type": "FeatureCollection", "properties": summary, "features": features}


def plan_full_inspection(engine: Engine, code: str, *, base: tuple[float, float] | None = None,
                         shift_min: float = DEFAULT_SHIFT_MIN,
                         minutes_per_building: float = DEFAULT_MINUTES_PER_BUILDING,
                         time_limit_s: float = 1.0) -> dict[str, Any]:
    """The grid's monthly full inspection (:func:`gis.patrol.inspection.plan_inspection`) as GeoJSON: one path per tour
    (day or member), and each stop with the buildings visited there."""
    net, node, snap = _network_and_base(engine, code, base, MARGIN_M)
    graph = net["graph"]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT b.id, ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)) FROM buildings b "
            "JOIN grids g ON g.id = b.grid_id WHERE g.code = %(c)s ORDER BY b.id", {"c": code}).all()
    if not rows:
        raise InputError(f"grid {code} has no buildings to inspect")
    piece = list(nx.node_connected_component(graph, node))
    find = _locator(graph, piece)
    at = {int(b): piece[find(x, y)[0]] for b, x, y in rows}
    plan = plan_inspection(graph, at, node, shift_min=shift_min, minutes_per_building=minutes_per_building,
                           time_limit_s=time_limit_s)
    features: list[dict[str, Any]] = []
    for number, tour in enumerate(plan.tours, start=1):
        buildings = sum(len(g) for g in tour.buildings)
        features.append(_tour_feature(graph, node, tour.stops, {
            "kind": "tour", "tour": number, "length_m": round(tour.length_m, 1), "minutes": round(tour.minutes, 1),
            "stops": len(tour.stops), "buildings": buildings,
            "label": f"{tour.length_m:,.0f} m, about {tour.minutes:.0f} min, {buildings} buildings"}))
        for seq, (stop, group) in enumerate(zip(tour.stops, tour.buildings, strict=True), start=1):
            features.append(_stop_feature(graph, stop, {
                "kind": "stop", "tour": number, "seq": seq, "node": stop, "buildings": group,
                "label": f"{len(group)} building(s): {', '.join(map(str, group))}"}))
    return {"type": "FeatureCollection", "features": features, "properties": {
        "grid": code, "title": "全面巡查 full inspection", "tours": len(plan.tours),
        "length_m": round(plan.length_m, 1), "buildings": plan.buildings,
        "unreachable_buildings": plan.unreachable, "shift_min": shift_min,
        "minutes_per_building": minutes_per_building, "base_node": node, "base_snapped_m": round(snap, 1)}}


def _tour_feature(graph: nx.MultiGraph, base: Any, stops: Sequence[Any], props: dict[str, Any]) -> dict[str, Any]:
    """A tour from ``base`` through ``stops`` and back as one LineString along the shortest paths walked."""
    coords: list[tuple[float, float]] = []
    for a, b in itertools.pairwise([base, *stops, base]):
        path = nx.shortest_path(graph, a, b, weight="length")
        for u, v in itertools.pairwise(path):
            line = list(_oriented(graph, u, v, shortest_key(graph, u, v)).coords)
            coords.extend(line if not coords else line[1:])
    if len(coords) < 2:
        coords = [(graph.nodes[base]["x"], graph.nodes[base]["y"])] * 2
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords}, "properties": props}


def _stop_feature(graph: nx.MultiGraph, node: Any, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [graph.nodes[node]["x"],
                                                                             graph.nodes[node]["y"]]},
            "properties": props}


def plan_budgeted_round(engine: Engine, code: str, budget_min: float, *, base: tuple[float, float] | None = None,
                        dwell_min: float = DEFAULT_DWELL_MIN, days: int = DEFAULT_HOT_SPOT_DAYS,
                        time_limit_s: float = 1.0) -> dict[str, Any]:
    """The grid's time-budgeted patrol (:func:`gis.patrol.budgeted.plan_budgeted`) as GeoJSON: the round, and each stop
    with what makes it worth a stop (key places; events of the last ``days`` days, open ones counting double).

    Places and events are taken to the nearest node of the base's piece of network; the places the round leaves
    out for lack of time are listed with their risk."""
    if not 1 <= days <= 3660:
        raise InputError("days (how far back recent events count) is 1 to 3660")
    net, node, snap = _network_and_base(engine, code, base, MARGIN_M)
    graph = net["graph"]
    with engine.connect() as conn:
        events = conn.exec_driver_sql(
            "SELECT e.id, e.category_code, e.state = ANY(%(open)s), ST_X(e.geom), ST_Y(e.geom) FROM events e "
            "JOIN grids g ON g.id = e.grid_id WHERE g.code = %(c)s AND e.duplicate_of IS NULL "
            "AND e.state NOT IN ('merged', 'rejected') AND e.reported_at >= now() - %(days)s * interval '1 day' "
            "ORDER BY e.id", {"c": code, "open": list(OPEN_STATES), "days": days}).all()
    piece = list(nx.node_connected_component(graph, node))
    find = _locator(graph, piece)
    risk: dict[Any, float] = {}
    why: dict[Any, list[dict[str, Any]]] = {}
    for kind, name, x, y in net["places"]:
        at = piece[find(x, y)[0]]
        risk[at] = risk.get(at, 0.0) + KEY_PLACE_RISK
        why.setdefault(at, []).append({"what": "key place", "kind": kind, "name": name})
    for event_id, category, is_open, x, y in events:
        at = piece[find(x, y)[0]]
        risk[at] = risk.get(at, 0.0) + (OPEN_EVENT_RISK if is_open else EVENT_RISK)
        why.setdefault(at, []).append({"what": "event", "id": event_id, "category": category, "open": is_open})
    plan = plan_budgeted(graph, risk, node, budget_min, dwell_min=dwell_min, time_limit_s=time_limit_s)

    def label(stop: Any) -> str:
        places = Counter(str(w["name"] or w["kind"]) for w in why[stop] if w["what"] == "key place")
        n_events = sum(w["what"] == "event" for w in why[stop])
        parts = [name if n == 1 else f"{n}× {name}" for name, n in places.items()]
        parts += [f"{n_events} recent event(s)"] if n_events else []
        return f"risk {risk[stop]:g}: " + "; ".join(map(str, parts))

    features = [_tour_feature(graph, node, plan.stops, {
        "kind": "tour", "tour": 1, "length_m": round(plan.length_m, 1), "minutes": round(plan.minutes, 1),
        "stops": len(plan.stops), "risk": plan.risk,
        "label": f"{plan.length_m:,.0f} m, {plan.minutes:.0f} of {budget_min:.0f} min, risk {plan.risk:g} of "
                 f"{plan.risk_total:g}"})]
    for seq, stop in enumerate(plan.stops, start=1):
        features.append(_stop_feature(graph, stop, {"kind": "stop", "tour": 1, "seq": seq, "node": stop,
                                                    "risk": risk[stop], "why": why[stop], "label": label(stop)}))
    for stop in plan.dropped:
        features.append(_stop_feature(graph, stop, {"kind": "dropped", "node": stop, "risk": risk[stop],
                                                    "why": why[stop], "label": label(stop)}))
    return {"type": "FeatureCollection", "features": features, "properties": {
        "grid": code, "title": "限时巡查 time-budgeted patrol", "budget_min": budget_min,
        "minutes": round(plan.minutes, 1), "length_m": round(plan.length_m, 1), "dwell_min": dwell_min,
        "risk": plan.risk, "risk_total": plan.risk_total,
        "risk_share": round(plan.risk / plan.risk_total, 4) if plan.risk_total else None,
        "stops": len(plan.stops), "dropped": len(plan.dropped), "events_since_days": days,
        "key_places": len(net["places"]), "events": len(events),
        "base_node": node, "base_snapped_m": round(snap, 1),
        "risk_scores": {"key_place": KEY_PLACE_RISK, "event": EVENT_RISK, "open_event": OPEN_EVENT_RISK}}}
