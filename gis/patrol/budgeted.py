"""The time-budgeted patrol: given N minutes, the round from the base that covers the most risk.

An orienteering problem. Each place worth a stop (a key place, a spot with recent events) carries a risk score;
a stop costs the walk there plus a dwell time (default 10 min, DOMAIN.md's 10–16 minutes that deter best). The
route starts and ends at the base and fits the budget. OR-Tools' routing solver solves it with each stop
optional: dropping a stop costs a penalty proportional to its risk (far above any walking distance), so the
solver first collects the most risk it can and then, among rounds collecting as much, walks the least.
Cheapest arc, then guided local search for ``time_limit_s`` (default 1 s): a heuristic, compared with the exact
optimum by brute force on small cases in the tests.

Risk scores (:data:`KEY_PLACE_RISK`, :data:`EVENT_RISK`, :data:`OPEN_EVENT_RISK`) are gridpatrol's defaults: a key
place weighs as much as three recent events; an event still open counts twice. Half of all calls come from under
5% of places (DOMAIN.md), so recent events mark where a patrol's presence matters most.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import networkx as nx
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from gis.errors import InputError
from gis.patrol.inspection import distance_matrix
from gis.patrol.route import WALK_M_PER_MIN

KEY_PLACE_RISK = 3.0
EVENT_RISK = 1.0
OPEN_EVENT_RISK = 2.0
DEFAULT_DWELL_MIN = 10.0
MAX_BUDGET_MIN = 12 * 60.0
MAX_STOPS = 500
_PENALTY_PER_RISK = 10_000_000  # metres: dropping any risk costs more than any walk


@dataclass
class BudgetedRound:
    base: Hashable
    stops: list[Hashable]  # network nodes in walking order, base excluded
    length_m: float
    minutes: float
    risk: float  # collected
    risk_total: float  # of every stop reachable from the base
    dropped: list[Hashable] = field(default_factory=list)  # reachable stops left out for lack of time
    unreachable: list[Hashable] = field(default_factory=list)  # stops the network does not connect to the base


def plan_budgeted(graph: nx.MultiGraph, risk: Mapping[Hashable, float], base: Hashable, budget_min: float, *,
                  dwell_min: float = DEFAULT_DWELL_MIN, time_limit_s: float = 1.0,
                  weight: str = "length") -> BudgetedRound:
    """The round from ``base`` within ``budget_min`` minutes (walking at 4.5 km/h plus ``dwell_min`` at each stop)
    that collects the most ``risk`` (network node → score)."""
    if not 0 < budget_min <= MAX_BUDGET_MIN:
        raise InputError(f"the time budget must be more than 0 and at most {MAX_BUDGET_MIN:.0f} minutes")
    if not 0 <= dwell_min <= 60 or time_limit_s <= 0:
        raise InputError("the dwell time is 0 to 60 minutes and the time limit positive")
    if base not in graph:
        raise InputError("the base is not a node of the grid's street network")
    if any(score < 0 for score in risk.values()):
        raise InputError("risk scores cannot be negative")
    reach = nx.node_connected_component(graph, base)
    unreachable = sorted((n for n in risk if n not in reach), key=str)
    stops = sorted((n for n, score in risk.items() if n in reach and n != base and score > 0), key=str)
    if len(stops) > MAX_STOPS:
        raise InputError(f"{len(stops):,} places worth a stop: at most {MAX_STOPS:,}")
    total = sum(risk[n] for n in stops) + risk.get(base, 0.0)
    nodes = [base, *stops]
    distance = distance_matrix(graph, nodes, weight)
    travel_s = [[round(d / WALK_M_PER_MIN * 60) for d in row] for row in distance]
    dwell_s = round(dwell_min * 60)
    budget_s = round(budget_min * 60)
    order = _solve(distance, travel_s, [risk[n] for n in stops], dwell_s, budget_s, time_limit_s) if stops else []
    path = [0, *order, 0]
    length = sum(distance[a][b] for a, b in itertools.pairwise(path))
    seconds = sum(travel_s[a][b] for a, b in itertools.pairwise(path)) + dwell_s * len(order)
    chosen = [nodes[i] for i in order]
    # A risky spot at the base itself (the office door) is covered by a dwell there, when the time allows.
    base_risk = risk.get(base, 0.0)
    if base_risk > 0 and seconds + dwell_s <= budget_s:
        seconds += dwell_s
    else:
        base_risk = 0.0
    picked = set(chosen)
    return BudgetedRound(base, chosen, float(length), seconds / 60, sum(risk[n] for n in chosen) + base_risk,
                         total, [n for n in stops if n not in picked], unreachable)


def _solve(distance: list[list[int]], travel_s: list[list[int]], scores: list[float], dwell_s: int,
           budget_s: int, time_limit_s: float) -> list[int]:
    manager = pywrapcp.RoutingIndexManager(len(distance), 1, 0)
    routing = pywrapcp.RoutingModel(manager)

    def length(i: int, j: int) -> int:
        return distance[manager.IndexToNode(i)][manager.IndexToNode(j)]

    def busy(i: int, j: int) -> int:
        a, b = manager.IndexToNode(i), manager.IndexToNode(j)
        return travel_s[a][b] + (dwell_s if a else 0)

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(length))
    routing.AddDimension(routing.RegisterTransitCallback(busy), 0, budget_s, True, "time")
    for i, score in enumerate(scores, start=1):
        routing.AddDisjunction([manager.NodeToIndex(i)], round(score * _PENALTY_PER_RISK))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
    solution = routing.SolveWithParameters(params)
    if solution is None:  # pragma: no cover - dropping every stop is always feasible
        return []
    index, order = routing.Start(0), []
    index = solution.Value(routing.NextVar(index))
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(routing.NextVar(index))
    return order
