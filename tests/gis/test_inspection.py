"""The full inspection: every building once, within the shift, against the exact optimum on small cases."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from gis.errors import InputError
from gis.patrol.inspection import plan_inspection
from tests.gis.test_patrol import lattice


def exact_tour(g: nx.MultiGraph, base, stops) -> float:  # type: ignore[no-untyped-def]
    d = dict(nx.all_pairs_dijkstra_path_length(g, weight="length"))
    best = float("inf")
    for order in itertools.permutations(stops):
        path = [base, *order, base]
        best = min(best, sum(round(d[a][b]) for a, b in itertools.pairwise(path)))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_one_tour_is_the_shortest_on_small_cases(seed: int) -> None:
    g = lattice(4, 3, seed, extra=1)
    rng = random.Random(seed)
    nodes = list(g.nodes)
    buildings = {b: rng.choice(nodes) for b in range(10)}
    base = (0, 0)
    plan = plan_inspection(g, buildings, base, time_limit_s=0.5)
    assert len(plan.tours) == 1
    visited = [b for tour in plan.tours for group in tour.buildings for b in group]
    assert sorted(visited) == sorted(buildings)  # every building exactly once
    stops = sorted(set(buildings.values()), key=str)
    assert plan.length_m == pytest.approx(exact_tour(g, base, stops))


def test_a_long_inspection_is_split_into_shifts() -> None:
    g = lattice(6, 6, 3, extra=0)
    buildings = {b: node for b, node in enumerate(sorted(g.nodes) * 3)}  # 108 buildings
    plan = plan_inspection(g, buildings, (0, 0), shift_min=60, minutes_per_building=2, time_limit_s=0.5)
    assert len(plan.tours) >= 4  # 216 min of visits alone
    assert all(t.minutes <= 60 + 1e-6 for t in plan.tours)
    visited = [b for tour in plan.tours for group in tour.buildings for b in group]
    assert sorted(visited) == sorted(buildings)


def test_unreachable_buildings_and_bad_input() -> None:
    g = lattice(2, 2, 1, extra=0)
    g.add_edge("x", "y", key=0, length=50.0)
    plan = plan_inspection(g, {1: (1, 1), 2: "x"}, (0, 0))
    assert plan.unreachable == [2] and plan.buildings == 1
    with pytest.raises(InputError, match="positive"):
        plan_inspection(g, {1: (1, 1)}, (0, 0), shift_min=0)
    with pytest.raises(InputError, match="base is not a node"):
        plan_inspection(g, {1: (1, 1)}, "nowhere")
    with pytest.raises(InputError, match="within one shift"):
        plan_inspection(g, {1: (1, 1)}, (0, 0), shift_min=1, minutes_per_building=5)
