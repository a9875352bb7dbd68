"""The basic patrol route against a brute-force optimum on small graphs, and its walk's properties."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from gis.errors import InputError
from gis.patrol.route import basic_route


def lattice(w: int, h: int, seed: int, extra: int = 2) -> nx.MultiGraph:
    """A small street lattice with random lengths and a few parallel streets (as real networks have)."""
    rng = random.Random(seed)
    g = nx.MultiGraph()
    for x, y in itertools.product(range(w), range(h)):
        if x + 1 < w:
            g.add_edge((x, y), (x + 1, y), key=0, length=rng.uniform(50, 150))
        if y + 1 < h:
            g.add_edge((x, y), (x, y + 1), key=0, length=rng.uniform(50, 150))
    for _ in range(extra):
        u, v, _ = rng.choice(list(g.edges(keys=True)))
        g.add_edge(u, v, key=1, length=g.edges[u, v, 0]["length"] * rng.uniform(1.1, 1.6))
    return g


def brute_force(g: nx.MultiGraph, required: list[tuple], base) -> float:  # type: ignore[no-untyped-def]
    """The exact optimum by enumeration: every required edge once plus 0, 1 or 2 extra traversals of each edge
    (0 or 1 when every edge is required: then the network is already connected and a double extra walk only adds
    length), keeping the cheapest choice whose walked multigraph has even degrees and is connected with the base."""
    edges = list(g.edges(keys=True))
    index = {n: i for i, n in enumerate(g.nodes)}
    ends = [(index[u], index[v]) for u, v, _ in edges]
    lengths = [g.edges[e]["length"] for e in edges]
    req = [1 if e in {tuple(r) for r in required} else 0 for e in edges]
    choices = (0, 1) if all(req) else (0, 1, 2)
    best = float("inf")
    for extra in itertools.product(choices, repeat=len(edges)):
        times = [r + x for r, x in zip(req, extra, strict=True)]
        cost = sum(t * w for t, w in zip(times, lengths, strict=True))
        if cost >= best:
            continue
        degree = [0] * len(index)
        parent = list(range(len(index)))

        def find(a: int, parent: list[int] = parent) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for (a, b), t in zip(ends, times, strict=True):
            if t:
                degree[a] += t
                degree[b] += t
                parent[find(a)] = find(b)
        if any(d % 2 for d in degree):
            continue
        touched = {find(i) for i, d in enumerate(degree) if d} | {find(index[base])}
        if len(touched) == 1:
            best = cost
    return best


def check_walk(g: nx.MultiGraph, route, required, base) -> None:  # type: ignore[no-untyped-def]
    assert route.steps[0][0] == base and route.steps[-1][1] == base  # starts and ends at the base
    for (_, b, _, _), (c, _, _, _) in itertools.pairwise(route.steps):
        assert b == c  # a walk: each step starts where the last ended
    for a, b, k, _ in route.steps:
        assert g.has_edge(a, b, k)
    walked = {frozenset((a, b)) | {k} for a, b, k, _ in route.steps}
    assert all(frozenset((u, v)) | {k} in walked for u, v, k in required)  # every required street walked
    assert route.length_m == pytest.approx(sum(g.edges[a, b, k]["length"] for a, b, k, _ in route.steps))


@pytest.mark.parametrize("seed", range(6))
def test_a_whole_small_network_is_patrolled_optimally(seed: int) -> None:
    g = lattice(3, 3, seed, extra=2)  # 14 edges: 2^14 cases for the brute force
    required = list(g.edges(keys=True))
    base = (0, 0)
    route = basic_route(g, required, base)
    check_walk(g, route, required, base)
    assert route.optimal
    assert route.length_m == pytest.approx(brute_force(g, required, base))


@pytest.mark.parametrize("seed", range(4))
def test_required_streets_only_rural_postman(seed: int) -> None:
    g = lattice(3, 3, seed, extra=0)  # 12 edges: 3^12 cases for the brute force
    rng = random.Random(seed)
    required = rng.sample(list(g.edges(keys=True)), 6)
    base = (1, 1)
    route = basic_route(g, required, base)
    check_walk(g, route, required, base)
    optimum = brute_force(g, required, base)
    if route.optimal:  # one connected piece with the base: exact
        assert route.length_m == pytest.approx(optimum)
    else:  # several pieces: the heuristic, never below the optimum, and here close to it
        assert optimum - 1e-6 <= route.length_m <= 1.5 * optimum


def test_unreachable_streets_are_reported_and_bad_input_refused() -> None:
    g = lattice(2, 2, 1, extra=0)
    g.add_edge("x", "y", key=0, length=80.0)  # an island
    route = basic_route(g, list(g.edges(keys=True)), (0, 0))
    assert route.unreachable == [("x", "y", 0)] and route.covered_edges == 4 and route.required_edges == 5
    with pytest.raises(InputError, match="base is not a node"):
        basic_route(g, list(g.edges(keys=True)), "nowhere")
    with pytest.raises(InputError, match="no streets"):
        basic_route(g, [], (0, 0))
    with pytest.raises(InputError, match="can be reached"):
        basic_route(g, [("x", "y", 0)], (0, 0))


@pytest.mark.parametrize("seed", range(20))
def test_the_sparse_blossom_t_join_equals_the_textbook_matching(seed: int) -> None:
    # Larger networks than the brute force can check: PyMatching on the street graph and networkx's blossom
    # matching on all shortest paths between odd nodes must give routes of the same length.
    rng = random.Random(seed)
    g = lattice(rng.randint(4, 9), rng.randint(4, 9), seed, extra=rng.randint(0, 6))
    required = rng.sample(list(g.edges(keys=True)), rng.randint(len(g.edges) // 2, len(g.edges)))
    base = required[0][0]
    fast = basic_route(g, required, base)
    reference = basic_route(g, required, base, t_join="networkx")
    check_walk(g, fast, required, base)
    assert fast.optimal == reference.optimal
    assert fast.length_m == pytest.approx(reference.length_m, abs=1e-6)
