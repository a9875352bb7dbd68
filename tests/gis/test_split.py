"""The basic patrol shared among k members: against the exact min-max optimum found by brute force on small graphs,
every required street in exactly one part, each part a closed walk from its start, and bad k refused."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from functools import cache

import networkx as nx
import numpy as np
import pytest

from gis.errors import InputError
from gis.patrol.route import SOURCES_AT_ONCE, Edge, basic_route, shortest_lengths
from gis.patrol.split import _circuit, _colourable, _Walks, split_route


def lattice(rows: int, cols: int, seed: int) -> nx.MultiGraph:
    rng = np.random.default_rng(seed)
    graph = nx.MultiGraph()
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols:
                graph.add_edge((r, c), (r, c + 1), key=0, length=float(rng.uniform(50, 150)))
            if r + 1 < rows:
                graph.add_edge((r, c), (r + 1, c), key=0, length=float(rng.uniform(50, 150)))
    return graph


def exact_min_max(graph: nx.MultiGraph, required: Sequence[Edge], bases: Sequence[Hashable]) -> float:
    """The optimum by brute force: every assignment of the streets to the k parts, each part's shortest closed walk
    from its start over its streets by dynamic programming over subsets (Held–Karp on the streets)."""
    dist = dict(nx.all_pairs_dijkstra_path_length(graph, weight="length"))
    edges = list(required)

    @cache
    def walk(subset: frozenset[int], start: Hashable) -> float:
        if not subset:
            return 0.0
        order = sorted(subset)
        best: dict[tuple[int, Hashable], float] = {}
        for i, e in enumerate(order):
            u, v, k = edges[e]
            length = graph.edges[u, v, k]["length"]
            for a, b in ((u, v), (v, u)):
                key = (1 << i, b)
                best[key] = min(best.get(key, float("inf")), dist[start][a] + length)
        for mask in range(1, 1 << len(order)):
            for (m, node), cost in [(s, c) for s, c in best.items() if s[0] == mask]:
                for i, e in enumerate(order):
                    if m & (1 << i):
                        continue
                    u, v, k = edges[e]
                    length = graph.edges[u, v, k]["length"]
                    for a, b in ((u, v), (v, u)):
                        key = (m | (1 << i), b)
                        best[key] = min(best.get(key, float("inf")), cost + dist[node][a] + length)
        full = (1 << len(order)) - 1
        return min(cost + dist[node][start] for (m, node), cost in best.items() if m == full)

    k = len(bases)
    best = float("inf")
    for labels in itertools.product(range(k), repeat=len(edges)):
        if labels[0] != 0 and len(set(bases)) == 1:  # parts sharing one start are interchangeable
            continue
        parts = [frozenset(i for i, lab in enumerate(labels) if lab == p) for p in range(k)]
        best = min(best, max(walk(part, bases[p]) for p, part in enumerate(parts)))
    return best


def street(u: Hashable, v: Hashable, k: int) -> tuple[tuple[str, str], int]:
    a, b = sorted((str(u), str(v)))
    return (a, b), k


def check_parts(graph: nx.MultiGraph, required: Sequence[Edge], split) -> None:  # type: ignore[no-untyped-def]
    seen = [street(*e) for edges in split.edges for e in edges]
    assert sorted(seen) == sorted(street(*e) for e in required)  # every street, in exactly one part
    for part, start, edges in zip(split.parts, split.bases, split.edges, strict=True):
        assert part.steps[0][0] == start and part.steps[-1][1] == start  # a closed walk from its start
        walked = {street(a, b, k) for a, b, k, _ in part.steps}
        assert {street(*e) for e in edges} <= walked
        for (_, b, _, _), (a, _, _, _) in itertools.pairwise(part.steps):
            assert a == b  # every step starts where the last one ended
        total = sum(graph.edges[a, b, k]["length"] for a, b, k, _ in part.steps)
        assert total == pytest.approx(part.length_m)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [2, 3])
def test_near_the_exact_min_max_on_small_graphs(seed: int, k: int) -> None:
    graph = lattice(3, 3, seed)
    rng = np.random.default_rng(100 + seed)
    edges = sorted(graph.edges(keys=True), key=str)
    required = [edges[i] for i in sorted(rng.choice(len(edges), size=7, replace=False))]
    base = (0, 0)
    split = split_route(graph, required, base, k)
    check_parts(graph, required, split)
    optimum = exact_min_max(graph, required, [base] * k)
    assert split.lower_bound_m <= optimum + 1e-6  # the bound is a bound
    assert split.longest_m >= optimum - 1e-6
    assert split.longest_m <= 1.25 * optimum, (split.longest_m, optimum)


@pytest.mark.parametrize("seed", range(16))
def test_the_bound_never_passes_the_optimum(seed: int) -> None:
    """The lower bound (its colouring of pairs and triples of streets included) against the brute-force optimum:
    random streets of a 4 × 4 lattice, a random base, k = 2, 3 or 4; a few with members' own starts."""
    rng = random.Random(seed)
    graph = lattice(4, 4, 50 + seed)
    edges = sorted(graph.edges(keys=True), key=str)
    required = rng.sample(edges, 7)
    k = 2 + seed % 3
    base = rng.choice(sorted(graph.nodes))
    bases = rng.sample(sorted(graph.nodes), k) if seed % 4 == 3 else None
    split = split_route(graph, required, base, k, bases=bases)
    check_parts(graph, required, split)
    optimum = exact_min_max(graph, required, split.bases if bases else [base] * k)
    assert split.lower_bound_m <= optimum + 1e-6 <= split.longest_m + 2e-6, (split.lower_bound_m, optimum)


