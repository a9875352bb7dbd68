"""A grid's basic patrol shared among k members (or k shifts): the min-max k-Chinese (k-rural) postman problem.

Split k closed walks, each from the base (or from each member's own start) and back, that together walk every
required street, so that the longest walk is as short as it can be. NP-hard for k ≥ 2; solved the way the
literature does it (Frederickson, Hecht and Kim's route-first, cluster-second), then improved by local search:

1. **Route first**: the single basic patrol (:func:`gis.patrol.route.basic_route`: the optimal postman tour, or
   Frederickson's heuristic for the rural case).
2. **Cluster second, exactly for that order**: the tour's required streets, in walking order, are cut into k
   consecutive runs minimising the longest run's cost ``d(base, first) + the run's own walk + d(last, base)``. The
   cost only grows as a run grows (the triangle inequality), so a greedy pass decides whether a bound is feasible
   and a binary search over the bound finds the best cut of that order (to a millimetre). The tour walked the
   other way round is cut too, and the better cut kept.
3. Each part is then routed on its own (:func:`basic_route` on its streets: a part's walk is never longer than its
   run of the tour, and usually shorter).
4. **Local search** within a time limit: a street at the edge of the longest part moves to another part, when the
   longer of the two becomes shorter than the longest was (each move re-routes both parts).
5. **Each part solved exactly**: a part's streets are a stretch of the grid, seldom one connected piece with its
   start, so its route is a rural postman's: :func:`gis.patrol.rural.solve_rural` (CP-SAT, warm-started from the
   part's route) within a share of ``exact_s`` (and of what is left of :data:`BUDGET_S`); each part then says
   ``optimal`` or its proven ``gap``.

Members with their own starts: the parts are cut as above, given to the starts so that the longest walk is shortest
(every assignment is tried: k ≤ 8), and the local search runs with each part's own start.

The **lower bound** every result is measured against: the longest single required street's round trip from the
nearest start, and, with one base, the single optimal tour ÷ k (k walks from one base joined at the base are a
tour: their sum is at least the optimum); with the rural postman's heuristic tour or several starts, the required
length ÷ k instead, which is weaker but still a bound.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from gis.errors import InputError
from gis.patrol.route import Edge, Route, _canonical, basic_route
from gis.patrol.rural import solve_rural

MAX_PARTS = 8
DEFAULT_TIME_LIMIT_S = 0.5
DEFAULT_EXACT_S = 0.3
"""The time for solving the parts exactly, all of them together (step 5)."""
BUDGET_S = 0.75
"""Step 5 runs only within this much of the whole split's time, so that a grid's split answers within a second
(CP-SAT's limit does not count building its model): on a large rural grid whose local search took its full time,
the parts keep the heuristic's routes and their gaps. (At 0.9 s the worst Liechtenstein grid took 1.09 s.)"""


@dataclass
class Split:
    parts: list[Route]
    bases: list[Hashable]
    tour: Route
    """The single basic patrol the parts were cut from."""
    lower_bound_m: float
    moves: int = 0
    seconds: float = 0.0
    edges: list[list[Edge]] = field(default_factory=list)
    """Each part's required streets (canonical ``(u, v, key)``)."""

    @property
    def longest_m(self) -> float:
        return max(p.length_m for p in self.parts)

    @property
    def ratio_to_bound(self) -> float:
        return self.longest_m / self.lower_bound_m if self.lower_bound_m else 1.0

    def summary(self) -> dict[str, Any]:
        return {"k": len(self.parts), "longest_m": round(self.longest_m, 1),
                "total_m": round(sum(p.length_m for p in self.parts), 1),
                "single_route_m": round(self.tour.length_m, 1), "lower_bound_m": round(self.lower_bound_m, 1),
                "ratio_to_lower_bound": round(self.ratio_to_bound, 4), "local_search_moves": self.moves,
                "seconds": round(self.seconds, 3), "single_route_optimal": self.tour.optimal}


def _runs(steps: Sequence[tuple[Hashable, Hashable, int, bool]], graph: nx.MultiGraph, dist: dict[Hashable, float],
          k: int, weight: str) -> list[list[Edge]]:
    """The tour's required streets in walking order, cut into at most k consecutive runs minimising the longest
    run's cost from and back to the base (step 2 of the module docstring)."""
    prefix = [0.0]
    for a, b, key, _ in steps:
        prefix.append(prefix[-1] + float(graph.edges[a, b, key][weight]))
    seen: set[Edge] = set()
    firsts: list[int] = []  # the steps that walk a required street for the first time
    for i, (a, b, key, required) in enumerate(steps):
        edge = _canonical(graph, a, b, key)
        if required and edge not in seen:
            seen.add(edge)
            firsts.append(i)

    def cost(p: int, q: int) -> float:  # the run from the p-th to the q-th first walk, from and back to the base
        i, j = firsts[p], firsts[q]
        return dist[steps[i][0]] + prefix[j + 1] - prefix[i] + dist[steps[j][1]]

    def cut(bound: float) -> list[int] | None:  # each run's first index, greedily; None when k runs do not do
        starts, p = [], 0
        while p < len(firsts):
            if cost(p, p) > bound:
                return None
            q = p
            while q + 1 < len(firsts) and cost(p, q + 1) <= bound:
                q += 1
            starts.append(p)
            p = q + 1
        return starts if len(starts) <= k else None

    low = max(cost(p, p) for p in range(len(firsts)))
    high = cost(0, len(firsts) - 1)
    while high - low > 1e-3:
        middle = (low + high) / 2
        if cut(middle) is None:
            low = middle
        else:
            high = middle
    starts = cut(high) or [0]
    bounds = [*starts, len(firsts)]
    return [[_canonical(graph, steps[firsts[i]][0], steps[firsts[i]][1], steps[firsts[i]][2])
             for i in range(a, b)] for a, b in itertools.pairwise(bounds)]


def split_route(graph: nx.MultiGraph, required: Sequence[Edge], base: Hashable, k: int, *,
                bases: Sequence[Hashable] | None = None, weight: str = "length",
                time_limit_s: float = DEFAULT_TIME_LIMIT_S, exact_s: float = DEFAULT_EXACT_S) -> Split:
    """k patrols that together walk every street of ``required`` (see the module docstring): from ``base`` and
    back, or each from its own start of ``bases`` (k of them) and back. ``exact_s``: the time for solving the
    parts' own routes exactly (0: not at all)."""
    started = time.perf_counter()
    if not 1 <= k <= MAX_PARTS:
        raise InputError(f"k (the members or shifts sharing the patrol) is 1 to {MAX_PARTS}; got {k}")
    if bases is not None:
        if len(bases) != k:
            raise InputError(f"give one start per member: {k} members, {len(bases)} starts")
        for b in bases:
            if b not in graph:
                raise InputError("a member's start is not on the grid's street network")
    tour = basic_route(graph, required, base, weight=weight)
    if k > tour.covered_edges:
        raise InputError(f"k = {k} is more than the grid's streets allow: it has {tour.covered_edges} street "
                         f"segment(s) to walk, so at most {tour.covered_edges} part(s)")
    dist = nx.single_source_dijkstra_path_length(graph, base, weight=weight)

    def route(edges: Sequence[Edge], start: Hashable) -> Route:
        return basic_route(graph, edges, start, weight=weight)

    def cut(steps: Sequence[tuple[Hashable, Hashable, int, bool]]) -> tuple[list[list[Edge]], list[Hashable],
                                                                             list[Route]]:
        runs = _runs(steps, graph, dist, k, weight) if k > 1 else \
            [sorted({_canonical(graph, a, b, key) for a, b, key, req in steps if req}, key=str)]
        while len(runs) < k:  # fewer runs than parts: halve the largest run
            big = max(range(len(runs)), key=lambda i: len(runs[i]))
            half = len(runs[big]) // 2
            runs[big:big + 1] = [runs[big][:half], runs[big][half:]]
        if bases is None:
            return runs, [base] * k, [route(run, base) for run in runs]
        # the runs go to the starts so that the longest walk is shortest
        walks = {(i, j): route(runs[i], bases[j]) for i in range(k) for j in range(k)}
        order = min(itertools.permutations(range(k)), key=lambda o: max(walks[i, o[i]].length_m for i in range(k)))
        return runs, [bases[order[i]] for i in range(k)], [walks[i, order[i]] for i in range(k)]

    # the tour walked either way round cuts differently: the better of the two goes on to the local search
    forward = cut(tour.steps)
    backward = cut([(b, a, key, req) for a, b, key, req in reversed(tour.steps)]) if k > 1 else forward
    runs, starts, parts = min((forward, backward), key=lambda c: max(p.length_m for p in c[2]))
    moves = _improve(graph, runs, parts, starts, route, weight, started + time_limit_s)
    if exact_s > 0:  # step 5: each part's own rural postman, exactly or with its gap
        deadline = min(time.perf_counter() + exact_s, started + max(BUDGET_S, time_limit_s))
        order = sorted(range(k), key=lambda i: -parts[i].length_m)  # the longest first: it is the result
        for done, i in enumerate(order):
            left = deadline - time.perf_counter()
            if parts[i].optimal or left <= 0.05:  # building the model takes time too
                continue
            solved = solve_rural(graph, runs[i], starts[i], weight=weight, time_limit_s=left / (k - done),
                                 heuristic=parts[i])
            parts[i] = solved.route

    # each start's distances, once (one base: the base's, from above)
    from_start = [dist] if bases is None else [nx.single_source_dijkstra_path_length(graph, b, weight=weight)
                                                for b in bases]

    def round_trip(u: Hashable, v: Hashable, key: int) -> float:
        length = float(graph.edges[u, v, key][weight])
        return min(d.get(u, float("inf")) + length + d.get(v, float("inf")) for d in from_start)
    reachable = [e for run in runs for e in run]
    longest_trip = max(round_trip(*e) for e in reachable)
    share = tour.length_m / k if (tour.optimal and bases is None) else tour.required_m / k
    return Split(parts=parts, bases=starts, tour=tour, lower_bound_m=max(longest_trip, share), moves=moves,
                 seconds=time.perf_counter() - started, edges=[list(r) for r in runs])


def _improve(graph: nx.MultiGraph, runs: list[list[Edge]], parts: list[Route], starts: list[Hashable],
             route: Any, weight: str, deadline: float) -> int:
    """Local search (step 4): move a street from the longest part to another while the pair's longer walk gets
    shorter than the longest was; in place. The streets tried first are those nearest the other part."""
    moves = 0
    while time.perf_counter() < deadline:
        worst = max(range(len(parts)), key=lambda i: parts[i].length_m)
        if len(runs[worst]) <= 1:
            return moves
        improved = False
        others = sorted((j for j in range(len(parts)) if j != worst), key=lambda j: parts[j].length_m)
        for j in others:
            if time.perf_counter() >= deadline:
                return moves
            nodes = {n for e in runs[j] for n in e[:2]} | {starts[j]}
            near = nx.multi_source_dijkstra_path_length(graph, nodes, weight=weight)
            candidates = sorted(runs[worst], key=lambda e: min(near.get(e[0], float("inf")),
                                                                near.get(e[1], float("inf"))))[:6]
            for edge in candidates:
                rest = [e for e in runs[worst] if e != edge]
                shorter, longer = route(rest, starts[worst]), route([*runs[j], edge], starts[j])
                if max(shorter.length_m, longer.length_m) < parts[worst].length_m - 1e-6:
                    runs[worst], runs[j] = rest, [*runs[j], edge]
                    parts[worst], parts[j] = shorter, longer
                    moves += 1
                    improved = True
                    break
            if improved:
                break
        if not improved:
            return moves
    return moves
