"""The weekly basic patrol: walk every street of a grid at least once, from the base and back, as short as it can be.

This is the postman problem on the grid's undirected walk network (streets inside the grid are *required*; streets
in the margin around it may be walked to get somewhere, never required):

* When the required streets and the base form one connected piece, the route is **optimal** (the Chinese postman
  on the required streets): every required street once, plus a minimum T-join that evens out the odd-degree
  intersections, found exactly by PyMatching's sparse blossom matching on the street graph itself (the textbook
  way, a minimum-weight perfect matching of those intersections on all their shortest-path distances, is kept as
  the reference: it builds a complete graph and takes 25 s on a 658-segment network), then walked as an Euler
  circuit from the base.
* When they fall into several pieces (a grid boundary cuts a street pattern that only connects through the margin)
  the problem is the rural postman, NP-hard in general: the pieces are first joined along a minimum spanning tree
  of shortest connections (Frederickson's heuristic), then evened out as above. The route says ``optimal: false``.
* Required streets that cannot be reached from the base at all are reported, not silently dropped.

Lengths are metres along the street geometry (osmnx's ``length``).
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np
import pymatching
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from gis.errors import InputError

Edge = tuple[Hashable, Hashable, int]  # (u, v, key) in an undirected MultiGraph
WALK_M_PER_MIN = 75.0  # 4.5 km/h: a patrol on foot that looks around


@dataclass
class Route:
    base: Hashable
    steps: list[tuple[Hashable, Hashable, int, bool]]  # (from, to, key, required walk) in walking order
    length_m: float
    required_m: float
    deadhead_m: float
    required_edges: int
    covered_edges: int
    unreachable: list[Edge] = field(default_factory=list)
    optimal: bool = True
    pieces: int = 1
    lower_bound_m: float | None = None
    """A proven lower bound on the shortest walk (the exact rural postman's, :mod:`gis.patrol.rural`); None when
    none was sought (an optimal route is its own bound)."""

    @property
    def minutes(self) -> float:
        return self.length_m / WALK_M_PER_MIN

    @property
    def deadhead_share(self) -> float:
        return self.deadhead_m / self.length_m if self.length_m else 0.0

    def summary(self) -> dict[str, Any]:
        bound = self.length_m if self.optimal else self.lower_bound_m
        gap = None if bound is None or not self.length_m else max(0.0, 1 - bound / self.length_m)
        return {"length_m": round(self.length_m, 1), "required_m": round(self.required_m, 1),
                "deadhead_m": round(self.deadhead_m, 1), "deadhead_share": round(self.deadhead_share, 4),
                "minutes": round(self.minutes, 1), "required_edges": self.required_edges,
                "covered_edges": self.covered_edges, "unreachable_edges": len(self.unreachable),
                "optimal": self.optimal, "required_pieces": self.pieces,
                "lower_bound_m": round(bound, 1) if bound is not None else None,
                "gap": round(gap, 4) if gap is not None else None}


def shortest_key(graph: nx.MultiGraph, u: Hashable, v: Hashable, weight: str = "length") -> int:
    """Of the parallel streets between two nodes, the shortest (what a shortest path walks)."""
    return int(min(graph[u][v], key=lambda key: (graph[u][v][key][weight], key)))


def _canonical(graph: nx.MultiGraph, u: Hashable, v: Hashable, k: int) -> Edge:
    return (u, v, k) if graph.has_edge(u, v, k) else (v, u, k)


def basic_route(graph: nx.MultiGraph, required: Iterable[Edge], base: Hashable, *, weight: str = "length",
                t_join: Literal["pymatching", "networkx"] = "pymatching") -> Route:
    """The shortest closed walk from ``base`` over every edge of ``required`` (see the module docstring).
    ``t_join="networkx"`` evens out the odd nodes the textbook way (the benchmark's and the tests' reference)."""
    if base not in graph:
        raise InputError("the base is not a node of the grid's street network")
    wanted = {_canonical(graph, u, v, k) for u, v, k in required}
    if not wanted:
        raise InputError("the grid has no streets to patrol")
    reach = nx.node_connected_component(graph, base)
    unreachable = sorted((e for e in wanted if e[0] not in reach), key=str)
    wanted -= set(unreachable)
    if not wanted:
        raise InputError(f"none of the grid's {len(unreachable)} street segments can be reached from the base")

    def length(u: Hashable, v: Hashable, k: int) -> float:
        return float(graph.edges[u, v, k][weight])

    tour = nx.MultiGraph()
    tour.add_node(base)
    for u, v, k in wanted:
        tour.add_edge(u, v, key=("req", u, v, k), u=u, v=v, k=k, required=True)
    pieces = [set(c) for c in nx.connected_components(tour)]
    optimal = len(pieces) == 1

    def add_path(path: Sequence[Hashable]) -> None:
        for a, b in itertools.pairwise(path):
            tour.add_edge(a, b, u=a, v=b, k=shortest_key(graph, a, b, weight), required=False)

    if len(pieces) > 1:  # rural postman: join the pieces along a minimum spanning tree of shortest connections
        closest = nx.Graph()
        for i, piece in enumerate(pieces):
            dist, routes = nx.multi_source_dijkstra(graph, piece, weight=weight)
            for j, other in enumerate(pieces):
                if j <= i:
                    continue
                target = min(other, key=lambda n: (dist.get(n, float("inf")), str(n)))
                closest.add_edge(i, j, weight=dist[target], path=routes[target])
        for i, j in sorted(nx.minimum_spanning_edges(closest, data=False), key=str):
            add_path(closest.edges[i, j]["path"])
    odd = sorted((n for n, d in tour.degree() if d % 2), key=str)
    if odd:
        join = min_t_join(graph.subgraph(reach), odd, weight) if t_join == "pymatching" else \
            _t_join_by_matching(graph, odd, weight)
        for path in join:
            add_path(path)
    steps = []
    for a, b, key in nx.eulerian_circuit(tour, source=base, keys=True):
        data = tour.edges[a, b, key]
        steps.append((a, b, data["k"], data["required"]))
    total = sum(length(a, b, k) for a, b, k, _ in steps)
    required_m = sum(length(*e) for e in wanted)
    return Route(base=base, steps=steps, length_m=total, required_m=required_m, deadhead_m=total - required_m,
                 required_edges=len(wanted) + len(unreachable), covered_edges=len(wanted), unreachable=unreachable,
                 optimal=optimal, pieces=len(pieces))


def min_t_join(graph: nx.MultiGraph, odd: Sequence[Hashable], weight: str = "length") -> list[list[Hashable]]:
    """A minimum T-join of ``odd`` (T) on ``graph``: the cheapest set of edges whose odd-degree nodes are exactly T,
    as node pairs (each a one-edge path). See :class:`TJoins`. Every connected piece of ``graph`` must hold an even
    number of T's nodes."""
    return TJoins(graph, weight).paths(odd)


class TJoins:
    """Minimum T-joins on one street graph, its matching graph built once (a split asks for thousands).

    A minimum T-join is what a minimum-weight perfect matching of T on shortest-path distances gives, found
    without building that complete graph: PyMatching's sparse blossom algorithm matches on the street graph
    itself, exactly (on weights it rounds to 2^-24 of the largest: below a millimetre here)."""

    def __init__(self, graph: nx.MultiGraph, weight: str = "length") -> None:
        self.nodes = list(graph.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.weights = _shortest_links(graph, self.index, weight)
        self.matching = pymatching.Matching()
        for (a, b), metres in self.weights.items():
            self.matching.add_edge(a, b, weight=metres)

    def _pairs(self, odd: Iterable[Hashable]) -> np.ndarray:
        syndrome = np.zeros(self.matching.num_nodes, dtype=np.uint8)
        syndrome[[self.index[n] for n in odd]] = 1
        return self.matching.decode_to_edges_array(syndrome)  # type: ignore[no-any-return]

    def paths(self, odd: Iterable[Hashable]) -> list[list[Hashable]]:
        """The T-join's edges, as node pairs."""
        return [[self.nodes[a], self.nodes[b]] for a, b in self._pairs(odd)]

    def length(self, odd: Iterable[Hashable]) -> float:
        """The T-join's length."""
        return sum(self.weights[(a, b) if a < b else (b, a)] for a, b in self._pairs(odd).tolist())


def _shortest_links(graph: nx.MultiGraph, index: dict[Hashable, int], weight: str) -> dict[tuple[int, int], float]:
    """Each pair of neighbouring nodes (by ``index``, the lower first) and the length of the shortest street between
    them (parallel streets: the shortest one counts; loops: none)."""
    shortest: dict[tuple[int, int], float] = {}
    for u, v, data in graph.edges(data=True):
        a, b = sorted((index[u], index[v]))
        if a != b:
            shortest[a, b] = min(float(data[weight]), shortest.get((a, b), float("inf")))
    return shortest


def shortest_lengths(graph: nx.MultiGraph, nodes: Sequence[Hashable], weight: str = "length") -> np.ndarray:
    """Shortest-path lengths between ``nodes`` (a square matrix; inf between pieces): scipy's Dijkstra on a sparse
    matrix of the street graph (parallel streets: the shortest), one run per node."""
    index = {n: i for i, n in enumerate(graph.nodes)}
    shortest = _shortest_links(graph, index, weight)
    pairs = np.array(list(shortest), dtype=np.int64).reshape(-1, 2)
    lengths = np.fromiter(shortest.values(), dtype=float, count=len(shortest))
    matrix = sparse.csr_matrix((lengths, (pairs[:, 0], pairs[:, 1])), shape=(len(index), len(index)))
    wanted = [index[n] for n in nodes]
    result = np.empty((len(wanted), len(wanted)))
    for first in range(0, len(wanted), SOURCES_AT_ONCE):  # a few rows at a time: each run is a row over every node
        result[first:first + SOURCES_AT_ONCE] = dijkstra(
            matrix, directed=False, indices=wanted[first:first + SOURCES_AT_ONCE])[:, wanted]
    return np.minimum(result, result.T)  # type: ignore[no-any-return]  # exactly symmetric


SOURCES_AT_ONCE = 256
"""Dijkstra's runs of :func:`shortest_lengths` taken together: their rows span the whole graph before the wanted
columns are kept (256 × 20,000 nodes: 40 MB), so a large grid's matrix does not need a graph-wide one first."""


def _t_join_by_matching(graph: nx.MultiGraph, odd: Sequence[Hashable], weight: str) -> list[list[Hashable]]:
    """The same minimum T-join the textbook way: shortest paths between every two odd nodes, then networkx's
    blossom matching on that complete graph (quadratic in the odd nodes: 25 s for a 658-segment network)."""
    metric = nx.Graph()
    paths: dict[tuple[Hashable, Hashable], list[Hashable]] = {}
    for a in odd:
        dist, way = nx.single_source_dijkstra(graph, a, weight=weight)
        for b in odd:
            if str(a) < str(b):
                metric.add_edge(a, b, weight=dist[b])
                paths[a, b] = way[b]
    return [paths[(a, b) if (a, b) in paths else (b, a)]
            for a, b in sorted(nx.min_weight_matching(metric, weight="weight"), key=str)]