def test_the_exact_optimum_where_it_is_plain() -> None:
    """Four equal spokes from the base, two members: each walks two spokes, and that is optimal."""
    graph = nx.MultiGraph()
    for leaf in "abcd":
        graph.add_edge("base", leaf, key=0, length=100.0)
    required = [("base", leaf, 0) for leaf in "abcd"]
    split = split_route(graph, required, "base", 2)
    check_parts(graph, required, split)
    assert split.longest_m == pytest.approx(400.0) == pytest.approx(exact_min_max(graph, required, ["base"] * 2))
    assert split.ratio_to_bound == pytest.approx(1.0)


def test_each_member_from_their_own_start() -> None:
    graph = lattice(3, 4, 7)
    required = sorted(graph.edges(keys=True), key=str)[:8]
    starts = [(0, 0), (2, 3)]
    split = split_route(graph, required, (0, 0), 2, bases=starts)
    check_parts(graph, required, split)
    assert sorted(split.bases, key=str) == sorted(starts, key=str)
    optimum = exact_min_max(graph, required, split.bases)
    assert split.lower_bound_m <= optimum + 1e-6 <= split.longest_m + 2e-6


def test_one_part_is_the_basic_patrol() -> None:
    graph = lattice(3, 3, 1)
    required = list(graph.edges(keys=True))
    split = split_route(graph, required, (1, 1), 1)
    assert split.longest_m == pytest.approx(split.tour.length_m) and split.ratio_to_bound == pytest.approx(1.0)


@pytest.mark.parametrize("k, bases, message", [
    (0, None, "k (the members or shifts sharing the patrol) is 1 to 8"),
    (9, None, "is 1 to 8"),
    (5, None, "k = 5 is more than the grid's streets allow: it has 4 street segment(s)"),
    (2, [(0, 0)], "give one start per member: 2 members, 1 starts"),
    (2, [(0, 0), (9, 9)], "a member's start is not on the grid's street network"),
    (2, [(0, 0), (7, 7)], "a member's start is on a piece of the street network that does not reach the grid's"),
])
def test_bad_k_and_starts_are_refused(k: int, bases: list[tuple[int, int]] | None, message: str) -> None:
    graph = lattice(2, 2, 0)
    graph.add_edge((7, 7), (7, 8), key=0, length=10.0)  # a piece of its own
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        split_route(graph, list(graph.edges(keys=True)), (0, 0), k, bases=bases)


