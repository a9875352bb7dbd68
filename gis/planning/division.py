"""Automatic division: propose grids (and communities, streets) of the right size along real streets.

The rules (``../shared/DOMAIN.md``, issue 3):

* grids hold 300–500 households (a parameter), communities 3,000–6,000, and every unit nests in its parent;
* grid boundaries follow the street network: the area is cut into **blocks** by polygonizing its streets (the
  drive network, plus the parent's own boundary lines), and a block is split only when it alone holds more than
  the band allows; the split runs **between buildings** (the block is shared out among its buildings by a
  Voronoi diagram of their outlines, so no footprint is ever cut);
* blocks too small for a grid are grown into regions with their neighbours (across the street between them,
  which then lies inside the grid), and regions below the band take boundary units from full neighbours,
  keeping both contiguous: a region-growing construction and local moves in the manner of max-p;
* household-free blocks (parks, squares, office quarters) go to the neighbouring region with which they share
  the longest border, so that grids tile the area with no gap;
* a single building above the band becomes a grid of its own and is reported.

Everything is deterministic: no randomness, ties broken by position and index. Geometry is handled in a metric
CRS (the local UTM zone) and returned in WGS-84.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon
from shapely.ops import polygonize, unary_union

from gis.errors import InputError
from gis.geo.crs import WGS84, metric_crs_for, require_crs

SHARED_EDGE_MIN_M = 1.0
"""Units touching along less than this (a corner) are not neighbours: a grid joined at a point is not contiguous."""
MICRO_M = 1e-6
STREET_REACH_M = 50.0
"""Streets this close to an area take part in cutting it into blocks."""
SEGMENT_DEG = 1e-4
"""Densify the area's edges to ~10 m before projecting them."""
MAX_EMPTY_CROSSINGS = 3
"""How many household-free units a growing region may cross: enough for a median strip, not a whole park."""
OUTLINE_STEP_M = 4.0
"""Spacing of the points along building outlines whose Voronoi cells share a block out among its buildings."""


@dataclass(frozen=True)
class Band:
    low: int
    high: int

    def __post_init__(self) -> None:
        if not (0 < self.low <= self.high):
            raise InputError(f"a household band needs 0 < low ≤ high; got {self.low}–{self.high}")

    @property
    def target(self) -> float:
        return (self.low + self.high) / 2

    def holds(self, households: float) -> bool:
        return self.low <= households <= self.high

    def __str__(self) -> str:
        return f"{self.low:,}–{self.high:,}"


GRID_BAND = Band(300, 500)
COMMUNITY_BAND = Band(3000, 6000)
STREET_BAND = Band(20_000, 60_000)


# -- blocks -----------------------------------------------------------------------------------------------


def blocks_from_streets(streets: Sequence[shapely.Geometry], area: Polygon | MultiPolygon,
                        extra_lines: Sequence[shapely.Geometry] = ()) -> list[Polygon]:
    """The faces into which ``streets`` (and ``extra_lines``, e.g. district borders) cut ``area``.

    The faces tile the area: polygonizing the noded linework together with the area's own boundary leaves
    no gap, and dangling street ends inside a face simply stay inside it. Streets are not clipped to the area
    first: a district border often runs a metre or two beside the street it follows, and clipping would drop
    that street and leave the side streets meeting it dangling, merging their blocks.
    """
    reach = area.buffer(STREET_REACH_M)
    lines = [g for g in (*streets, *extra_lines) if not g.is_empty and g.length > 0 and g.intersects(reach)]
    lines.append(area.boundary)
    faces = [f for f in polygonize(unary_union(lines)) if f.area > 0]
    return [f for f in faces if area.contains(f.representative_point())]


# -- splitting a block between its buildings ----------------------------------------------------------------


def _bisect(points: np.ndarray, weights: np.ndarray, order: np.ndarray, parts: int) -> list[np.ndarray]:
    """Recursive weighted bisection along the longer axis: ``parts`` groups of near-equal weight."""
    if parts <= 1 or len(order) <= 1:
        return [order]
    xy = points[order]
    span = xy.max(axis=0) - xy.min(axis=0)
    axis = int(np.argmax(span))
    ranked = order[np.lexsort((xy[:, 1 - axis], xy[:, axis]))]
    left_parts = parts // 2
    share = left_parts / parts
    cumulative = np.cumsum(weights[ranked])
    total = cumulative[-1]
    if total <= 0:
        cut = max(1, min(len(ranked) - 1, round(len(ranked) * share)))
    else:
        # the first cut after which the left side carries its share; never leave a side empty
        cut = int(np.searchsorted(cumulative, total * share, side="left")) + 1
        if cut > 1 and abs(cumulative[cut - 2] - total * share) <= abs(cumulative[cut - 1] - total * share):
            cut -= 1
        cut = max(1, min(len(ranked) - 1, cut))
    return (_bisect(points, weights, ranked[:cut], left_parts)
            + _bisect(points, weights, ranked[cut:], parts - left_parts))


