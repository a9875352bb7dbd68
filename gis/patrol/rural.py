"""The rural postman solved exactly, or bounded: an integer model with OR-Tools' CP-SAT, warm-started from the
heuristic route, within a time limit.

Where a grid's required streets fall into several pieces, :func:`gis.patrol.route.basic_route` joins them by
Frederickson's heuristic and says ``optimal: false``. This module answers the same question exactly at grid size.

The model (undirected rural postman, the textbook compact form):

* ``x_e``: how many extra times street ``e`` is walked (besides once if it is required). In an optimal walk no street
  is walked more than twice in all, so ``x_e ∈ {0, 1}`` for a required street and ``{0, 1, 2}`` for another;
* **parity**: at every node the walks in and out pair up, so the streets walked there number an even count
  (``Σ (req_e + x_e) = 2·y_v``);
* **connectivity**: the streets walked join the base to every piece of required streets: a flow of one unit from the
  base to each piece's representative node, which may use a street only if it is walked
  (``f_uv + f_vu ≤ pieces · (req_e + x_e)``);
* minimise the length walked twice or more, ``Σ length_e · x_e`` (lengths in decimetres: CP-SAT takes integers).

The solver starts from the heuristic route's own counts (a hint), so what it returns is never worse than the
heuristic; when its time runs out it returns the best walk found with CP-SAT's proven lower bound, and the **gap**
between them. The walk itself is an Euler circuit of the chosen multigraph from the base.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import networkx as nx
from ortools.sat.python import cp_model

from gis.errors import InputError
from gis.patrol.route import Edge, Route, basic_route

SCALE = 10  # decimetres
DEFAULT_TIME_LIMIT_S = 5.0


@dataclass
class Bounded:
    route: Route
    status: str
    seconds: float

    @property
    def lower_bound_m(self) -> float:
        """A proven lower bound on the shortest walk (the route's own length when it is optimal)."""
        bound = self.route.lower_bound_m
        return self.route.length_m if bound is None else bound

    @property
    def gap(self) -> float:
        """How much longer the route may be than the shortest walk: (length − bound) ÷ length."""
        if not self.route.length_m:
            return 0.0
        return max(0.0, (self.route.length_m - self.lower_bound_m) / self.route.length_m)


def solve_rural(graph: nx.MultiGraph, required: Sequence[Edge], base: Hashable, *, weight: str = "length",
                time_limit_s: float = DEFAULT_TIME_LIMIT_S, workers: int = 1,
                heuristic: Route | None = None) -> Bounded:
    """The shortest closed walk from ``base`` over every street of ``required`` (those the base reaches), exactly
    within ``time_limit_s``, else the best found with its proven bound (see the module docstring). ``heuristic``:
    :func:`basic_route`'s route for the same streets, when the caller has it already. The route returned carries
    the bound (``lower_bound_m``)."""
    if not 0 < time_limit_s <= 300:
        raise InputError("the rural postman's time limit is more than 0 and at most 300 seconds")
    if heuristic is None:
        heuristic = basic_route(graph, required, base, weight=weight)
    reach = nx.node_connected_component(graph, base)
    sub = graph.subgraph(reach)
    wanted = {_key(u, v, k) for u, v, k in required if u in reach}
    edges = [(u, v, k) for u, v, k in sub.edges(keys=True)]
    if heuristic.optimal:  # one piece with the base: the postman tour is already optimal
        return Bounded(_bounded(heuristic, heuristic.length_m), "OPTIMAL", 0.0)
    model = cp_model.CpModel()
    req = [1 if _key(u, v, k) in wanted else 0 for u, v, k in edges]
    x = [model.new_int_var(0, 1 if r else 2, f"x{i}") for i, r in enumerate(req)]
    length = [max(1, round(float(graph.edges[e][weight]) * SCALE)) for e in edges]
    nodes = list(sub.nodes)
    incident: dict[Hashable, list[int]] = {n: [] for n in nodes}
    for i, (u, v, _k) in enumerate(edges):
        if u == v:
            continue  # a loop adds two to its node's count: parity-neutral
        incident[u].append(i)
        incident[v].append(i)
    for n in nodes:
        if incident[n]:
            count = sum(req[i] for i in incident[n])
            y = model.new_int_var(0, len(incident[n]) * 3, f"y{n}")
            model.add(count + sum(x[i] for i in incident[n]) == 2 * y)
    # connectivity: one unit of flow from the base to each piece of required streets (other than the base's own)
    pieces = nx.MultiGraph()
    pieces.add_node(base)
    pieces.add_edges_from((u, v) for u, v, _k in wanted)
    targets = [min(c, key=str) for c in nx.connected_components(pieces) if base not in c]
    demand = len(targets)
    flow = {}
    for i, (u, v, _k) in enumerate(edges):
        if u == v:
            continue
        a, b = model.new_int_var(0, demand, f"f{i}+"), model.new_int_var(0, demand, f"f{i}-")
        flow[i] = (a, b)
        model.add(a + b <= demand * (req[i] + x[i]))
    for n in nodes:
        out_flow = sum(flow[i][0] if edges[i][0] == n else flow[i][1] for i in incident[n])
        in_flow = sum(flow[i][1] if edges[i][0] == n else flow[i][0] for i in incident[n])
        supply = demand if n == base else (-1 if n in targets else 0)
        model.add(out_flow - in_flow == supply)
    model.minimize(sum(length[i] * x[i] for i in range(len(edges))))
    # warm start: the heuristic route's own counts
    walked = Counter(_key(a, b, k) for a, b, k, _ in heuristic.steps)
    for i, (u, v, k) in enumerate(edges):
        model.add_hint(x[i], max(0, min(2, walked.get(_key(u, v, k), 0) - req[i])))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers
    status = solver.solve(model)
    seconds = float(solver.wall_time)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # no walk found in time (a large grid, a short limit): the heuristic's walk stands, and CP-SAT's bound,
        # proven whether or not it found a walk, still says how far it can be from the shortest
        bound = max(heuristic.required_m, min(heuristic.length_m, _metres(solver.best_objective_bound, heuristic)))
        return Bounded(_bounded(heuristic, bound), solver.status_name(status), seconds)
    tour = nx.MultiGraph()
    tour.add_node(base)
    for i, (u, v, k) in enumerate(edges):
        for copy in range(req[i] + solver.value(x[i])):
            tour.add_edge(u, v, key=(i, copy), k=k, required=bool(req[i]) and copy == 0)
    # a walked loop the flow does not need (only an unfinished search keeps one) is dropped: it only adds length
    tour = tour.subgraph(nx.node_connected_component(tour, base)).copy()
    steps = [(a, b, data["k"], data["required"]) for a, b, _key, data in
             ((a, b, key, tour.edges[a, b, key]) for a, b, key in nx.eulerian_circuit(tour, source=base, keys=True))]
    total = sum(float(graph.edges[a, b, k][weight]) for a, b, k, _ in steps)
    # an unfinished search's solution may leave required streets in a piece of its own, away from the base (seen
    # under load in CI): such a walk misses streets, and the heuristic's walk, which covers them all, stands
    if total > heuristic.length_m or sum(1 for *_, required in steps if required) < heuristic.covered_edges:
        bound = min(heuristic.length_m, _metres(solver.best_objective_bound, heuristic))
        return Bounded(_bounded(heuristic, bound), solver.status_name(status), seconds)
    optimal = status == cp_model.OPTIMAL
    route = Route(base=base, steps=steps, length_m=total, required_m=heuristic.required_m,
                  deadhead_m=total - heuristic.required_m, required_edges=heuristic.required_edges,
                  covered_edges=heuristic.covered_edges, unreachable=heuristic.unreachable, optimal=optimal,
                  pieces=heuristic.pieces)
    bound = total if optimal else _metres(solver.best_objective_bound, route)
    return Bounded(_bounded(route, bound), solver.status_name(status), seconds)


def exact_route(graph: nx.MultiGraph, required: Sequence[Edge], base: Hashable, *, time_limit_s: float,
                weight: str = "length") -> Route:
    """The closed walk from ``base`` over ``required``: :func:`basic_route`'s, which is optimal when the streets and
    the base are one piece; else (the rural postman) solved by :func:`solve_rural` within ``time_limit_s`` (0: the
    heuristic's walk as it is)."""
    route = basic_route(graph, required, base, weight=weight)
    if route.optimal or time_limit_s <= 0:
        return route
    return solve_rural(graph, required, base, weight=weight, time_limit_s=time_limit_s, heuristic=route).route


def _bounded(route: Route, bound: float) -> Route:
    route.lower_bound_m = bound
    return route


def _key(u: Hashable, v: Hashable, k: int) -> tuple[Hashable, Hashable, int]:
    """A street the same way whichever way round it is named (an undirected graph's edges come either way)."""
    a, b = sorted((u, v), key=str)
    return a, b, int(k)


def _metres(objective_bound: float, route: Route) -> float:
    """A lower bound on the whole walk from CP-SAT's bound on the extra length: each length was rounded to the
    nearest decimetre, so each street walked again may be up to 5 cm shorter than the model counted."""
    return route.required_m + max(0.0, objective_bound) / SCALE - 0.05 * len(route.steps)
