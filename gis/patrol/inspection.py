"""The monthly full inspection: visit every building of a grid, in the shortest tours on the street network.

Each building is reached at its nearest network node (buildings at the same node are one stop). Distances are
shortest paths on the grid's walk network (scipy's Dijkstra). When the work (walking plus ``minutes_per_building``
at each building) fits one shift (default 4 h), the tour is a travelling-salesman tour found by fast-tsp's local
search for a quarter of ``time_limit_s`` (default 1 s; exact up to 20 stops). Otherwise it is split into several
tours, one per day or member, each within the shift and each from the base and back: OR-Tools' routing solver
assigns and orders the stops (cheapest arc, then guided local search for ``time_limit_s``), and each tour is then
re-ordered by fast-tsp when that is shorter. Heuristics, not proofs of optimality: the result states its length,
the tests compare it with the exact optimum on small cases, and the benchmark with OR-Tools given 30 s.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import fast_tsp
import networkx as nx
import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from gis.errors import InputError
from gis.patrol.route import WALK_M_PER_MIN, shortest_lengths

DEFAULT_SHIFT_MIN = 240.0
DEFAULT_MINUTES_PER_BUILDING = 2.0
MAX_STOPS = 2000


@dataclass
class Tour:
    stops: list[Hashable]  # network nodes in visiting order, base excluded
    buildings: list[list[int]]  # the buildings visited at each stop
    length_m: float
    minutes: float


@dataclass
class Inspection:
    base: Hashable
    tours: list[Tour]
    buildings: int
    unreachable: list[int]

    @property
    def length_m(self) -> float:
        return sum(t.length_m for t in self.tours)


def plan_inspection(graph: nx.MultiGraph, building_nodes: Mapping[int, Hashable], base: Hashable, *,
                    shift_min: float = DEFAULT_SHIFT_MIN, minutes_per_building: float = DEFAULT_MINUTES_PER_BUILDING,
                    time_limit_s: float = 1.0, weight: str = "length") -> Inspection:
    """Tours from ``base`` visiting every building (``building id → its network node``) exactly once."""
    if shift_min <= 0 or minutes_per_building < 0 or time_limit_s <= 0:
        raise InputError("the shift and the time limit must be positive, the minutes per building not negative")
    if base not in graph:
        raise InputError("the base is not a node of the grid's street network")
    reach = nx.node_connected_component(graph, base)
    unreachable = sorted(b for b, n in building_nodes.items() if n not in reach)
    at: dict[Hashable, list[int]] = {}
    for building, node in sorted(building_nodes.items()):
        if node in reach:
            at.setdefault(node, []).append(building)
    stops = sorted(at, key=str)  # the base's own buildings are a stop at distance 0 from the depot
    if not at:
        raise InputError("no building of the grid can be reached from the base")
    if len(stops) > MAX_STOPS:
        raise InputError(f"{len(stops):,} stops: at most {MAX_STOPS:,} per inspection")
    nodes = [base, *stops]
    distance = distance_matrix(graph, nodes, weight)
    service = [0] + [round(len(at[n]) * minutes_per_building * 60) for n in stops]  # seconds at each stop
    travel_s = [[round(d / WALK_M_PER_MIN * 60) for d in row] for row in distance]
    shift_s = round(shift_min * 60)
    if any(travel_s[0][i] + service[i] + travel_s[i][0] > shift_s for i in range(1, len(nodes))):
        raise InputError(f"a building cannot be reached and left within one shift of {shift_min:.0f} min")
    work_s = sum(service) + _tour_estimate(travel_s)
    vehicles = max(1, math.ceil(work_s / shift_s))
    solution = None
    if vehicles == 1:  # one tour is likely: the travelling salesman, by a dedicated solver
        order = _single_tour(distance, time_limit_s / 4)
        path = [0, *order, 0]
        if sum(travel_s[a][b] for a, b in itertools.pairwise(path)) + sum(service) <= shift_s:
            solution = [order]
    if solution is None:
        for _ in range(len(nodes)):
            solution = _solve(distance, travel_s, service, shift_s, vehicles, time_limit_s)
            if solution is not None:
                break
            vehicles += 1  # the estimate was short: one more day or member
        else:  # pragma: no cover - one vehicle per stop always fits (checked above)
            raise InputError("no split of the inspection fits the shift")
        solution = [_reordered(distance, order, time_limit_s / 4 / len(solution)) for order in solution]
    tours = []
    for order in solution:
        if not order:
            continue
        path = [0, *order, 0]
        length = sum(distance[a][b] for a, b in itertools.pairwise(path))
        minutes = (sum(travel_s[a][b] for a, b in itertools.pairwise(path)) + sum(service[i] for i in path)) / 60
        tours.append(Tour([nodes[i] for i in order], [at[nodes[i]] for i in order], float(length), minutes))
    return Inspection(base, tours, sum(len(v) for v in at.values()), unreachable)


def distance_matrix(graph: nx.MultiGraph, nodes: Sequence[Hashable], weight: str = "length") -> list[list[int]]:
    """Shortest-path lengths between ``nodes`` (all on one connected piece), in whole metres for the solvers
    (:func:`gis.patrol.route.shortest_lengths`)."""
    return np.rint(shortest_lengths(graph, nodes, weight)).astype(np.int64).tolist()  # type: ignore[no-any-return]


def _single_tour(distance: list[list[int]], seconds: float) -> list[int]:
    """The shortest tour from node 0 through every other node and back (without the 0s): fast-tsp's local search
    (Or-opt and Lin–Kernighan-style moves; exact up to 20 nodes) for ``seconds``."""
    if len(distance) <= 3:
        return list(range(1, len(distance)))
    tour = fast_tsp.find_tour(distance, max(0.01, seconds))
    start = tour.index(0)
    return [int(i) for i in tour[start + 1:] + tour[:start]]


def _reordered(distance: list[list[int]], order: list[int], seconds: float) -> list[int]:
    """One of several tours, walked in the shortest order fast-tsp finds when that is shorter than the routing
    solver's (its time only shrinks with its length: the same stops and service)."""
    if len(order) < 3:
        return order
    nodes = [0, *order]
    sub = [[distance[a][b] for b in nodes] for a in nodes]
    better = [nodes[i] for i in _single_tour(sub, seconds)]

    def length(o: list[int]) -> int:
        return sum(distance[a][b] for a, b in itertools.pairwise([0, *o, 0]))

    return better if length(better) < length(order) else order


