"""The time-budgeted patrol: the most risk within the budget, against the exact optimum on small cases."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from gis.errors import InputError
from gis.patrol.budgeted import plan_budgeted
from gis.patrol.route import WALK_M_PER_MIN
from tests.gis.test_patrol import lattice


def exact(g: nx.MultiGraph, risk: dict, base, budget_min: float, dwell_min: float) -> tuple[float, float]:  # type: ignore[type-arg, no-untyped-def]
    """(most risk, least length for it) over every subset and order of the stops, by enumeration."""
    d = dict(nx.all_pairs_dijkstra_path_length(g, weight="length"))
    stops = [n for n in risk if n != base]
    best = (0.0, 0.0)
    for k in range(1, len(stops) + 1):
        for order in itertools.permutations(stops, k):
            path = [base, *order, base]
            length = sum(round(d[a][b]) for a, b in itertools.pairwise(path))
            seconds = sum(round(round(d[a][b]) / WALK_M_PER_MIN * 60) for a, b in itertools.pairwise(path))
            if seconds + k * dwell_min * 60 > budget_min * 60:
                continue
            score = sum(risk[n] for n in order)
            if score > best[0] + 1e-9 or (abs(score - best[0]) < 1e-9 and length < best[1]):
                best = (score, length)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_the_most_risk_within_the_budget_on_small_cases(seed: int) -> None:
    g = lattice(5, 4, seed, extra=1)
    rng = random.Random(seed)
    nodes = [n for n in g.nodes if n != (0, 0)]
    risk = {n: float(rng.choice([1, 2, 3, 5])) for n in rng.sample(nodes, 6)}
    budget = rng.choice([25.0, 40.0, 60.0])
    plan = plan_budgeted(g, risk, (0, 0), budget, dwell_min=5, time_limit_s=0.5)
    assert plan.minutes <= budget + 1e-9
    best_risk, best_length = exact(g, risk, (0, 0), budget, 5)
    assert plan.risk == pytest.approx(best_risk)
    assert plan.length_m == pytest.approx(best_length)
    assert sorted(plan.stops + plan.dropped, key=str) == sorted(risk, key=str)  # each place: visited or dropped
    assert plan.risk_total == pytest.approx(sum(risk.values()))


def test_a_budget_large_enough_visits_every_place_and_a_small_one_none() -> None:
    g = lattice(4, 4, 7, extra=0)
    risk = {(3, 3): 2.0, (0, 3): 1.0, (3, 0): 1.0}
    plan = plan_budgeted(g, risk, (0, 0), 240, time_limit_s=0.3)
    assert sorted(plan.stops, key=str) == sorted(risk, key=str) and not plan.dropped
    nothing = plan_budgeted(g, risk, (0, 0), 5, time_limit_s=0.3)  # a 10-minute dwell alone exceeds it
    assert nothing.stops == [] and nothing.risk == 0 and nothing.length_m == 0
    assert sorted(nothing.dropped, key=str) == sorted(risk, key=str)


def test_places_off_the_network_and_bad_input() -> None:
    g = lattice(3, 3, 2, extra=0)
    g.add_edge("x", "y", key=0, length=40.0)
    plan = plan_budgeted(g, {(2, 2): 1.0, "x": 5.0}, (0, 0), 60, time_limit_s=0.3)
    assert plan.unreachable == ["x"] and plan.stops == [(2, 2)]
    for budget in (0, -5, 10_000):
        with pytest.raises(InputError, match="time budget"):
            plan_budgeted(g, {(2, 2): 1.0}, (0, 0), budget)
    with pytest.raises(InputError, match="base is not a node"):
        plan_budgeted(g, {(2, 2): 1.0}, "nowhere", 30)
    with pytest.raises(InputError, match="negative"):
        plan_budgeted(g, {(2, 2): -1.0}, (0, 0), 30)
