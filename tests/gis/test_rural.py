"""The rural postman solved exactly by CP-SAT: equal to the optimum found by brute force on small graphs whose
required streets fall into pieces, never longer than the heuristic, a closed walk from the base over every required
street, and a time limit that runs out gives the best walk with a proven bound."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from gis.errors import InputError
from gis.patrol.route import basic_route
from gis.patrol.rural import solve_rural
from tests.gis.test_split import exact_min_max, lattice, street


def pieces_of(graph: nx.MultiGraph, required: list[tuple[object, object, int]], base: object) -> int:
    g = nx.MultiGraph()
    g.add_node(base)
    g.add_edges_from((u, v) for u, v, _ in required)
    return nx.number_connected_components(g)


@pytest.mark.parametrize("seed", range(8))
def test_the_exact_optimum_on_small_rural_graphs(seed: int) -> None:
    graph = lattice(3, 4, seed)
    rng = np.random.default_rng(200 + seed)
    edges = sorted(graph.edges(keys=True), key=str)
    required = [edges[i] for i in sorted(rng.choice(len(edges), size=6, replace=False))]
    base = (0, 0)
    heuristic = basic_route(graph, required, base)
    solved = solve_rural(graph, required, base)
    optimum = exact_min_max(graph, required, [base])
    assert solved.status == "OPTIMAL" and solved.route.optimal
    assert solved.route.length_m == pytest.approx(optimum, abs=0.5)  # lengths are rounded to decimetres
    assert solved.route.length_m <= heuristic.length_m + 1e-6 and solved.gap == 0
    steps = solved.route.steps
    assert steps[0][0] == base and steps[-1][1] == base
    assert all(a == b for (_, a, _, _), (b, _, _, _) in itertools.pairwise(steps))
    assert {street(*e) for e in required} <= {street(a, b, k) for a, b, k, _ in steps}
    if pieces_of(graph, required, base) > 1:
        assert not heuristic.optimal  # the case this exists for
    backwards = solve_rural(graph, [(v, u, k) for u, v, k in required], base)  # streets named the other way round
    assert backwards.route.length_m == pytest.approx(solved.route.length_m)


def test_a_short_time_gives_the_best_walk_and_a_bound() -> None:
    graph = lattice(6, 6, 3)
    edges = sorted(graph.edges(keys=True), key=str)
    required = edges[::4]
    solved = solve_rural(graph, required, (0, 0), time_limit_s=0.01)
    heuristic = basic_route(graph, required, (0, 0))
    assert solved.route.length_m <= heuristic.length_m + 1e-6
    assert solved.lower_bound_m <= solved.route.length_m + 1e-6 and 0 <= solved.gap < 1
    assert solved.route.optimal == (solved.status == "OPTIMAL")


def test_one_piece_is_already_optimal() -> None:
    graph = lattice(3, 3, 1)
    solved = solve_rural(graph, list(graph.edges(keys=True)), (1, 1))
    assert solved.status == "OPTIMAL" and solved.gap == 0 and solved.seconds == 0


def test_a_bad_time_limit_is_refused() -> None:
    graph = lattice(2, 2, 0)
    with pytest.raises(InputError, match="time limit"):
        solve_rural(graph, list(graph.edges(keys=True)), (0, 0), time_limit_s=0)
