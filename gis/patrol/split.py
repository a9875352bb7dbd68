"""A grid's basic patrol shared among k members (or k shifts): the min-max k-Chinese (k-rural) postman problem.

Split k closed walks, each from the base (or from each member's own start) and back, that together walk every
required street, so that the longest walk is as short as it can be. NP-hard for k ≥ 2; solved the way the
literature does it (Frederickson, Hecht and Kim's route-first, cluster-second), then improved by local search:

1. **Route first**: the single basic patrol (:func:`gis.patrol.route.basic_route`: the optimal postman tour, or
   Frederickson's heuristic for the rural case).
2. **Cluster second, exactly for that order**: the tour's required streets, in walking order, are cut into k
   consecutive runs minimising the longest run's cost ``d(base, first) + the run's own walk + d(last, base)``. The
   cost only grows as a run grows (the triangle inequality), so a greedy pass decides whether a bound is feasible
   and a binary search over the bound finds the best cut of that order (to a millimetre). The order matters: the
   tour walked the other way round, and up to :data:`CIRCUITS` other Euler circuits of the same tour (drawn at
   random, within a share of the time limit), are cut too.
3. The best cuts by their runs' own cost are measured as parts: a part's walk is what :func:`basic_route` would
   walk on its streets (never longer than its run of the tour, usually shorter), measured without routing it
   (:class:`_Walks`: shortest distances and a T-join matcher built once, half a millisecond a part against 17 ms
   for routing it on Liechtenstein's grids).
4. **Local search** within the time limit, from the best measured cuts in turn: a street of the longest part
   moves to another part while the parts' walks, longest first, get shorter; the best result is kept. Only then
   is each part routed (:func:`basic_route`).
5. **Each part solved exactly**: a part's streets are a stretch of the grid, seldom one connected piece with its
   start, so its route is a rural postman's: :func:`gis.patrol.rural.solve_rural` (CP-SAT, warm-started from the
   part's route) within a share of ``exact_s`` (and of what is left of :data:`BUDGET_S`); each part then says
   ``optimal`` or its proven ``gap``.

Members with their own starts: the parts are cut as above, given to the starts so that the longest walk is shortest
(every assignment is tried: k ≤ 8), and the local search runs with each part's own start.

The **lower bound** every result is measured against: the longest single required street's round trip from the
nearest start; the conflicts of the streets farthest out (if the longest walk is L, two streets whose shortest
shared walk exceeds L, or three whose shortest shared walk does, are in different walks: the least L at which k
walks can hold them so, found by exact colouring, :meth:`_Walks.conflict_bound`, within the time left of a second);
and, with one base, the single optimal tour ÷ k (k walks from one base joined at the base are a tour: their sum is
at least the optimum); with the rural postman's heuristic tour or several starts, the required length ÷ k instead,
which is weaker but still a bound. (The benchmark adds CP-SAT's proven bound on the rural tour ÷ k: seconds a
grid, too slow for an answer.)
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from gis.errors import InputError
from gis.patrol.route import Edge, Route, TJoins, _canonical, basic_route, shortest_lengths
from gis.patrol.rural import solve_rural

MAX_PARTS = 8
DEFAULT_TIME_LIMIT_S = 0.5
DEFAULT_EXACT_S = 0.3
"""The time for solving the parts exactly, all of them together (step 5)."""
CIRCUITS = 200
"""Euler circuits of the single tour tried besides its own (step 2), drawn at random: the tour's streets in another
order cut into other runs. On Liechtenstein's grids at k = 3 the best cut of 20 circuits was 4 % shorter than the
better of the tour's own two ways round (median)."""
MEASURED = 24
"""Of the circuits' cuts, the best this many by their runs' own cost (an upper bound on each part's walk) are
measured as parts; with members' own starts, :data:`MEASURED_WITH_STARTS`."""
MEASURED_WITH_STARTS = 3
STARTS = 4
"""The local search starts from the best cuts in turn, each given at least a share of the time left as if this many
were still to come (most reach a local optimum long before), and the best result is kept."""
CIRCUIT_SHARE = 0.3
"""The share of ``time_limit_s`` the circuits may take (cutting them, then routing the best), the rest is the local
search's."""
BUDGET_S = 0.75
"""Step 5 runs only within this much of the whole split's time, so that a grid's split answers within a second
(CP-SAT's limit does not count building its model): on a large rural grid whose local search took its full time,
the parts keep the heuristic's routes and their gaps. (At 0.9 s the worst Liechtenstein grid took 1.09 s.)"""


