"""Map matching (gis.patrol.matching): small networks whose truth is plain, with fastmm itself (no mock)."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import LineString

from gis.patrol import matching

SPACING = 40.0  # metres between parallel streets: a dense old-city block


def _ladder(rows: int = 6, columns: int = 4) -> dict[tuple[int, int, int], LineString]:
    """A lattice of streets: vertical ones (i, j, 0) 100 m long, SPACING apart, joined by horizontal ones (i, j, 1)."""
    streets = {}
    for i in range(columns):
        for j in range(rows):
            if j + 1 < rows:
                streets[(i, j, 0)] = LineString([(i * SPACING, j * 100.0), (i * SPACING, (j + 1) * 100.0)])
            if i + 1 < columns:
                streets[(i, j, 1)] = LineString([(i * SPACING, j * 100.0), ((i + 1) * SPACING, j * 100.0)])
    return streets


def _walk(coords: list[tuple[float, float]], speed: float = 1.3) -> np.ndarray:
    line = LineString(coords)
    return np.array([line.interpolate(d).coords[0] for d in np.arange(0.0, line.length + 0.01, speed)])


def _walked(streets: dict, points: np.ndarray, times: np.ndarray | None, **kw) -> set:  # type: ignore[type-arg]
    matched = matching.match_track(list(streets.items()), points, times, **kw)
    return set(matched.walked({k: line.length for k, line in streets.items()}))


def test_a_noisy_walk_up_one_street_credits_that_street_and_not_its_neighbours() -> None:
    streets = _ladder()
    truth = {(1, j, 0) for j in range(5)}  # up the second vertical street, 500 m
    true = _walk([(SPACING, 0.0), (SPACING, 500.0)])
    rng = np.random.default_rng(3)
    noisy = true + rng.normal(0.0, 10.0, true.shape)
    times = np.arange(len(noisy), dtype=float)
    found = _walked(streets, noisy, times)
    assert found == truth
    buffered = set(matching.buffer_walked(LineString(noisy), list(streets.items()), 20.0))
    assert truth <= buffered  # the buffer test credits these too ...
    assert not buffered <= truth or buffered == truth  # ... and at σ = 10 m often a neighbour as well


def test_a_walk_round_a_block_credits_its_four_sides() -> None:
    streets = _ladder()
    corners = [(0.0, 100.0), (SPACING, 100.0), (SPACING, 200.0), (0.0, 200.0), (0.0, 100.0)]
    true = _walk(corners)
    noisy = true + np.random.default_rng(4).normal(0.0, 5.0, true.shape)
    found = _walked(streets, noisy, np.arange(len(noisy), dtype=float))
    assert found == {(0, 1, 1), (1, 1, 0), (0, 2, 1), (0, 1, 0)}


def test_sigma_is_estimated_from_the_track_jitter() -> None:
    true = _walk([(0.0, 0.0), (0.0, 500.0)])
    times = np.arange(len(true), dtype=float)
    for sigma in (5.0, 15.0, 30.0):
        noisy = true + np.random.default_rng(5).normal(0.0, sigma, true.shape)
        assert matching.estimate_sigma(noisy, times) == pytest.approx(sigma, rel=0.15)
    assert matching.estimate_sigma(true, None) == matching.DEFAULT_SIGMA_M  # no times, no streets: the default
    assert matching.estimate_sigma(true + 3.0, None, [LineString([(0.0, 0.0), (0.0, 500.0)])]) == 5.0  # near: 5 m


def test_a_gps_jump_is_dropped_and_credits_nothing() -> None:
    streets = _ladder()
    true = _walk([(0.0, 0.0), (0.0, 300.0)])
    times = np.arange(len(true), dtype=float)
    jumped = true.copy()
    jumped[100:106] += np.array([2 * SPACING, 0.0])  # 6 s, 80 m off, on the third street
    keep = matching.drop_jumps(jumped, times, 5.0)
    assert not keep[100:106].any() and keep[:100].all() and keep[106:].all()
    found = _walked(streets, jumped, times)
    assert found == {(0, 0, 0), (0, 1, 0), (0, 2, 0)}


def test_a_dead_end_walked_to_its_end_and_back_counts() -> None:
    streets = {("main", 0, 0): LineString([(0.0, 0.0), (0.0, 200.0)]),
               ("main", 1, 0): LineString([(0.0, 200.0), (0.0, 400.0)]),
               ("dead end", 0, 0): LineString([(0.0, 200.0), (60.0, 200.0)])}
    true = _walk([(0.0, 0.0), (0.0, 200.0), (60.0, 200.0), (0.0, 200.0), (0.0, 400.0)])
    noisy = true + np.random.default_rng(6).normal(0.0, 5.0, true.shape)
    found = _walked(streets, noisy, np.arange(len(noisy), dtype=float))
    assert found == set(streets)


def test_the_walked_share_of_a_street_is_what_the_path_covered() -> None:
    streets = {("a", 0, 0): LineString([(0.0, 0.0), (0.0, 100.0)]),
               ("b", 0, 0): LineString([(0.0, 100.0), (0.0, 200.0)])}
    true = _walk([(0.0, 0.0), (0.0, 150.0)])  # all of a, half of b
    matched = matching.match_track(list(streets.items()), true, np.arange(len(true), dtype=float), sigma_m=5.0)
    assert matched.covered_m[("a", 0, 0)] == pytest.approx(100.0, abs=3.0)
    assert matched.covered_m[("b", 0, 0)] == pytest.approx(50.0, abs=6.0)
    assert matched.walked({k: line.length for k, line in streets.items()}) == [("a", 0, 0)]
    assert matched.path and matched.path[0].length == pytest.approx(150.0, abs=8.0)


def test_a_track_far_from_every_street_matches_nothing() -> None:
    streets = _ladder()
    far = _walk([(5000.0, 0.0), (5000.0, 300.0)])
    matched = matching.match_track(list(streets.items()), far, np.arange(len(far), dtype=float))
    assert matched.stretches == 0 and not matched.covered_m and matched.unmatched_points == matched.kept_points


def test_a_matcher_is_built_once_per_network_and_rebuilt_when_it_changes() -> None:
    streets = list(_ladder().items())
    assert matching.matcher_for(streets) is matching.matcher_for(list(streets))
    moved = [(key, LineString([(x + 1.0, y) for x, y in line.coords])) for key, line in streets]
    assert matching.matcher_for(moved) is not matching.matcher_for(streets)


def test_union_length() -> None:
    assert matching.union_length([(0.0, 10.0), (5.0, 20.0), (30.0, 40.0)]) == 30.0
    assert matching.union_length([]) == 0.0


def test_a_fast_track_is_smoothed_less_than_a_walk() -> None:
    """An e-bike at 5 m/s would have its corners cut by a walker's smoothing window: the window follows the pace."""
    walk_half, _ = matching.smoothing_for(15.0, 1.3)
    bike_half, _ = matching.smoothing_for(15.0, 5.0)
    car_half, _ = matching.smoothing_for(15.0, 15.0)
    assert walk_half == 7.0 and bike_half == 2.0 and car_half == 0.0
    corner = _walk([(0.0, 0.0), (0.0, 300.0), (300.0, 300.0)], speed=5.0)
    times = np.arange(len(corner), dtype=float)
    straight = _walk([(0.0, 0.0), (0.0, 900.0)], speed=5.0)
    assert matching.pace(straight, np.arange(len(straight), dtype=float)) == pytest.approx(5.0, rel=0.02)
    assert matching.pace(corner, times) > 0.75 * 5.0  # a minute's straight line: a turn shortens it
    smoothed = matching.smooth(corner, times, bike_half)
    assert np.hypot(*(smoothed - corner).T).max() < 5.0  # the corner is kept within a few metres