def building_zones(block: Polygon, footprints: Sequence[shapely.Geometry]) -> tuple[list[shapely.Geometry], list[int]]:
    """Share ``block`` out among its buildings: one zone per footprint, the zones tiling the block.

    Each zone is the union of the Voronoi cells of points spaced along that building's outline, so the border
    between two zones runs midway between the two buildings, never through one. Also returns, for each building,
    the building whose zone holds its outline: itself, or for a building whose every outline point it shares
    with a neighbour (a small annex against a wall), that neighbour.
    """
    if len(footprints) == 1:
        return [block], [0]
    sites: dict[tuple[float, float], int] = {}  # buildings sharing a wall share outline points: first one keeps it
    first_site: list[tuple[float, float]] = []
    for i, footprint in enumerate(footprints):
        outline = footprint.boundary
        n = max(4, int(outline.length // OUTLINE_STEP_M))
        pts = np.atleast_1d(shapely.line_interpolate_point(outline, np.linspace(0, 1, n, endpoint=False),
                                                           normalized=True))
        keys = [(round(x, 2), round(y, 2)) for x, y in shapely.get_coordinates(pts)]
        first_site.append(keys[0])
        for key in keys:
            sites.setdefault(key, i)
    coords = np.array(list(sites))
    owners = np.array(list(sites.values()))
    points = shapely.points(coords)
    cells = list(shapely.voronoi_polygons(shapely.MultiPoint(coords), extend_to=block).geoms)
    cell_idx, point_idx = shapely.STRtree(points).query(cells, predicate="contains")
    parts: list[list[shapely.Geometry]] = [[] for _ in footprints]
    for c, p in zip(cell_idx.tolist(), point_idx.tolist(), strict=True):
        parts[owners[p]].append(cells[c])
    # Voronoi cells form a coverage (they meet edge to edge), which coverage_union merges exactly and fast.
    zones = [shapely.coverage_union_all(cells_).intersection(block) if cells_ else Polygon()
             for cells_ in parts]
    holder = [i if parts[i] else sites[first_site[i]] for i in range(len(footprints))]
    return zones, holder


def split_block(footprints: gpd.GeoSeries, households: np.ndarray, band: Band) -> list[np.ndarray]:
    """Group the buildings of a block holding more than ``band.high`` households into the fewest balanced parts.

    Parts are compact groups from weighted recursive bisection (positions into ``footprints``); a single
    building above the band ends up alone in its part. They seed the grids of the block, whose buildings can
    still be traded one by one afterwards.
    """
    total = float(households.sum())
    parts = max(1, min(len(footprints), math.ceil(total / band.high)))
    anchors = footprints.representative_point()
    points = np.column_stack([anchors.x, anchors.y])
    return [np.sort(g) for g in _bisect(points, households.astype(float), np.arange(len(footprints)), parts)]


# -- aggregating units into regions --------------------------------------------------------------------------


def adjacency(geometries: Sequence[shapely.Geometry]) -> nx.Graph:
    """Units that share a border of at least :data:`SHARED_EDGE_MIN_M` metres, weighted by its length."""
    graph = nx.Graph()
    graph.add_nodes_from(range(len(geometries)))
    tree = shapely.STRtree(list(geometries))
    left, right = tree.query(list(geometries), predicate="intersects")
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a >= b:
            continue
        shared = geometries[a].boundary.intersection(geometries[b].boundary).length
        if shared >= SHARED_EDGE_MIN_M:
            graph.add_edge(a, b, length=shared)
    return graph


@dataclass
class Regions:
    """A partition of units into regions: ``of[unit]`` is the region id, ``households`` per region."""

    of: np.ndarray
    households: dict[int, float] = field(default_factory=dict)

    def members(self, region: int) -> list[int]:
        return [int(u) for u in np.flatnonzero(self.of == region)]


def _order_key(centroids: np.ndarray, unit: int) -> tuple[float, float]:
    # north-west first, as grids are numbered; deterministic ties by index follow from sorting
    return (-centroids[unit, 1], centroids[unit, 0])


def regions_from_units(households: np.ndarray, graph: nx.Graph, centroids: np.ndarray, band: Band,
                       *, seeds: np.ndarray | None = None, max_moves: int = 20_000) -> Regions:
    """Group adjacent units into contiguous regions holding ``band`` households where the units allow it.

    0. Units with the same ``seeds`` label (≥ 0) start as one region (the parts of a split block).
    1. A unit already in or above the band is a region of its own.
    2. Regions are grown from the remaining units with households, north-west first, taking the neighbour
       that keeps the region within the band and shares the longest border with it, until the band's floor.
       Growth may cross household-free units (street medians, parks) to reach more homes.
    3. Household-free units left over join the neighbouring region with the longest shared border.
    4. A region still below the floor merges into a neighbouring region when the sum stays within the band,
       else takes boundary units from neighbours that can spare them; a region above the ceiling gives
       boundary units to neighbours with room. Every move keeps both regions contiguous.
    """
    n = len(households)
    of = np.full(n, -1, dtype=int)
    hh = households.astype(float)
    region_hh: dict[int, float] = {}
    next_id = 0
    order = sorted(range(n), key=lambda u: (*_order_key(centroids, u), u))

    def new_region(units: list[int]) -> None:
        nonlocal next_id
        for u in units:
            of[u] = next_id
        region_hh[next_id] = float(hh[units].sum())
        next_id += 1

    if seeds is not None:
        for label in sorted({int(x) for x in seeds if x >= 0}):
            new_region([int(u) for u in np.flatnonzero(seeds == label)])
    for u in order:
        if of[u] == -1 and hh[u] >= band.low:
            new_region([u])
    for seed in order:
        if of[seed] != -1 or hh[seed] <= 0:
            continue
        members, total = [seed], hh[seed]
        of[seed] = next_id
        empty_taken = 0
        while total < band.low:
            best, best_key = None, None
            empty, empty_key = None, None
            for m in members:
                for v in graph.neighbors(m):
                    if of[v] != -1:
                        continue
                    shared = sum(graph[v][w]["length"] for w in graph.neighbors(v) if of[w] == next_id)
                    if hh[v] <= 0:
                        # household-free units (street medians, parks) can be crossed to reach more homes
                        if empty_key is None or (shared, -v) > empty_key:
                            empty, empty_key = v, (shared, -v)
                        continue
                    if total + hh[v] > band.high:
                        continue
                    key = (-(abs(total + hh[v] - band.target)), shared, -v)
                    if best_key is None or key > best_key:
                        best, best_key = v, key
            if best is None and empty is not None and empty_taken < MAX_EMPTY_CROSSINGS:
                best = empty
                empty_taken += 1
            if best is None:
                break
            members.append(best)
            of[best] = next_id
            total += hh[best]
        region_hh[next_id] = float(total)
        next_id += 1

    regions = Regions(of, region_hh)
    _make_contiguous(regions, hh, graph)
    _attach_empty(regions, hh, graph, centroids)
    _repair(regions, hh, graph, band, max_moves=max_moves, centroids=centroids)
    return _renumber(regions, centroids)


def _make_contiguous(regions: Regions, hh: np.ndarray, graph: nx.Graph) -> None:
    """Keep each region's main connected piece; other pieces with households become regions of their own (the
    repair then merges them where they fit), household-free ones are released to join a neighbour."""
    for region in sorted(regions.households):
        members = regions.members(region)
        pieces = sorted(nx.connected_components(graph.subgraph(members)),
                        key=lambda c: (-hh[list(c)].sum(), min(c)))
        for piece in pieces[1:]:
            units = sorted(piece)
            piece_hh = float(hh[units].sum())
            regions.households[region] -= piece_hh
            if piece_hh > 0:
                new = max(regions.households) + 1
                regions.households[new] = piece_hh
                regions.of[units] = new
            else:
                regions.of[units] = -1


def _neighbour_regions(regions: Regions, graph: nx.Graph, region: int) -> dict[int, float]:
    shared: dict[int, float] = {}
    for u in regions.members(region):
        for v in graph.neighbors(u):
            r = int(regions.of[v])
            if r != region and r >= 0:
                shared[r] = shared.get(r, 0.0) + graph[u][v]["length"]
    return shared


def _contiguous_without(regions: Regions, graph: nx.Graph, region: int, unit: int) -> bool:
    rest = [u for u in regions.members(region) if u != unit]
    return bool(rest) and nx.is_connected(graph.subgraph(rest))


def _move(regions: Regions, hh: np.ndarray, unit: int, to: int) -> None:
    source = int(regions.of[unit])
    regions.of[unit] = to
    regions.households[source] -= hh[unit]
    regions.households[to] += hh[unit]


def _best_transfer(regions: Regions, hh: np.ndarray, graph: nx.Graph, band: Band, *, receiver: int | None,
                   donor: int | None) -> tuple[int, int] | None:
    """The boundary unit whose move brings a region nearest the band's middle while keeping both regions in
    (or moving them towards) the band and contiguous. Give ``receiver`` to pull, ``donor`` to push."""
    best, best_key = None, None
    anchor = receiver if receiver is not None else donor
    assert anchor is not None
    for u in regions.members(anchor):
        for v in graph.neighbors(u):
            other = int(regions.of[v])
            if other == anchor or other < 0:
                continue
            if receiver is not None:  # pull v from `other` into `receiver`
                unit, src, dst = v, other, receiver
            else:  # push u from `donor` into `other`
                unit, src, dst = u, anchor, other
            if hh[unit] <= 0:
                continue
            after_src = regions.households[src] - hh[unit]
            after_dst = regions.households[dst] + hh[unit]
            if receiver is not None and (after_src < band.low or after_dst > band.high):
                continue
            if donor is not None and (after_dst > band.high or after_src < band.low):
                continue
            if not _contiguous_without(regions, graph, src, unit):
                continue
            key = (-abs((after_dst if receiver is not None else after_src) - band.target),
                   graph[u][v]["length"], -unit)
            if best_key is None or key > best_key:
                best, best_key = (unit, dst), key
    return best


def _rebalance_with_neighbour(regions: Regions, hh: np.ndarray, graph: nx.Graph, centroids: np.ndarray,
                              band: Band, region: int) -> bool:
    """Re-partition a region and one neighbour into two contiguous halves that both hold the band.

    Tried when together they hold between two floors and two ceilings: their units are ranked along each axis
    and cut where the households balance. Units stay whole, so no block that fits the band is ever cut.
    """
    h = regions.households[region]
    neighbours = _neighbour_regions(regions, graph, region)
    for other, _shared in sorted(neighbours.items(), key=lambda rs: (-rs[1], rs[0])):
        total = h + regions.households[other]
        if not (2 * band.low <= total <= 2 * band.high):
            continue
        units = np.array(regions.members(region) + regions.members(other))
        for axis in (0, 1):
            ranked = units[np.lexsort((centroids[units, 1 - axis], centroids[units, axis]))]
            cumulative = np.cumsum(hh[ranked])
            for cut in np.argsort(np.abs(cumulative - total / 2))[:5]:
                first, second = ranked[: cut + 1], ranked[cut + 1 :]
                h1, h2 = float(hh[first].sum()), float(hh[second].sum())
                if not (band.holds(h1) and band.holds(h2)) or len(second) == 0:
                    continue
                if not (nx.is_connected(graph.subgraph(first.tolist()))
                        and nx.is_connected(graph.subgraph(second.tolist()))):
                    continue
                regions.of[first] = region
                regions.of[second] = other
                regions.households[region], regions.households[other] = h1, h2
                return True
    return False


def _repair(regions: Regions, hh: np.ndarray, graph: nx.Graph, band: Band, *, max_moves: int,
            centroids: np.ndarray) -> None:
    moves = 0
    changed = True
    while changed and moves < max_moves:
        changed = False
        out_of_band = sorted((r for r, h in regions.households.items() if (0 < h < band.low) or h > band.high),
                             key=lambda r: (regions.households[r], r))
        for region in out_of_band:
            if region not in regions.households:
                continue
            h = regions.households[region]
            if band.low <= h <= band.high:
                continue
            if _rebalance_with_neighbour(regions, hh, graph, centroids, band, region):
                changed, moves = True, moves + 1
                continue
            if h < band.low:
                neighbours = _neighbour_regions(regions, graph, region)
                fits = [(r, s_) for r, s_ in neighbours.items() if h + regions.households[r] <= band.high]
                if fits:  # merge into the neighbour it shares most border with
                    target = max(fits, key=lambda rs: (rs[1], -rs[0]))[0]
                    for u in regions.members(region):
                        regions.of[u] = target
                    regions.households[target] += regions.households.pop(region)
                    changed, moves = True, moves + 1
                    continue
                transfer = _best_transfer(regions, hh, graph, band, receiver=region, donor=None)
            else:
                transfer = _best_transfer(regions, hh, graph, band, receiver=None, donor=region)
            if transfer is not None:
                _move(regions, hh, *transfer)
                changed, moves = True, moves + 1


def _attach_empty(regions: Regions, hh: np.ndarray, graph: nx.Graph, centroids: np.ndarray) -> None:
    pending = [u for u in range(len(hh)) if regions.of[u] == -1]
    while pending:
        progressed = False
        for u in list(pending):
            shared: dict[int, float] = {}
            for v in graph.neighbors(u):
                r = int(regions.of[v])
                if r >= 0:
                    shared[r] = shared.get(r, 0.0) + graph[u][v]["length"]
            if shared:
                regions.of[u] = max(shared.items(), key=lambda rs: (rs[1], -rs[0]))[0]
                pending.remove(u)
                progressed = True
        if not progressed:
            # An island of empty units touching no region (or an area with no households at all):
            # it becomes a region of its own rather than a gap.
            island = pending[0]
            component = nx.node_connected_component(graph.subgraph(pending), island)
            region = max(regions.households, default=-1) + 1
            for u in component:
                regions.of[u] = region
                pending.remove(u)
            regions.households[region] = 0.0


def _renumber(regions: Regions, centroids: np.ndarray) -> Regions:
    """Region ids 0.. in reading order (north-west first) of each region's first unit, for stable output."""
    firsts: dict[int, int] = {}
    for u in sorted(range(len(regions.of)), key=lambda u: (*_order_key(centroids, u), u)):
        firsts.setdefault(int(regions.of[u]), u)
    mapping = {r: i for i, r in enumerate(sorted(firsts, key=lambda r: (*_order_key(centroids, firsts[r]), r)))}
    of = np.array([mapping[int(r)] for r in regions.of], dtype=int)
    households = {mapping[r]: h for r, h in regions.households.items() if r in mapping}
    return Regions(of, households)


# -- numbering ---------------------------------------------------------------------------------------------


def reading_order(geometries: gpd.GeoSeries) -> list[int]:
    """Positions in the order units are numbered: west→east within rows, rows north→south.

    A row is a band of the size of a typical unit (the square root of the median area), so that units side by
    side get consecutive numbers even when their centres are not exactly level.
    """
    if len(geometries) == 0:
        return []
    points = geometries.representative_point()
    row_height = max(float(np.sqrt(np.median(geometries.area))), 1e-9)
    top = float(points.y.max())
    rows = np.floor((top - points.y.to_numpy()) / row_height)
    return [int(i) for i in np.lexsort((points.x.to_numpy(), rows))]


# -- the whole division ------------------------------------------------------------------------------------


@dataclass
class Division:
    """A proposed division of one area (a district, or a whole imported extent) in WGS-84.

    ``grids``: seq, community_seq, street_seq, households, buildings, in_band, split_block, note, geometry.
    ``communities`` and ``streets``: seq, parent seq, households, grids, in_band, geometry.
    ``building_grid``: for each building (indexed like the input buildings), the row of its grid in ``grids``;
    missing for buildings outside the area.
    """

    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    building_grid: pd.Series
    blocks: int
    split_blocks: int
    band: Band


def divide_area(
    area: Polygon | MultiPolygon,
    buildings: gpd.GeoDataFrame,
    streets: gpd.GeoSeries,
    *,
    grid_band: Band = GRID_BAND,
    community_band: Band = COMMUNITY_BAND,
    street_band: Band = STREET_BAND,
    extra_lines: Sequence[shapely.Geometry] = (),
    crs: CRS | None = None,
) -> Division:
    """Divide ``area`` into streets → communities → grids (see the module docstring).

    ``buildings`` needs a ``households`` column; ``area``, ``streets`` and ``extra_lines`` are in WGS-84.
    """
    require_crs(buildings, what="buildings")
    if "households" not in buildings:
        raise InputError("buildings need a households column")
    metric = crs or metric_crs_for(buildings if len(buildings) else gpd.GeoDataFrame(geometry=[area], crs=WGS84))
    # Densified first, so that edges straight in longitude/latitude come back onto themselves from the
    # metric CRS: the grids then tile the stored (WGS-84) polygon, not a slightly bowed copy of it.
    area = shapely.segmentize(area, SEGMENT_DEG)
    to_metric = gpd.GeoSeries([area, *streets, *extra_lines], crs=WGS84).to_crs(metric)
    area_m = to_metric.iloc[0]
    street_m = list(to_metric.iloc[1 : 1 + len(streets)])
    extra_m = list(to_metric.iloc[1 + len(streets) :])
    # A building belongs where its point on surface lies, taken from the stored WGS-84 footprint exactly as
    # PostGIS's ST_PointOnSurface takes it, so that the database and the division agree on straddlers.
    anchors = gpd.GeoSeries(buildings.representative_point(), crs=WGS84).to_crs(metric)
    bld = buildings.to_crs(metric)
    inside = anchors.within(area_m) if len(bld) else pd.Series(dtype=bool)
    bld = bld[inside]
    anchors = anchors[inside]
    households = bld["households"].fillna(0).to_numpy(dtype=float)

    blocks = blocks_from_streets(street_m, area_m, extra_m)
    if not blocks:
        raise InputError("the area has no extent to divide")
    block_series = gpd.GeoSeries(blocks, crs=metric)
    points = gpd.GeoSeries(anchors.values, crs=metric)
    tree = shapely.STRtree(blocks)
    hit_point, hit_block = tree.query(points.values, predicate="within")
    block_of = np.full(len(bld), -1, dtype=int)
    block_of[hit_point] = hit_block
    if (block_of < 0).any():  # a point exactly on a street line: the nearest block takes it (documented tie-break)
        missing = np.flatnonzero(block_of < 0)
        block_of[missing] = tree.nearest(points.values[missing])

    # Units: whole blocks, and inside a block that alone exceeds the band, each building's zone, seeded into
    # balanced groups; the zones can then be traded one by one with neighbouring regions.
    unit_geoms: list[shapely.Geometry] = []
    unit_hh: list[float] = []
    unit_split: list[bool] = []
    unit_seed: list[int] = []
    building_unit = np.full(len(bld), -1, dtype=int)
    split_count = 0
    seed_label = 0
    for b, block in enumerate(block_series):
        mine = np.flatnonzero(block_of == b)
        total = households[mine].sum()
        if total > grid_band.high and len(mine) > 1:
            split_count += 1
            footprints = bld.geometry.iloc[mine]
            zones, holder = building_zones(block, list(footprints.values))
            first_unit = len(unit_geoms)
            zone_unit = {}
            for local, zone in enumerate(zones):
                if zone.is_empty:
                    continue
                # In a concave block a zone can come in pieces: the piece under the building keeps it, the
                # others are household-free units that join whichever neighbour they border most.
                pieces = sorted((p for p in getattr(zone, "geoms", [zone]) if isinstance(p, Polygon) and p.area > 0),
                                key=lambda p: (not p.intersects(footprints.iloc[local]), -p.area))
                for k, piece in enumerate(pieces):
                    if k == 0:
                        zone_unit[local] = len(unit_geoms)
                    unit_geoms.append(piece)
                    unit_hh.append(0.0)
                    unit_split.append(True)
                    unit_seed.append(-1 if k else -2)  # -2: to be given its group's label below
            # A building counts where its point lies. With outline points a few metres apart, the border between
            # two close buildings can clip a corner of one, so containment decides, not zone ownership.
            block_units = list(range(first_unit, len(unit_geoms)))
            inside_unit = shapely.STRtree([unit_geoms[u] for u in block_units])
            for local, building in enumerate(mine):
                found = inside_unit.query(anchors.values[building], predicate="intersects")
                u = block_units[int(found.min())] if len(found) else zone_unit[holder[local]]
                building_unit[building] = u
                unit_hh[u] += float(households[building])
            for group in split_block(footprints, households[mine], grid_band):
                for local in group:
                    for u in {zone_unit[holder[local]], int(building_unit[mine[local]])}:
                        if unit_seed[u] < 0:
                            unit_seed[u] = seed_label
                seed_label += 1
            for u in range(first_unit, len(unit_geoms)):
                if unit_seed[u] == -2:  # a zone whose building counts in another zone: free, like a stray piece
                    unit_seed[u] = -1
        else:
            building_unit[mine] = len(unit_geoms)
            unit_geoms.append(block)
            unit_hh.append(float(total))
            unit_split.append(False)
            unit_seed.append(-1)

    unit_geoms = [_clean(g) for g in unit_geoms]
    unit_arr = np.array(unit_hh)
    graph = adjacency(unit_geoms)
    centroids = np.array([[g.centroid.x, g.centroid.y] for g in unit_geoms])
    grid_regions = regions_from_units(unit_arr, graph, centroids, grid_band, seeds=np.array(unit_seed))
    grid_geoms, grid_units = _dissolve(unit_geoms, grid_regions.of)

    grid_hh = np.array([unit_arr[u].sum() for u in grid_units])
    grid_graph = adjacency(grid_geoms)
    grid_centroids = np.array([[g.centroid.x, g.centroid.y] for g in grid_geoms])
    comm_regions = regions_from_units(grid_hh, grid_graph, grid_centroids, community_band)
    comm_geoms, comm_grids = _dissolve(grid_geoms, comm_regions.of)

    comm_hh = np.array([grid_hh[g].sum() for g in comm_grids])
    comm_graph = adjacency(comm_geoms)
    comm_centroids = np.array([[g.centroid.x, g.centroid.y] for g in comm_geoms])
    street_regions = regions_from_units(comm_hh, comm_graph, comm_centroids, street_band)
    street_geoms, street_comms = _dissolve(comm_geoms, street_regions.of)

    # number in reading order within each parent
    street_frame = gpd.GeoDataFrame({"households": [comm_hh[c].sum() for c in street_comms],
                                     "communities": [len(c) for c in street_comms]},
                                    geometry=street_geoms, crs=metric)
    street_seq = _sequence(street_frame.geometry, np.zeros(len(street_frame), dtype=int))
    street_frame["seq"] = street_seq
    comm_parent = np.empty(len(comm_geoms), dtype=int)
    for s, comms in enumerate(street_comms):
        comm_parent[comms] = s
    comm_frame = gpd.GeoDataFrame({"households": comm_hh, "grids": [len(g) for g in comm_grids],
                                   "street_seq": street_seq[comm_parent]}, geometry=comm_geoms, crs=metric)
    comm_seq = _sequence(comm_frame.geometry, comm_parent)
    comm_frame["seq"] = comm_seq
    grid_parent = np.empty(len(grid_geoms), dtype=int)
    for c, grids_ in enumerate(comm_grids):
        grid_parent[grids_] = c
    unit_grid = grid_regions.of
    grid_buildings = np.bincount(unit_grid[building_unit], minlength=len(grid_geoms)) if len(bld) else \
        np.zeros(len(grid_geoms), dtype=int)
    max_building = np.zeros(len(grid_geoms))
    for i, u in enumerate(building_unit):
        g = unit_grid[u]
        max_building[g] = max(max_building[g], households[i])
    grid_frame = gpd.GeoDataFrame({
        "households": grid_hh,
        "buildings": grid_buildings,
        "split_block": [any(unit_split[u] for u in units) for units in grid_units],
        "community_seq": comm_seq[grid_parent],
        "street_seq": street_seq[comm_parent[grid_parent]],
    }, geometry=grid_geoms, crs=metric)
    grid_frame["seq"] = _sequence(grid_frame.geometry, grid_parent)
    grid_frame["in_band"] = [grid_band.holds(h) for h in grid_hh]
    grid_frame["note"] = [_grid_note(h, mb, grid_band) for h, mb in zip(grid_hh, max_building, strict=True)]
    for frame, band in ((comm_frame, community_band), (street_frame, street_band)):
        frame["in_band"] = [band.holds(h) for h in frame["households"]]

    building_grid = pd.Series(unit_grid[building_unit] if len(bld) else [], index=bld.index, dtype="int64")
    building_grid = building_grid.reindex(buildings.index)  # buildings outside the area: NaN
    return Division(
        streets=to_wgs84(street_frame),
        communities=to_wgs84(comm_frame),
        grids=to_wgs84(grid_frame),
        building_grid=building_grid,
        blocks=len(blocks),
        split_blocks=split_count,
        band=grid_band,
    )


def divide_parents(
    parents: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    streets: gpd.GeoSeries,
    grid_band: Band = GRID_BAND,
    community_band: Band = COMMUNITY_BAND,
    street_band: Band = STREET_BAND,
) -> list[tuple[int, Division]]:
    """Divide each parent area (a district, say) on its own, so that nothing generated crosses its border.

    Returns (parent index, division) pairs in the parents' order.
    """
    require_crs(parents, what="parent units")
    metric = metric_crs_for(buildings if len(buildings) else parents)
    out = []
    for idx, geom in zip(parents.index, parents.geometry, strict=True):
        out.append((idx, divide_area(geom, buildings, streets, crs=metric, grid_band=grid_band,
                                     community_band=community_band, street_band=street_band)))
    return out


def to_wgs84(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoDataFrame | gpd.GeoSeries:
    """Reproject to WGS-84 and snap to a 1e-9° (~0.1 mm) grid, repairing what either step breaks: near-coincident
    vertices (left by the micrometre buffer, or by an overlay in an edit) can otherwise come back
    self-intersecting. A shared vertex rounds the same way on both sides, so neighbours still meet exactly."""
    out = frame.to_crs(WGS84)
    repaired = np.array([_clean(g) for g in out.geometry.values], dtype=object)
    snapped = [_clean(g) for g in shapely.set_precision(repaired, 1e-9)]
    if isinstance(out, gpd.GeoSeries):
        return gpd.GeoSeries(snapped, index=out.index, crs=WGS84)
    out["geometry"] = snapped
    return out


def _clean(geom: shapely.Geometry) -> shapely.Geometry:
    """A valid polygonal geometry: Voronoi zones cut by blocks, and unions of them, can self-touch or leave
    degenerate rings; ``make_valid`` repairs them and only the polygonal parts are kept."""
    if geom.is_valid:
        return geom
    repaired = shapely.make_valid(geom)
    parts = [g for g in getattr(repaired, "geoms", [repaired]) if isinstance(g, Polygon | MultiPolygon)]
    cleaned = shapely.union_all(parts) if parts else Polygon()
    return cleaned if cleaned.is_valid else cleaned.buffer(0)


def _dissolve(geoms: Sequence[shapely.Geometry], of: np.ndarray) -> tuple[list[shapely.Geometry], list[list[int]]]:
    members: dict[int, list[int]] = {}
    for u, r in enumerate(of.tolist()):
        members.setdefault(int(r), []).append(u)
    order = sorted(members)
    merged = []
    for r in order:
        geom = shapely.union_all([geoms[u] for u in members[r]])
        if not isinstance(geom, Polygon):
            # Units that share a border can still union into pieces when floating-point noise leaves a
            # micrometre gap along it; growing and shrinking by a micrometre closes it and changes no area.
            geom = shapely.union_all([geoms[u].buffer(MICRO_M, join_style="mitre") for u in members[r]]
                                     ).buffer(-MICRO_M, join_style="mitre")
        merged.append(_clean(geom))
    return merged, [members[r] for r in order]


def _sequence(geometries: gpd.GeoSeries, parent: np.ndarray) -> np.ndarray:
    """1-based numbers in reading order within each parent."""
    seq = np.zeros(len(geometries), dtype=int)
    for p in np.unique(parent):
        idx = np.flatnonzero(parent == p)
        for rank, local in enumerate(reading_order(geometries.iloc[idx].reset_index(drop=True)), start=1):
            seq[idx[local]] = rank
    return seq


def _grid_note(households: float, largest_building: float, band: Band) -> str:
    if band.holds(households):
        return ""
    if households > band.high:
        if largest_building > band.high:
            return f"one building holds {largest_building:,.0f} households, above the band: it is a grid of its own"
        return "its block cannot be split between buildings into parts within the band"
    if households == 0:
        return "no households: an area with no homes, kept so that the grids cover everything"
    return "below the band: its neighbours have no households to spare within the band"


def to_multipolygon(geom: shapely.Geometry) -> MultiPolygon:
    """The polygonal parts of any geometry as one MultiPolygon, zero-area parts dropped. Overlays can leave
    lines or points beside the polygons, or collections inside collections; those are unpacked or dropped."""
    if isinstance(geom, Polygon):
        return MultiPolygon([geom]) if geom.area > 0 else MultiPolygon()
    parts: list[Polygon] = []
    for part in getattr(geom, "geoms", []):
        if isinstance(part, Polygon):
            if part.area > 0:
                parts.append(part)
        elif hasattr(part, "geoms"):
            parts.extend(to_multipolygon(part).geoms)
    return MultiPolygon(parts)


def parse_band(text_: str, *, what: str = "band") -> Band:
    """``300-500`` → Band(300, 500), or :class:`InputError` saying what is wrong."""
    parts = text_.replace("–", "-").split("-")
    if len(parts) != 2:
        raise InputError(f"{what} should look like 300-500; got {text_!r}")
    try:
        low, high = (int(p.strip()) for p in parts)
    except ValueError:
        raise InputError(f"{what} should be two whole numbers like 300-500; got {text_!r}") from None
    return Band(low, high)