BOUND_BY_S = 0.85
"""The lower bound's search stops this long after the split began (with what it has proven by then:
:meth:`_Walks.conflict_bound`), or :data:`BOUND_AT_LEAST_S` after it began itself, so that the split answers within a
second."""
BOUND_AT_LEAST_S = 0.02


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
          k: int, weight: str) -> tuple[list[list[Edge]], float]:
    """The tour's required streets in walking order, cut into at most k consecutive runs minimising the longest
    run's cost from and back to the base (step 2 of the module docstring); and that cost, the longest run's (an
    upper bound on its part's own route)."""
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
             for i in range(a, b)] for a, b in itertools.pairwise(bounds)], high


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
    streets = sorted({_canonical(graph, a, b, key) for a, b, key, req in tour.steps if req}, key=str)
    walks = _Walks(graph, streets, [base] if bases is None else [base, *bases], weight)
    if bases is not None and any(b not in walks.at for b in bases):
        raise InputError("a member's start is on a piece of the street network that does not reach the grid's "
                         "streets: choose a start on a street connected to the grid")
    dist = walks.from_start(base)  # the base's distances to the streets' ends, for the cuts (step 2)

    def route(edges: Sequence[Edge], start: Hashable) -> Route:
        return basic_route(graph, edges, start, weight=weight)

    def place(runs: list[list[Edge]]) -> tuple[list[list[Edge]], list[Hashable], float]:
        """The runs as k parts, each with its start, and the longest part's walk."""
        runs = [list(run) for run in runs]
        while len(runs) < k:  # fewer runs than parts: halve the largest run
            big = max(range(len(runs)), key=lambda i: len(runs[i]))
            half = len(runs[big]) // 2
            runs[big:big + 1] = [runs[big][:half], runs[big][half:]]
        if bases is None:
            return runs, [base] * k, max(walks(run, base) for run in runs)
        # the runs go to the starts so that the longest walk is shortest
        lengths = {(i, j): walks(runs[i], bases[j]) for i in range(k) for j in range(k)}
        order = min(itertools.permutations(range(k)), key=lambda o: max(lengths[i, o[i]] for i in range(k)))
        return runs, [bases[order[i]] for i in range(k)], max(lengths[i, order[i]] for i in range(k))

    if k == 1:
        runs, starts, _ = place([streets])
        moves = 0
    else:
        # the tour walked either way round, and other Euler circuits of the same tour, cut differently
        circuits = [tour.steps, [(b, a, key, req) for a, b, key, req in reversed(tour.steps)]]
        cuts = [_runs(c, graph, dist, k, weight) for c in circuits]
        rng = random.Random(0)  # the same circuits in the same order each time (how many: as the time allows)
        for _ in range(CIRCUITS):
            if time.perf_counter() >= started + CIRCUIT_SHARE * time_limit_s:
                break
            cuts.append(_runs(_circuit(tour.steps, base, rng), graph, dist, k, weight))
        # the best cuts by their runs' own cost measured as parts (with several starts, fewer: each is measured
        # k × k times), then the local search from each of the best few, the best result kept
        cuts = sorted(cuts, key=lambda c: c[1])[:MEASURED if bases is None else MEASURED_WITH_STARTS]
        placed: dict[tuple[tuple[Edge, ...], ...], tuple[list[list[Edge]], list[Hashable], float]] = {}
        for candidate, _cost in cuts:
            placed.setdefault(tuple(tuple(sorted(run, key=str)) for run in candidate), place(candidate))
        tries = sorted(placed.values(), key=lambda p: p[2])
        results: list[tuple[tuple[float, ...], list[list[Edge]], list[Hashable], int]] = []
        for i, (runs, starts, _) in enumerate(tries):
            left = started + time_limit_s - time.perf_counter()
            if results and left <= 0:
                break
            lengths, made = _improve(walks, runs, starts, time.perf_counter() + left / min(STARTS, len(tries) - i))
            results.append((_rank(lengths), runs, starts, made))
        _, runs, starts, moves = min(results, key=lambda r: r[0])
    parts = [route(run, start) for run, start in zip(runs, starts, strict=True)]
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

    share = tour.length_m / k if (tour.optimal and bases is None) else tour.required_m / k
    bound = max(share, walks.conflict_bound(streets, [base] if bases is None else list(bases), k,
                                        deadline=max(started + BOUND_BY_S, time.perf_counter() + BOUND_AT_LEAST_S)))
    return Split(parts=parts, bases=starts, tour=tour, lower_bound_m=bound, moves=moves,
                 seconds=time.perf_counter() - started, edges=[list(r) for r in runs])