def test_a_short_link_between_two_junctions_reached_counts_and_no_other() -> None:
    """A street offset by a few metres at a junction (a jog: the avenue continues 8 m further along, as old towns
    have them): a walk up the avenue and on beyond the jog credits the 8 m link, whichever way the path took
    round it; a link elsewhere whose ends the walk never reached is not credited."""
    streets = {
        "south": LineString([(0.0, 0.0), (0.0, 200.0)]),
        "jog": LineString([(0.0, 200.0), (8.0, 200.0)]),  # 8 m: shorter than LINK_M
        "north": LineString([(8.0, 200.0), (8.0, 400.0)]),
        "west": LineString([(-150.0, 200.0), (0.0, 200.0)]),
        "east": LineString([(8.0, 200.0), (158.0, 200.0)]),
        "far-link": LineString([(-150.0, 200.0), (-150.0, 190.0)]),  # 10 m, between two junctions
        "far-a": LineString([(-150.0, 190.0), (-150.0, 0.0)]),
        "far-b": LineString([(-150.0, 200.0), (-150.0, 400.0)]),
        "far-c": LineString([(-150.0, 190.0), (-300.0, 190.0)]),
    }
    net = matching.matcher_for(list(streets.items()))
    keys = list(streets)
    assert {keys[i] for i in net.links} == {"jog", "far-link"}
    true = _walk([(0.0, 0.0), (0.0, 200.0), (8.0, 200.0), (8.0, 400.0)])
    noisy = true + np.random.default_rng(7).normal(0.0, 8.0, true.shape)
    found = _walked(streets, noisy, np.arange(len(noisy), dtype=float))
    assert {"south", "jog", "north"} <= found
    assert not found & {"far-link", "far-a", "far-b", "far-c", "west", "east"}


