"""Proof of patrol: which streets a GPS track walked, by hidden-Markov map matching, with the buffer test beside it.

**Map matching** (:func:`match_track`): the track is matched to the grid's walk network by FMM (Yang and Gidófalvi's
fast map matching: a hidden Markov model whose states are candidate positions on the streets near each GPS point,
emission ∝ exp(−d² / 2σ²), transition = how well the network path between two candidates agrees with the straight
line between their points; the most likely sequence by Viterbi, the paths between consecutive points from a table
of precomputed shortest paths), as implemented by ``fastmm`` (C++, MIT). The matched path follows the network, so
a street counts as walked when the path walks along it: at least :data:`WALKED_SHARE` of its length, which lets
the first and the last street of a track count only when the track really went along them.

Before matching:

* σ, the GPS error, is the phone's own figure when it gives one, or estimated (:func:`estimate_sigma`) from the
  track's jitter (with the points' times) or from its distance to the streets (without); clamped to 5–50 m;
* with times, points that would mean moving faster than :data:`MAX_SPEED_M_S` (beyond what the GPS error explains)
  are dropped, for up to :data:`MAX_JUMP_S` (an urban canyon's jump of 50 to 100 m for a few seconds); a track that
  stays away longer really moved (:func:`drop_jumps`);
* with times, the track is smoothed (:func:`smooth`: each point the mean of those within a few seconds of it),
  which brings a walker's σ of 15 m down to about 4 m at the cost of cutting corners by a few metres; without
  times (a drawn line, a route's vertices) it is not, the points' spacing being unknown;
* points within :data:`KEPT_APART_SIGMAS` ``σ`` (the σ left after smoothing) of the last kept point are dropped, as
  Newson and Krumm advise for dense tracks (they keep raw fixes 2σ apart): at 1 Hz a walker moves 1.4 m between
  points, and such points only add noise to the transitions; but the tip of a turn (a walk into a lane and back)
  is kept (:func:`spaced`).

After matching, corrections of what the path says (:func:`_walked_pieces`, :func:`match_track`):

* with times, a stretch of path no one could have walked between its two points' times (faster than
  :data:`MAX_SPEED_M_S`, give or take 4σ) credits nothing: it is the matcher's way round a point it placed on the
  wrong street (most often at a track's ends, where the smoothing has fewer points);
* a path that leaves a street and comes back to it between two points, or goes out and straight back between
  three, is the walk along that street between the points;
* the network is directed (each street both ways) and a point that seems to step back along a street has no path
  but to the street's end and back: such a turn is taken as the few metres between the two places, not as the
  whole street twice (unless the end is a dead end's, where turning back is what a walker does);
* where the path turns back along a street, its tip is taken :func:`tip_cut` metres further on (up to the
  street's end): the smoothing's mean pulls a turn's tip back by about the pace times half the window (5 m for a
  walker at σ = 15 m), which would cost a lane of 25–40 m walked to its far junction and back its credit;
* a dead end shorter than :data:`STUB_M` counts when the path passed its mouth: no GPS can tell a few metres' walk
  into it and back from standing at its mouth;
* a link shorter than :data:`LINK_M` between two junctions counts when the path reached both its ends (it may
  have gone round by another street: between junctions a few metres apart the GPS cannot tell).

Approximate, and measured (``bench/matching_bench.py``, docs/BENCHMARKS.md): the benchmark's GPS errors are
independent from second to second, which smoothing exploits; a phone's error that wanders slowly is averaged less
well. Street segments shorter than the GPS error (a 2 m link between two crossings) cannot be resolved by any
method, and are the most of what the matcher misses.

Where a stretch of the track cannot be matched (no street within the search radius, or no path), fastmm matches
the stretches either side on their own and the unmatched points are counted (``unmatched_points``).

**The buffer test** (:func:`buffer_walked`), the method before this one, is kept as the fallback (a track the
matcher cannot match at all) and as the benchmark's reference: a street counts when at least
:data:`WALKED_SHARE` of it lies within the tolerance of the track. In dense old-city streets (10–20 m apart) it
credits parallel streets never walked; the benchmark (``bench/matching_bench.py``) measures both on the same tracks.

All coordinates here are metric (a UTM zone): the store projects before and after.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString

WALKED_SHARE = 0.8
"""A street counts as walked when the matched path (or, for the buffer test, the track's buffer) covers at least
this share of its length."""
MAX_SPEED_M_S = 10.0
"""Faster than this between two points of a patrol on foot or by e-bike is a GPS jump, not a move."""
MAX_JUMP_S = 20.0
"""A track away (by a jump) for longer than this really moved."""
MIN_SIGMA_M, MAX_SIGMA_M = 5.0, 50.0
DEFAULT_SIGMA_M = 15.0
"""σ assumed when it cannot be estimated (a phone in a city street, as usually quoted)."""
MAX_PATH_M = 1500.0
"""The longest network path between two consecutive kept points that the matcher considers (FMM's ``delta``: the
precomputed table of shortest paths reaches this far). A gap longer than this splits the track."""
EMISSION_SIGMAS = 1.5
"""The emission's spread, in the σ left after smoothing: a smoothed point is off by more than its σ where the
smoothing cut a corner or had few points (a drop-out's edge), and a sharper emission sends the path on detours to
reach such a point (tuned on Nanjing and Beijing: 1, 1.5, 2 and 3 tried)."""
REVERSE_SIGMAS = 4.0
"""How far back along the same street a point may seem to move (in σ) and still be taken as standing or walking
on: the network is directed (each street both ways), and without this the noise of a walker's points, which
often seem to step back, would cost a turn at the street's end, making a parallel street look as likely."""
SMOOTHED_SIGMA_M = 4.0
"""The GPS error the smoothing aims to leave."""
MIN_SMOOTHED_M = 3.0
MAX_SMOOTHING_S = 10.0
CORNER_M = 10.0
"""The smoothing window reaches no farther along the track than this either side (at the track's pace)."""
STUB_M = 15.0
"""A dead end shorter than this counts as walked when the path passes its mouth."""
LINK_M = 15.0
"""A street shorter than this between two junctions counts as walked when the path reached both its ends. 25 m
credited more links walkers never took (Beijing's dual carriageways and sidewalks, their ends reached on separate
walks); with the turns' tips credited, 15 m balances precision and recall best (docs/BENCHMARKS.md)."""
END_M = 1.0
KEPT_APART_SIGMAS = 1.5
"""Smoothed points closer than this many σ (the σ left after smoothing: 6 m at a phone's 15 m) to the last kept one
are left out. Newson and Krumm keep raw fixes 2σ apart, against a fix that seems to step back; a smoothed point
steps back far less (its neighbours share most of its window), the matcher already takes a step back of up to
:data:`REVERSE_SIGMAS` as standing, and at 2σ (8 m) a street of 15 m between two crossings holds one kept point or
none. Measured on six sets of tracks of the three cities (docs/BENCHMARKS.md): at σ = 15 m recall 0.942 → 0.957 on
Beijing's two sets not used to choose it, precision 0.970 → 0.967; at σ = 5 m no change."""
UNTIMED_SPACING_M = 5.0
"""A track without times keeps its points this far apart (its spacing and noise unknown)."""
BUFFER_PIECE_POINTS = 8
"""The buffer test buffers a track this many segments at a time (:func:`buffer_walked`)."""
MATCHERS_KEPT = 16
"""Networks whose matcher (and its shortest-path table) is kept in memory, most recently used first."""

Street = Hashable  # a street's key, e.g. the walk network's (u, v, key)


@dataclass
class Matched:
    """A track matched to a network."""

    covered_m: dict[Street, float]
    """Metres of each street the matched path walked along (the union of its stretches, at most its length)."""
    path: list[LineString]
    """The matched path, stretch by stretch (metric coordinates), for showing what was credited."""
    sigma_m: float
    points: int
    kept_points: int
    unmatched_points: int
    jumps_dropped: int = 0
    stretches: int = 0

    def walked(self, lengths: dict[Street, float], share: float = WALKED_SHARE) -> list[Street]:
        """The streets among ``lengths`` the path walked at least ``share`` of."""
        return [s for s, length in lengths.items() if length > 0 and self.covered_m.get(s, 0.0) >= share * length]


@dataclass
class _Network:
    network: Any  # fastmm's matcher refers to its network without holding it: it must live as long
    matcher: Any
    ends: list[tuple[int, int]]
    """Each street's end nodes (as numbered here), at its offset 0 and at its length."""
    stubs: dict[int, int]
    """Dead ends shorter than :data:`STUB_M`: the street's index → the node at its open end (its mouth)."""
    degree: np.ndarray
    """Each node's number of street ends."""
    streets: list[Street]
    lengths: np.ndarray
    lines: list[LineString] = field(repr=False)
    links: list[int] = field(default_factory=list)
    """Streets shorter than :data:`LINK_M` between two junctions (not dead ends)."""


_lock = threading.Lock()
_cache: OrderedDict[str, _Network] = OrderedDict()


@contextmanager
def _quiet() -> Any:
    """fastmm logs every step of building a matcher to the process's standard output (spdlog, with no switch from
    Python); the lines would fill a server's log. Standard output is pointed at /dev/null while a matcher is built
    (under the module's lock, a few milliseconds; matching itself logs nothing)."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def matcher_for(streets: Sequence[tuple[Street, LineString]]) -> _Network:
    """The matcher for a network of undirected streets (each added in both directions), built once per distinct
    network (its streets' keys and geometry) and kept."""
    digest = hashlib.sha256()
    for key, line in streets:
        digest.update(repr(key).encode())
        digest.update(shapely.to_wkb(line, output_dimension=2))
    name = digest.hexdigest()
    with _lock:
        found = _cache.get(name)
        if found is not None:
            _cache.move_to_end(name)
            return found
        import fastmm

        nodes: dict[tuple[float, float], int] = {}

        def node(xy: tuple[float, float]) -> int:
            # the streets' own end points, rounded to a centimetre, are the network's nodes
            return nodes.setdefault((round(xy[0], 2), round(xy[1], 2)), len(nodes))

        ends: list[tuple[int, int]] = []
        with _quiet():
            network = fastmm.Network()
            for i, (_, line) in enumerate(streets):
                coords = [(float(x), float(y)) for x, y in line.coords]
                a, b = node(coords[0]), node(coords[-1])
                ends.append((a, b))
                network.add_edge(2 * i, source=a, target=b, geom=coords)
                network.add_edge(2 * i + 1, source=b, target=a, geom=coords[::-1])
            network.finalize()
            with tempfile.TemporaryDirectory(prefix="gridpatrol-ubodt-") as cache:
                # the shortest-path table is written to a file and read back; the matcher keeps it in memory
                matcher = fastmm.FastMapMatch(network, fastmm.TransitionMode.SHORTEST,
                                              max_distance_between_candidates=MAX_PATH_M, cache_dir=cache)
        degree = np.bincount(np.array(ends, dtype=int).ravel(), minlength=len(nodes)) if ends else np.zeros(0)
        stubs = {i: (a if degree[b] == 1 else b) for i, (a, b) in enumerate(ends)
                 if (degree[a] == 1) != (degree[b] == 1) and streets[i][1].length < STUB_M}
        links = [i for i, (a, b) in enumerate(ends) if a != b and degree[a] > 1 and degree[b] > 1
                 and streets[i][1].length < LINK_M]
        built = _Network(network=network, matcher=matcher, ends=ends, stubs=stubs, degree=degree,
                         streets=[key for key, _ in streets], lengths=np.array([line.length for _, line in streets]),
                         lines=[line for _, line in streets], links=links)
        _cache[name] = built
        while len(_cache) > MATCHERS_KEPT:
            _cache.popitem(last=False)
        return built


def estimate_sigma(points: np.ndarray, times: np.ndarray | None,
                   lines: Sequence[LineString] | None = None) -> float:
    """The GPS error σ (metres, per axis), clamped to 5–50 m.

    With times, from the track's own jitter: where three consecutive points are at most 2 s apart, a walker's own
    movement barely bends the track, so the second difference ``p[i+1] − 2p[i] + p[i−1]`` is almost all noise, with
    a standard deviation of σ√6 per axis for independent errors; its median absolute deviation (robust to the jumps
    and drop-outs) gives σ. Approximate: an error that wanders slowly (correlated from one second to the next, as a
    phone's often does) jitters less than it errs, and is underestimated.

    Without such times, from the points' distances to the nearest of ``lines`` (the streets): their median is
    0.674σ for an error across the street. Approximate too: where streets are closer together than the error, a
    point is near some street anyway, and σ comes out low. :data:`DEFAULT_SIGMA_M` when neither can be had."""
    if times is not None and len(points) >= 22:
        dt = np.diff(times)
        close = (dt[:-1] <= 2.0) & (dt[1:] <= 2.0) & (dt[:-1] > 0) & (dt[1:] > 0)
        if close.sum() >= 20:
            second = (points[2:] - 2 * points[1:-1] + points[:-2])[close].ravel()
            mad = float(np.median(np.abs(second - np.median(second))))
            return float(np.clip(mad / 0.6745 / math.sqrt(6.0), MIN_SIGMA_M, MAX_SIGMA_M))
    if lines:
        sample = points if len(points) <= 2000 else points[np.linspace(0, len(points) - 1, 2000).astype(int)]
        _, distances = shapely.STRtree(list(lines)).query_nearest(shapely.points(sample), return_distance=True,
                                                                  all_matches=False)
        if len(distances) >= 2:
            return float(np.clip(np.median(distances) / 0.674, MIN_SIGMA_M, MAX_SIGMA_M))
    return DEFAULT_SIGMA_M


def drop_jumps(points: np.ndarray, times: np.ndarray | None, sigma: float) -> np.ndarray:
    """Which points to keep (a boolean mask): without the jumps. A jump: reaching the point from the last kept one
    is faster than :data:`MAX_SPEED_M_S`, beyond what the GPS error ``sigma`` explains (4σ either way: two fixes a
    second apart differ by up to that with no move at all); the points after it are dropped as long as they are,
    for up to :data:`MAX_JUMP_S` (an urban canyon's burst lasts seconds). A track that stays away longer moved there
    for real (a first fix that was wrong, say): its points are kept. Without times, every point is kept."""
    keep = np.ones(len(points), dtype=bool)
    if times is None:
        return keep
    xs, ys, ts = points[:, 0].tolist(), points[:, 1].tolist(), times.tolist()
    noise = 4.0 * sigma
    last, run = 0, -1
    for i in range(1, len(xs)):
        if math.hypot(xs[i] - xs[last], ys[i] - ys[last]) > MAX_SPEED_M_S * max(ts[i] - ts[last], 1.0) + noise:
            if run < 0:
                run = i
            if ts[i] - ts[run] <= MAX_JUMP_S:
                keep[i] = False
                continue
            keep[run:i] = True  # it stayed there: a real move
        run = -1
        last = i
    return keep


def smooth(points: np.ndarray, times: np.ndarray | None, half: float) -> np.ndarray:
    """Each point replaced by the mean of the points within ``half`` seconds of it (or, without times, within
    ``half`` places of it); near the track's ends the window stays centred (narrower), so the ends are not pulled
    inwards. A walker's independent GPS errors shrink by the square root of the points averaged, at the cost of
    cutting corners (:func:`smoothing_for` keeps that to a few metres). (:func:`match_track` smooths only tracks
    with times: without them the points' spacing is unknown.)"""
    if half <= 0 or len(points) < 3:
        return points
    stamp = times if times is not None else np.arange(len(points), dtype=float)
    reach = np.minimum(half, np.minimum(stamp - stamp[0], stamp[-1] - stamp))
    lo = np.searchsorted(stamp, stamp - reach, side="left")
    hi = np.searchsorted(stamp, stamp + reach, side="right")
    sums = np.vstack([np.zeros((1, 2)), np.cumsum(points, axis=0)])
    return (sums[hi] - sums[lo]) / (hi - lo)[:, None]


def pace(points: np.ndarray, times: np.ndarray) -> float:
    """How fast the track moves (m/s): the median straight-line distance covered in a minute (or the track's
    whole span, when shorter), which the GPS error barely inflates at a minute's distance."""
    span = min(60.0, float(times[-1] - times[0]))
    if span <= 0:
        return 0.0
    later = np.searchsorted(times, times + span, side="left")
    ok = later < len(times)
    if not ok.any():
        return float(np.hypot(*(points[-1] - points[0])) / span)
    moved = np.hypot(*(points[later[ok]] - points[ok]).T) / (times[later[ok]] - times[ok])
    return float(np.median(moved))


def spaced(points: np.ndarray, spacing_m: float) -> np.ndarray:
    """Indices of the points at least ``spacing_m`` from the last one kept (the first and the last always), and of
    each turn's tip: where the points left out went on beyond the last one kept and came back (a walk into a lane
    and back), the one farthest from the next point kept is kept too when it lies at least ``spacing_m / 2``
    farther from it than the last one kept: without it the track would seem to turn back up to ``spacing_m``
    short of where it did."""
    xs, ys = points[:, 0].tolist(), points[:, 1].tolist()
    kept = [0]
    lx, ly = xs[0], ys[0]
    skipped: list[int] = []
    n = len(xs)
    for i in range(1, n):
        d = math.hypot(xs[i] - lx, ys[i] - ly)
        if d >= spacing_m or i == n - 1:
            if skipped:
                away = [math.hypot(xs[i] - xs[j], ys[i] - ys[j]) for j in skipped]
                far = max(range(len(skipped)), key=away.__getitem__)
                if away[far] >= d + spacing_m / 2:
                    kept.append(skipped[far])
            kept.append(i)
            lx, ly = xs[i], ys[i]
            skipped = []
        else:
            skipped.append(i)
    return np.array(kept, dtype=int)


def tip_cut(half: float, speed: float) -> float:
    """How far back the smoothing (a mean over ``half`` seconds either side) pulls the tip of a turn made at
    ``speed`` m/s: the mean of the distances back from the tip, ``speed × |t|`` for t within the window, that is
    ``speed × h(h+1)/(2h+1)`` over whole seconds (about ``speed × half / 2``)."""
    h = math.floor(half)
    return speed * h * (h + 1) / (2 * h + 1) if h > 0 else 0.0


def smoothing_for(sigma: float, speed: float = 1.3) -> tuple[float, float]:
    """The smoothing window's half-width (seconds) for a GPS error σ and a pace (m/s), and the error left after
    it: enough points averaged to bring σ to about :data:`SMOOTHED_SIGMA_M`, but a window no wider than a walk of
    :data:`CORNER_M` either side (at most :data:`MAX_SMOOTHING_S`): a wider one would cut corners (an e-bike's
    track is smoothed less than a walker's, a track recorded from a car hardly at all)."""
    wanted = max(0, math.ceil(((sigma / SMOOTHED_SIGMA_M) ** 2 - 1) / 2))
    half = float(min(MAX_SMOOTHING_S, wanted, math.floor(CORNER_M / max(speed, 0.1))))
    return half, max(MIN_SMOOTHED_M, sigma / math.sqrt(2 * half + 1))


def match_track(streets: Sequence[tuple[Street, LineString]], points: np.ndarray, times: np.ndarray | None = None,
                *, sigma_m: float | None = None) -> Matched:
    """Match a track (``points``: an (n, 2) array of metric x, y in walking order; ``times``: seconds, same length,
    non-decreasing, or None) to ``streets`` (each a key and its metric line). See the module's notes."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    net = matcher_for(streets)
    if times is not None:
        times = np.asarray(times, dtype=float)
        if len(times) != len(points) or times[-1] <= times[0] or np.median(np.diff(times)) <= 0:
            times = None  # times that do not advance (a file with one time for every point) say nothing
    sigma = float(sigma_m) if sigma_m is not None else estimate_sigma(points, times, net.lines)
    keep = drop_jumps(points, times, sigma)
    jumps = int((~keep).sum())
    # without times the points' spacing is unknown (a drawn line, a route's vertices): no smoothing
    tip = 0.0
    if times is not None:
        speed = pace(points[keep], times[keep])
        half, error = smoothing_for(sigma, speed)
        smoothed = smooth(points[keep], times[keep], half)
        tip = tip_cut(half, speed)
    else:
        error, smoothed = sigma, points[keep]
    # without times a track is often a drawn line or a route's vertices, whose every corner matters
    chosen = spaced(smoothed, KEPT_APART_SIGMAS * error if times is not None else UNTIMED_SPACING_M)
    xy = smoothed[chosen]
    when = times[keep][chosen] if times is not None else None
    if len(xy) < 2:
        return Matched(covered_m={}, path=[], sigma_m=sigma, points=len(points), kept_points=len(xy),
                       unmatched_points=len(xy), jumps_dropped=jumps)
    import fastmm

    trajectory = fastmm.Trajectory.from_xy_tuples([(float(x), float(y)) for x, y in xy])
    result = net.matcher.match(trajectory, max_candidates=8, candidate_search_radius=max(50.0, 4.0 * error),
                               gps_error=EMISSION_SIGMAS * error, reverse_tolerance=REVERSE_SIGMAS * sigma)
    spans: dict[int, list[tuple[float, float]]] = {}
    path: list[LineString] = []
    matched_points = 0
    stretches = 0
    for sub in result.subtrajectories:
        if sub.error_code != fastmm.MatchErrorCode.SUCCESS or not sub.segments:
            continue
        stretches += 1
        matched_points += sub.end_index - sub.start_index + 1
        coords: list[tuple[float, float]] = []
        segments = sub.segments
        last_move: tuple[int, float, int] | None = None  # where the path credited last ended, and which way
        k = 0
        while k < len(segments):
            segment = segments[k]
            out = [e.edge_id // 2 for e in segment.edges]
            back = [e.edge_id // 2 for e in segments[k + 1].edges] if k + 1 < len(segments) else []
            if len(out) > 1 and back == out[::-1]:
                # out along other streets and straight back the same way between three points: the middle point
                # was off (a corner the smoothing cut, a jump not caught); the walk is the first and the third's
                # places on their common street
                index = out[0]
                length = float(net.lengths[index])
                a = _undirected(segment.edges[0].edge_id, segment.p0.offset_from_start_of_edge, length)
                b = _undirected(segments[k + 1].edges[-1].edge_id, segments[k + 1].p1.offset_from_start_of_edge,
                                length)
                spans.setdefault(index, []).append((min(a, b), max(a, b)))
                last_move = None  # the next step is not compared with an end before these three points
                k += 2
                continue
            if when is not None:
                # a path no one could have walked between the two points' times (at MAX_SPEED_M_S, give or take
                # the GPS error): the matcher's way round a point it placed on the wrong street (at a track's
                # ends, where the smoothing has fewer points, most often); it credits nothing
                j = sub.start_index + k
                if _path_length(segment, net.lengths) > MAX_SPEED_M_S * (when[j + 1] - when[j]) + 4.0 * sigma:
                    last_move = None
                    k += 1
                    continue
            for index, a, b in _walked_pieces(segment, net, tip):
                spans.setdefault(index, []).append((a, b))
            start, end = _moves(segment, net)
            if tip and last_move is not None and start[0] == last_move[0] and start[2] == -last_move[2]:
                # the walk turned back along a street at this point (the two points either side of it on the same
                # street, moving opposite ways): its tip lies beyond, by what the smoothing cut off
                index, at, way = last_move
                length = float(net.lengths[index])
                spans.setdefault(index, []).append((max(0.0, at - tip), at) if way < 0 else (at, min(length, at + tip)))
            last_move = end
            coords.extend((p.x, p.y) for edge in segment.edges for p in edge.points)
            k += 1
        if len(coords) >= 2:
            path.append(LineString(coords))
    covered = {net.streets[i]: union_length(s) for i, s in spans.items()}
    # a short dead end counts when the path reached its mouth: from there a patrol sees all of it, and no GPS can
    # tell a few metres' walk into it and back from standing at its mouth
    reached: set[int] = set()
    for i, s in spans.items():
        a, b = net.ends[i]
        if min(x for x, _ in s) <= END_M:
            reached.add(a)
        if max(y for _, y in s) >= float(net.lengths[i]) - END_M:
            reached.add(b)
    for i, mouth in net.stubs.items():
        if mouth in reached and i not in spans:
            covered[net.streets[i]] = float(net.lengths[i])
    # a link of a few metres between two junctions the path reached both of: the GPS cannot tell which way round
    # the walker crossed from one to the other, and the matcher often takes the other way
    for i in net.links:
        a, b = net.ends[i]
        if a in reached and b in reached:
            covered[net.streets[i]] = float(net.lengths[i])
    return Matched(covered_m=covered, path=path, sigma_m=sigma, points=len(points), kept_points=len(xy),
                   unmatched_points=len(xy) - matched_points, jumps_dropped=jumps, stretches=stretches)


def metric_streets(graph: Any, polygon: Any) -> tuple[dict[tuple[int, int, int], LineString],
                                                    dict[Any, tuple[float, float]], str]:
    """A grid's walk network (osmnx MultiGraph, WGS-84) in metres: each street by its stored key
    ``(least(u, v), greatest(u, v), key)`` with its line, each node's x, y, and the metric CRS (the UTM zone of the
    grid's centre) they are in."""
    import geopandas as gpd

    from gis.geo.crs import WGS84, utm_crs_for

    crs = utm_crs_for(polygon.centroid.x, polygon.centroid.y)
    keys = list(graph.edges(keys=True))
    lines = gpd.GeoSeries([graph.edges[e]["geometry"] for e in keys], crs=WGS84).to_crs(crs)
    streets = {(min(int(u), int(v)), max(int(u), int(v)), int(k)): line
               for (u, v, k), line in zip(keys, lines, strict=True)}
    ids = list(graph.nodes)
    points = gpd.points_from_xy([graph.nodes[n]["x"] for n in ids], [graph.nodes[n]["y"] for n in ids], crs=WGS84)
    projected = gpd.GeoSeries(points, crs=WGS84).to_crs(crs)
    nodes = {n: (float(p.x), float(p.y)) for n, p in zip(ids, projected, strict=True)}
    return streets, nodes, str(crs)


def _walked_pieces(segment: Any, net: _Network, tip_m: float = 0.0) -> list[tuple[int, float, float]]:
    """What the path from one kept point to the next walked: (street index, from, to) in the street's own offsets.
    From the first point's place on its street to that street's end, whole streets between, the last street's
    start to the next point's place.

    A turn back within the street (the path goes to a street's end and straight back along it) is the matcher's
    way of saying the walker moved backwards along it: the network is directed and a backward step between two
    points otherwise has no path. Such a pair is taken as the walk between the two places it joins (a few metres),
    not as the whole street twice: between two points a few metres apart no one walked to the end and back. Unless the
    end is a dead end's: there, turning back is what a walker does. The turn's tip is taken ``tip_m`` beyond the
    farther of the two places (up to the street's end): the smoothing pulls a turn's tip back by about that much
    (:func:`tip_cut`)."""
    lengths = net.lengths
    edges = segment.edges
    first, last = segment.p0.offset_from_start_of_edge, segment.p1.offset_from_start_of_edge
    directed: list[tuple[int, float, float]] = []  # (edge id, from, to) along the edge's own direction
    for k, edge in enumerate(edges):
        length = float(lengths[edge.edge_id // 2])
        directed.append((edge.edge_id, first if k == 0 else 0.0, last if k == len(edges) - 1 else length))
    if len(directed) > 1 and directed[0][0] // 2 == directed[-1][0] // 2:
        # the path leaves a street and comes back to it between two points a few metres apart: a turn, or a loop
        # round a block, that no walker made; the walk is from the one place to the other along the street.
        # Unless it is the walk to a dead end's end and back.
        index = directed[0][0] // 2
        length = float(lengths[index])
        turn = net.ends[index][0 if directed[0][0] % 2 else 1]
        straight_back = len(directed) == 2 and directed[1][0] == directed[0][0] ^ 1
        if not (straight_back and net.degree[turn] == 1):
            a = _undirected(directed[0][0], first, length)
            b = _undirected(directed[-1][0], last, length)
            lo, hi = min(a, b), max(a, b)
            if straight_back:  # a turn back along the street: its tip lies beyond, by what the smoothing cut off
                if directed[0][0] % 2 == 0:
                    hi = min(length, hi + tip_m)
                else:
                    lo = max(0.0, lo - tip_m)
            return [(index, lo, hi)] if hi > lo else []
    pieces: list[tuple[int, float, float]] = []
    k = 0
    while k < len(directed):
        edge_id, a, b = directed[k]
        index = edge_id // 2
        length = float(lengths[index])
        turn = net.ends[index][0 if edge_id % 2 else 1]  # the node at the end of this edge's direction
        if k + 1 < len(directed) and directed[k + 1][0] == edge_id ^ 1 and net.degree[turn] > 1:
            # to the end and back, not at a dead end: from a to the place of the return, and the tip the smoothing
            # cut off beyond the farther of the two
            back = length - directed[k + 1][2]
            a, b = min(a, back), min(length, max(a, back) + tip_m)
            k += 1
        if edge_id % 2:  # the street walked against its drawn direction
            a, b = length - a, length - b
        lo, hi = max(0.0, min(a, b)), min(length, max(a, b))
        if hi > lo:
            pieces.append((index, lo, hi))
        k += 1
    return pieces


def _moves(segment: Any, net: _Network) -> tuple[tuple[int, float, int], tuple[int, float, int]]:
    """Where the path from one kept point to the next starts and ends: (street index, offset along the street's
    drawn direction, +1 or −1: which way along it the path moves there)."""
    edges = segment.edges
    first, last = edges[0].edge_id, edges[-1].edge_id
    p0, p1 = segment.p0.offset_from_start_of_edge, segment.p1.offset_from_start_of_edge

    def way(edge_id: int, forward: bool) -> int:
        along = 1 if forward else -1  # along the edge's own direction, or against it (a step back on one street)
        return along if edge_id % 2 == 0 else -along

    forward = len(edges) > 1 or p1 >= p0
    start = (first // 2, _undirected(first, p0, float(net.lengths[first // 2])), way(first, forward))
    end = (last // 2, _undirected(last, p1, float(net.lengths[last // 2])), way(last, forward))
    return start, end


def _path_length(segment: Any, lengths: np.ndarray) -> float:
    """The length of the path from one kept point to the next."""
    edges = segment.edges
    if not edges:
        return 0.0
    if len(edges) == 1:
        return abs(segment.p1.offset_from_start_of_edge - segment.p0.offset_from_start_of_edge)
    whole = sum(float(lengths[e.edge_id // 2]) for e in edges)
    return whole - segment.p0.offset_from_start_of_edge - (float(lengths[edges[-1].edge_id // 2])
                                                           - segment.p1.offset_from_start_of_edge)


def _undirected(edge_id: int, offset: float, length: float) -> float:
    """An offset along a directed edge as an offset along its street's drawn direction."""
    return min(length, max(0.0, length - offset if edge_id % 2 else offset))


def union_length(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -np.inf
    for a, b in sorted(spans):
        if b <= reach:
            continue
        total += b - max(a, reach)
        reach = b
    return float(total)


def buffer_walked(track: LineString, streets: Sequence[tuple[Street, LineString]], tolerance_m: float,
                  share: float = WALKED_SHARE) -> list[Street]:
    """The buffer test: the streets at least ``share`` of whose length lies within ``tolerance_m`` of the track.

    The track is buffered :data:`BUFFER_PIECE_POINTS` segments at a time and the pieces' buffers joined: the same
    area as the whole track's buffer, but GEOS buffers a long noisy track, which crosses itself at every step, some
    25 times slower (a walk of 5,000 points: seconds, against a tenth of a second)."""
    if not streets:
        return []
    coords = np.asarray(track.coords)
    pieces = [LineString(coords[i:i + BUFFER_PIECE_POINTS + 1]) for i in range(0, len(coords) - 1, BUFFER_PIECE_POINTS)]
    near = shapely.union_all(shapely.buffer(pieces, tolerance_m))
    lines = np.array([line for _, line in streets], dtype=object)
    lengths = shapely.length(lines)
    inside = shapely.length(shapely.intersection(lines, near))
    return [key for (key, _), a, b in zip(streets, inside, lengths, strict=True) if b > 0 and a >= share * b]