def _circuit(steps: Sequence[tuple[Hashable, Hashable, int, bool]], base: Hashable,
             rng: random.Random) -> list[tuple[Hashable, Hashable, int, bool]]:
    """Another Euler circuit from ``base`` of the walk ``steps`` (the same streets, each as often: another order):
    Hierholzer's algorithm, leaving each intersection by a street drawn at random."""
    exits: dict[Hashable, list[int]] = {}
    for i, (a, b, _, _) in enumerate(steps):
        exits.setdefault(a, []).append(i)
        exits.setdefault(b, []).append(i)
    for ways in exits.values():
        rng.shuffle(ways)
    used = [False] * len(steps)
    stack: list[tuple[Hashable, int]] = [(base, -1)]  # (intersection, the step that reached it)
    circuit: list[tuple[Hashable, Hashable, int, bool]] = []
    while stack:
        here, came = stack[-1]
        ways = exits[here]
        while ways and used[ways[-1]]:
            ways.pop()
        if ways:
            i = ways.pop()
            used[i] = True
            a, b, _, _ = steps[i]
            stack.append((b if a == here else a, i))
        else:
            stack.pop()
            if came >= 0:
                a, b, key, required = steps[came]
                there = stack[-1][0]
                circuit.append((there, here, key, required))
    circuit.reverse()
    return circuit