@pytest.mark.parametrize("seed", range(4))
def test_each_part_is_solved_exactly_or_says_its_gap(seed: int) -> None:
    """Step 5: a part's streets seldom form one piece with its start (a rural postman); each part's route is
    then solved by CP-SAT: optimal (its own Held-Karp optimum here) or with a proven bound, never longer."""
    graph = lattice(3, 4, seed)
    required = sorted(graph.edges(keys=True), key=str)[::2]  # every other street: pieces
    heuristic = split_route(graph, required, (0, 0), 3, exact_s=0)
    exact = split_route(graph, required, (0, 0), 3, exact_s=5.0)
    check_parts(graph, required, exact)
    for part, edges, before in zip(exact.parts, exact.edges, heuristic.parts, strict=True):
        if edges == heuristic.edges[exact.edges.index(edges)]:
            assert part.length_m <= before.length_m + 1e-6
        if part.optimal:
            solo = exact_min_max(graph, edges, [(0, 0)])
            assert part.length_m == pytest.approx(solo, abs=0.2)  # CP-SAT's decimetres
        else:
            assert part.lower_bound_m is not None and part.lower_bound_m <= part.length_m
    assert any(not p.optimal for p in heuristic.parts)  # the case is a rural one
    # and small enough to be solved: optimal, or proven within the model's rounding (decimetres per street)
    assert all(p.optimal or p.lower_bound_m >= 0.999 * p.length_m for p in exact.parts)


@pytest.mark.parametrize("seed", range(5))
def test_a_parts_walk_is_measured_as_the_route_walks_it(seed: int) -> None:
    """The local search measures a part without routing it (shortest distances and a T-join matcher built once):
    the same length :func:`basic_route` walks, on parts in one piece and parts in several."""
    graph = lattice(4, 5, seed)
    streets = sorted(graph.edges(keys=True), key=str)
    walks = _Walks(graph, streets, [(0, 0), (3, 4)], "length")
    rng = np.random.default_rng(seed)
    for size in (1, 2, 5, 9, 16):
        part = [streets[i] for i in rng.choice(len(streets), size=size, replace=False)]
        part = [(v, u, k) if rng.random() < 0.5 else (u, v, k) for u, v, k in part]  # either way round
        for start in ((0, 0), (3, 4)):
            assert walks(part, start) == pytest.approx(basic_route(graph, part, start).length_m)


@pytest.mark.parametrize("seed", range(3))
def test_another_euler_circuit_walks_the_same_streets(seed: int) -> None:
    graph = lattice(3, 4, seed)
    tour = basic_route(graph, sorted(graph.edges(keys=True), key=str)[::2], (1, 1))
    rng = random.Random(seed)
    circuits = [_circuit(tour.steps, (1, 1), rng) for _ in range(5)]

    def streets(steps: Sequence[tuple[Hashable, Hashable, int, bool]]) -> Counter[tuple[object, ...]]:
        return Counter((*street(a, b, k), required) for a, b, k, required in steps)
    for circuit in circuits:
        assert circuit[0][0] == circuit[-1][1] == (1, 1)
        assert all(b == a for (_, b, _, _), (a, _, _, _) in itertools.pairwise(circuit))
        assert streets(circuit) == streets(tour.steps)
    assert len({tuple(s[:2] for s in c) for c in [tour.steps, *circuits]}) > 2  # other orders


def test_two_of_three_far_streets_share_a_walk() -> None:
    """Three spokes of 100 m, two members: one walks two spokes (400 m). The route ÷ k (300 m) and a spoke's round
    trip (200 m) say less; the pigeonhole's pairs (two of any three streets share a walk) say it exactly."""
    graph = nx.MultiGraph()
    for leaf in "abc":
        graph.add_edge("base", leaf, key=0, length=100.0)
    required = [("base", leaf, 0) for leaf in "abc"]
    split = split_route(graph, required, "base", 2)
    optimum = exact_min_max(graph, required, ["base"] * 2)
    assert split.lower_bound_m == pytest.approx(400.0) == pytest.approx(optimum) == pytest.approx(split.longest_m)