def test_spaced_keeps_the_tip_of_a_turn_and_nothing_more_on_a_straight_walk() -> None:
    """Points kept a spacing apart leave out those in between; where the left-out ones went on beyond the last point
    kept and came back, the farthest of them (the turn's tip) is kept too."""
    out_and_back = np.array([(x, 0.0) for x in [*np.arange(0.0, 12.5, 0.5), *np.arange(12.0, -20.5, -0.5)]])
    kept = matching.spaced(out_and_back, 8.0)
    assert 12.0 in out_and_back[kept][:, 0]  # the tip
    straight = np.array([(x, 0.0) for x in np.arange(0.0, 100.0, 0.5)])
    assert list(matching.spaced(straight, 8.0)) == [*range(0, 200, 16), 199]
    assert matching.tip_cut(7.0, 1.3) == pytest.approx(1.3 * 7 * 8 / 15)  # mean of 1.3|t| over t = −7 … 7
    assert matching.tip_cut(0.0, 1.3) == 0.0


@pytest.mark.parametrize("lane_m", [25.0, 30.0, 35.0, 40.0])
def test_a_lane_walked_to_its_far_junction_and_back_counts(lane_m: float) -> None:
    """A member walks up the main street, into a lane to the junction at its far end, back, and on. The
    smoothing a phone's σ of 15 m calls for (±7 s) pulls the turn's tip some 5 m short and the points kept apart
    a few more: the lane still counts, and the streets beyond its far junction do not."""
    streets = {
        "main-s": LineString([(0.0, 0.0), (0.0, 200.0)]),
        "main-n": LineString([(0.0, 200.0), (0.0, 400.0)]),
        "lane": LineString([(0.0, 200.0), (lane_m, 200.0)]),  # at least LINK_M: not a link
        "far-n": LineString([(lane_m, 200.0), (lane_m, 400.0)]),
        "far-s": LineString([(lane_m, 200.0), (lane_m, 0.0)]),
    }
    assert lane_m >= matching.LINK_M
    true = _walk([(0.0, 0.0), (0.0, 200.0), (lane_m, 200.0), (0.0, 200.0), (0.0, 400.0)])
    found = _walked(streets, true, np.arange(len(true), dtype=float), sigma_m=15.0)
    assert found == {"main-s", "main-n", "lane"}


def test_the_buffer_test_by_pieces_credits_what_the_whole_tracks_buffer_does() -> None:
    """The buffer test buffers a long track a few segments at a time and joins the pieces: the same area as the
    whole track's buffer, so the same streets, on a noisy walk up and down a lattice (streets at the 80 % line
    included: a street beside the walk, partly within 20 m)."""
    streets = _ladder()
    true = _walk([(0.0, 0.0), (0.0, 500.0), (SPACING, 500.0), (SPACING, 0.0), (2 * SPACING, 0.0), (2 * SPACING, 300.0)])
    noisy = true + np.random.default_rng(11).normal(0.0, 15.0, true.shape)
    track = LineString(noisy)
    assert len(noisy) > 20 * matching.BUFFER_PIECE_POINTS
    items = list(streets.items())
    lines = [line for _, line in items]
    for tolerance in (10.0, 20.0, 30.0):
        whole = track.buffer(tolerance)
        expected = [key for key, line in items if line.intersection(whole).length >= 0.8 * line.length]
        assert expected and matching.buffer_walked(track, items, tolerance) == expected
        partly = [line for line in lines if 0 < line.intersection(whole).length < line.length]
        assert partly  # the case the 80 % rule decides is there
    short = LineString(noisy[:5])  # fewer points than a piece: one piece, the whole track
    assert matching.buffer_walked(short, items, 20.0) == [
        key for key, line in items if line.intersection(short.buffer(20.0)).length >= 0.8 * line.length]