class _Walks:
    """A part's walk length without routing it: the sum :func:`basic_route` adds up (the part's streets; the
    shortest connections joining its pieces and its start along a minimum spanning tree, Frederickson's; the
    minimum T-join of the odd intersections that leaves), from shortest distances and a T-join matcher built once
    per split. Where two connections tie, the route may pick another and come out a little different: the local
    search decides on these lengths, and the parts it keeps are routed by :func:`basic_route` at the end."""

    def __init__(self, graph: nx.MultiGraph, streets: Sequence[Edge], starts: Sequence[Hashable], weight: str):
        reach = graph.subgraph(nx.node_connected_component(graph, starts[0]))
        self.tjoins = TJoins(reach, weight)
        ends = sorted({n for e in streets for n in e[:2]} | {s for s in starts if s in reach}, key=str)
        self.nodes = ends
        self.at = {n: i for i, n in enumerate(ends)}
        self.dist = shortest_lengths(reach, ends, weight)
        self.length = {(u, v, key): float(graph.edges[u, v, key][weight]) for a, b, key in streets
                       for u, v in ((a, b), (b, a))}  # a street may come either way round

    def __call__(self, edges: Sequence[Edge], start: Hashable) -> float:
        if start not in self.at:
            return float("inf")
        parent: dict[Hashable, Hashable] = {start: start}

        def find(x: Hashable) -> Hashable:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        odd: set[Hashable] = set()
        total = 0.0
        for u, v, key in edges:
            total += self.length[u, v, key]
            parent.setdefault(u, u)
            parent.setdefault(v, v)
            parent[find(u)] = find(v)
            odd ^= {u}
            odd ^= {v}
        pieces: dict[Hashable, list[int]] = {}
        for n in parent:
            pieces.setdefault(find(n), []).append(self.at[n])
        if len(pieces) > 1:  # Prim's tree over the pieces, each joined by its shortest connection
            groups = list(pieces.values())
            nodes = np.array([i for g in groups for i in g])
            firsts = np.cumsum([0] + [len(g) for g in groups[:-1]])
            block = self.dist[np.ix_(nodes, nodes)]
            between = np.minimum.reduceat(np.minimum.reduceat(block, firsts, axis=0), firsts, axis=1)
            inside, best, via = {0}, between[0].copy(), np.zeros(len(groups), dtype=int)
            best[0] = np.inf
            for _ in range(len(groups) - 1):
                g = int(np.argmin(best))
                total += float(best[g])
                h = int(via[g])
                a, b = np.unravel_index(np.argmin(self.dist[np.ix_(groups[h], groups[g])]),
                                        (len(groups[h]), len(groups[g])))
                odd ^= {self.nodes[groups[h][a]]}
                odd ^= {self.nodes[groups[g][b]]}
                inside.add(g)
                best[g] = np.inf
                closer = between[g] < best
                closer[list(inside)] = False
                best[closer], via[closer] = between[g][closer], g
        return total + (self.tjoins.length(odd) if odd else 0.0)

    def conflict_bound(self, streets: Sequence[Edge], starts: Sequence[Hashable], k: int,
                   deadline: float | None = None) -> float:
        """A lower bound on the longest of k walks, each from one of ``starts``, that together walk ``streets``, from
        which streets may share a walk. Two streets in one walk make it at least the shortest closed walk over both
        from the nearest start (whichever order and way round: exact, from shortest distances), their *pair walk*;
        three, their *triple walk*. So if the longest walk is L, the streets whose pair walk exceeds L are in
        different walks, and no three whose triple walk exceeds L share one: the :data:`BOUND_CANDIDATES` streets
        farthest out can be coloured with k colours, one a walk, within these *conflicts at L*. The bound is the
        least L at which they can (:func:`_colourable`, exact; a binary search over the pair walks, then over the
        triple walks above), and at least the longest single street's round trip from the nearest start.

        It sees what the k-th of the whole route cannot: a grid with a few far pieces. It holds the pigeonhole's (k
        + 1 streets in pairwise conflict cannot be coloured) and more: five streets round a ring whose neighbours'
        pair walks are short, no three in pairwise conflict, still need three walks. The search stops at
        ``deadline`` (``time.perf_counter()``) with what it has proven by then."""
        from_ = [self.at[s] for s in starts if s in self.at]
        if not from_:
            return 0.0
        d = self.dist

        def trip(u: Hashable, v: Hashable, key: int) -> float:
            return float(min(d[s, self.at[u]] + self.length[u, v, key] + d[self.at[v], s] for s in from_))
        far = sorted(streets, key=lambda e: -trip(*e))[:BOUND_CANDIDATES]
        single = trip(*far[0]) if far else 0.0
        if len(far) < k + 1:
            return single
        pair, triple = self._shared_walks(far, from_)
        n = len(far)

        def search(values: np.ndarray, triples: bool) -> float:
            """The least of ``values`` (sorted; the largest colourable) at which the conflicts can be coloured, or
            what is proven when the deadline comes: every value below the one returned cannot be coloured."""
            lo, hi = 0, len(values) - 1
            while lo < hi:
                if deadline is not None and time.perf_counter() > deadline:
                    break
                mid = (lo + hi) // 2
                at = float(values[mid])
                adjacent = [set(np.flatnonzero(row > at).tolist()) for row in pair]
                if _colourable(adjacent, k, apart=triple > at if triples else None, deadline=deadline):
                    hi = mid
                else:
                    lo = mid + 1
            return float(values[lo])
        # with no conflicts left (at the largest walk) k colours do; below the least pair walk every two conflict
        # and k + 1 streets cannot be coloured
        upper = np.triu_indices(n, 1)
        pairs_only = search(np.unique(pair[upper]), triples=False)
        above = np.unique(np.concatenate([pair[upper], triple.ravel()]))
        above = above[above >= pairs_only]
        return max(single, search(above, triples=True))

    def _shared_walks(self, far: Sequence[Edge], from_: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The pair walks (n × n) and triple walks (n × n × n) of the streets ``far``: for each start, street and way
        round, the walk out to the street and along it, between the streets, and back, summed over every order and
        way round, the least kept (the nearest start's)."""
        d = self.dist
        ends = np.array([[self.at[e[0]], self.at[e[1]]] for e in far])
        lengths = np.array([self.length[e] for e in far])
        first, last = ends, ends[:, ::-1]  # way round w: enter at first[:, w], leave at last[:, w]
        between = d[last[:, :, None, None], first[None, None]] + lengths[None, None, :, None]  # (i, w) → (j, v) done
        n = len(far)
        pair = np.full((n, n), np.inf)
        ordered = np.full((n, n, n), np.inf)
        for s in from_:
            out = d[s, first] + lengths[:, None]  # (street, way): along it from the start
            back = d[last, s]  # from its exit, back to the start
            two = out[:, :, None, None] + between  # (i, w, j, v): the start, i, then j
            pair = np.minimum(pair, (two + back[None, None]).min(axis=(1, 3)))
            two_ = two.min(axis=1)  # (i, j, v)
            three = (two_[:, :, :, None, None] + between[None]).min(axis=2)  # (i, j, l, u)
            ordered = np.minimum(ordered, (three + back[None, None]).min(axis=3))
        triple = ordered
        for order in itertools.permutations(range(3)):
            triple = np.minimum(triple, ordered.transpose(order))
        pair = np.minimum(pair, pair.T)
        # a street with itself is no conflict (the colouring asks of distinct streets only; a triple with a street
        # twice is a pair, whose conflicts are the pairs')
        i = np.arange(n)
        pair[i, i] = 0.0
        triple[i, i, :] = triple[i, :, i] = triple[:, i, i] = 0.0
        return pair, triple

    def from_start(self, start: Hashable) -> dict[Hashable, float]:
        """Each street end's distance from ``start`` (one of the starts it was built with, on the base's piece)."""
        row = self.dist[self.at[start]]
        return {n: float(row[i]) for n, i in self.at.items()}

    def nearness(self, edges: Sequence[Edge], start: Hashable) -> dict[Hashable, float]:
        """Each street end's distance to the nearest of ``edges``' ends or ``start``."""
        rows = [self.at[n] for e in edges for n in e[:2]] + ([self.at[start]] if start in self.at else [])
        near = self.dist[rows].min(axis=0)
        return {n: float(near[i]) for n, i in self.at.items()}


BOUND_CANDIDATES = 30
"""The streets farthest out whose conflicts (their pair and triple walks) the bound colours
(:meth:`_Walks.conflict_bound`)."""
COLOURING_STEPS = 5_000
"""The colouring's search steps at most, per question (:func:`_colourable`): past them it answers "can", which only
makes the bound smaller (never wrong). Most questions take fewer than a hundred; one whose answer is "cannot" may
take all (a few milliseconds each)."""


def _colourable(adjacent: list[set[int]], k: int, steps: int = COLOURING_STEPS,
                apart: np.ndarray | None = None, deadline: float | None = None) -> bool:
    """Whether a graph (each vertex's neighbours) can be coloured with k colours, neighbours apart, and, with
    ``apart`` (n × n × n, True: those three may not share a colour), no such three alike: exact backtracking, the
    most constrained vertex first (DSATUR), a new colour only one past those used. Past ``steps``, or ``deadline``
    (``time.perf_counter()``), it answers True: a bound built on it then says less, never too much."""
    n = len(adjacent)
    colour = [-1] * n
    members: list[list[int]] = [[] for _ in range(k)]
    left = [steps]

    def fits(v: int, c: int) -> bool:
        if apart is None or len(members[c]) < 2:
            return True
        return not bool(apart[v][np.ix_(members[c], members[c])].any())

    def place(done: int, used: int) -> bool:
        if done == n:
            return True
        left[0] -= 1
        if left[0] < 0 or (deadline is not None and left[0] % 64 == 0 and time.perf_counter() > deadline):
            return True
        v, seen = -1, (-1, -1)
        for u in range(n):
            if colour[u] < 0:
                rank = (len({colour[w] for w in adjacent[u]} - {-1}), len(adjacent[u]))
                if rank > seen:
                    v, seen = u, rank
        taken = {colour[w] for w in adjacent[v]}
        for c in range(min(k, used + 1)):
            if c not in taken and fits(v, c):
                colour[v] = c
                members[c].append(v)
                if place(done + 1, max(used, c + 1)):
                    return True
                members[c].pop()
                colour[v] = -1
        return False
    return place(0, 0)


IMPROVE_CANDIDATES = 24
"""The streets of the longest part tried, per other part, in the local search: those nearest the other part."""


def _rank(values: list[float]) -> tuple[float, ...]:
    """The parts' walks, longest first (to the millimetre): a split is better when this is smaller."""
    return tuple(sorted((round(v, 3) for v in values), reverse=True))


def _improve(walks: _Walks, runs: list[list[Edge]], starts: list[Hashable],
             deadline: float) -> tuple[list[float], int]:
    """Local search (step 4): move a street from the longest part to another while the parts' walks, longest first,
    get shorter (the longest, or with it unchanged the next, and so on: two parts tied for the longest are both
    worked down); in place. The streets tried first are those nearest the other part. Returns the parts' walks
    and the moves made. (Swapping two parts' streets as well was tried: on Liechtenstein at k = 3 it found no
    shorter longest part on the median grid, and took the time of other starts.)"""
    lengths = [walks(run, start) for run, start in zip(runs, starts, strict=True)]
    moves = 0
    while time.perf_counter() < deadline:
        worst = max(range(len(runs)), key=lambda i: lengths[i])
        if len(runs[worst]) <= 1:
            return lengths, moves
        current = _rank(lengths)
        found = None
        for j in sorted((j for j in range(len(runs)) if j != worst), key=lambda j: lengths[j]):
            near = walks.nearness(runs[j], starts[j])
            candidates = sorted(runs[worst], key=lambda e: min(near[e[0]], near[e[1]]))[:IMPROVE_CANDIDATES]
            for edge in candidates:
                if time.perf_counter() >= deadline:
                    return lengths, moves
                rest = [e for e in runs[worst] if e != edge]
                trial = list(lengths)
                trial[worst], trial[j] = walks(rest, starts[worst]), walks([*runs[j], edge], starts[j])
                if _rank(trial) < current:
                    found = (j, rest, edge, trial)
                    break
            if found:
                break
        if found is None:
            return lengths, moves
        j, rest, edge, lengths = found
        runs[worst], runs[j] = rest, [*runs[j], edge]
        moves += 1
    return lengths, moves