def test_five_streets_round_a_ring_bounded_by_their_conflicts() -> None:
    """Five dead ends of 50 m off a ring of 10 m links, each 100 m from the base, two members. Two streets' pair
    walk is 410 m next to each other on the ring, 420 m otherwise: no three streets are pairwise more than 410 m
    apart (the pigeonhole says 410 m), but the pairs above 410 m make a ring of five, which two colours cannot
    colour (420 m). And one walk takes three streets, whose triple walk is at least 520 m: the optimum."""
    graph = nx.MultiGraph()
    for i in range(5):
        graph.add_edge("base", f"r{i}", key=0, length=100.0)
        graph.add_edge(f"r{i}", f"r{(i + 1) % 5}", key=0, length=10.0)
        graph.add_edge(f"r{i}", f"l{i}", key=0, length=50.0)
    required = [(f"r{i}", f"l{i}", 0) for i in range(5)]
    walks = _Walks(graph, required, ["base"], "length")
    pair, triple = walks._shared_walks(required, [walks.at["base"]])
    ring = [{(i - 1) % 5, (i + 1) % 5} for i in range(5)]
    assert [set(np.flatnonzero(row > 415).tolist()) for row in pair] == [{(i + 2) % 5, (i + 3) % 5} for i in range(5)]
    assert not _colourable([{(i + 2) % 5, (i + 3) % 5} for i in range(5)], 2) and _colourable(ring, 3)
    assert triple[0, 1, 2] == pytest.approx(520.0) and triple[0, 1, 3] == pytest.approx(530.0)
    split = split_route(graph, required, "base", 2)
    check_parts(graph, required, split)
    optimum = exact_min_max(graph, required, ["base"] * 2)
    assert split.lower_bound_m == pytest.approx(520.0) == pytest.approx(optimum) == pytest.approx(split.longest_m)


def test_three_streets_that_may_not_share_a_walk() -> None:
    """With ``apart``, no three marked may share a colour: a triangle's three vertices with no edge between them
    need two colours when the three are marked, one when not."""
    apart = np.zeros((3, 3, 3), dtype=bool)
    for order in itertools.permutations(range(3)):
        apart[order] = True
    assert _colourable([set(), set(), set()], 1) and not _colourable([set(), set(), set()], 1, apart=apart)
    assert _colourable([set(), set(), set()], 2, apart=apart)


@pytest.mark.parametrize("seed", range(30))
def test_the_colouring_is_exact(seed: int) -> None:
    """:func:`_colourable` against every colouring of small random graphs."""
    rng = random.Random(seed)
    n, k = rng.randint(3, 8), rng.randint(2, 4)
    adjacent: list[set[int]] = [set() for _ in range(n)]
    for i, j in itertools.combinations(range(n), 2):
        if rng.random() < 0.55:
            adjacent[i].add(j)
            adjacent[j].add(i)
    brute = any(all(c[i] != c[j] for i in range(n) for j in adjacent[i])
                for c in itertools.product(range(k), repeat=n))
    assert _colourable(adjacent, k) == brute


def test_shortest_lengths_in_chunks_equal_networkx() -> None:
    """More nodes than Dijkstra's runs taken at once (256): the matrix is filled a few rows at a time."""
    graph = lattice(17, 17, 4)
    nodes = sorted(graph.nodes)
    assert len(nodes) > SOURCES_AT_ONCE
    matrix = shortest_lengths(graph, nodes)
    exact = dict(nx.all_pairs_dijkstra_path_length(graph, weight="length"))
    for i in (0, 100, 255, 256, 288):
        assert matrix[i] == pytest.approx([exact[nodes[i]][n] for n in nodes])