def _tour_estimate(travel_s: Sequence[Sequence[int]]) -> int:
    """A quick nearest-neighbour tour time: enough to guess how many shifts the work needs."""
    left = set(range(1, len(travel_s)))
    here, total = 0, 0
    while left:
        nxt = min(left, key=lambda j: travel_s[here][j])
        total += travel_s[here][nxt]
        left.remove(nxt)
        here = nxt
    return total + travel_s[here][0]


def _solve(distance: list[list[int]], travel_s: list[list[int]], service: list[int], shift_s: int,
           vehicles: int, time_limit_s: float) -> list[list[int]] | None:
    manager = pywrapcp.RoutingIndexManager(len(distance), vehicles, 0)
    routing = pywrapcp.RoutingModel(manager)

    def length(i: int, j: int) -> int:
        return distance[manager.IndexToNode(i)][manager.IndexToNode(j)]

    def busy(i: int, j: int) -> int:
        a, b = manager.IndexToNode(i), manager.IndexToNode(j)
        return travel_s[a][b] + service[a]

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(length))
    routing.AddDimension(routing.RegisterTransitCallback(busy), 0, shift_s, True, "time")
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return None
    orders = []
    for v in range(vehicles):
        index, order = routing.Start(v), []
        index = solution.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            order.append(manager.IndexToNode(index))
            index = solution.Value(routing.NextVar(index))
        orders.append(order)
    return orders
