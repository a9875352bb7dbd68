"""Patrol benchmark: basic routes (the postman) and inspection tours on the Nanjing demo, against references measured
in the same run.

    make bench      # or: .venv/bin/python bench/patrol_bench.py [--reuse] [--reference-s 30]

1. The whole walk network of the Nanjing extract, every street required: the route's T-join by PyMatching's sparse
   blossom on the street graph against the textbook exact method (networkx's blossom matching on the complete
   graph of shortest paths between odd nodes), postman_problems' ``cpp`` and pgRouting's ``pgr_chinesePostman``
   (bench/postman_references.py). Lengths, times and their ratios.
2. Every grid of the divided Nanjing demo (the API's networks: the grid plus a 60 m margin): both methods, lengths
   equal on every grid, planning times (median, worst); postman_problems' ``rpp`` on every grid where it applies
   (the grid's streets in one piece with the base); pgRouting on each grid's own streets (it has no optional
   streets, so gridpatrol is measured on the same streets alone for that comparison).
3. A 300-stop building tour on the whole walk network: gridpatrol's default (fast-tsp's local search for 0.25 s,
   distances included) against OR-Tools' routing solver (cheapest arc, then guided local search) given 30 s.
4. Every grid of Liechtenstein (imported and divided once into the benchmark's database): as 2.
5. The whole coverage report of Liechtenstein (every grid; response circles from police stations and bases).
Targets (issue 5): routes optimal (equal to the exact reference), under 100 ms for the whole network and any grid;
the tour within 1 % of the 30 s reference in under 1 s; the coverage report of Liechtenstein under 30 s. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdb import bench_database, city_id_of  # noqa: E402
from postman_references import pgr_chinese_postman, pgrouting_ready, postman_problems_length  # noqa: E402

from gis.db.engine import make_engine  # noqa: E402
from gis.errors import InputError  # noqa: E402
from gis.geo.network import graph_from_extract  # noqa: E402
from gis.geo.osm import read_osm  # noqa: E402
from gis.patrol.inspection import _solve, distance_matrix, plan_inspection  # noqa: E402
from gis.patrol.route import basic_route  # noqa: E402
from gis.patrol.store.coverage import coverage_report  # noqa: E402
from gis.patrol.store.plans import MARGIN_M, _network_and_base  # noqa: E402

NANJING = ROOT / "data" / "nanjing-xinjiekou.osm"
LIECHTENSTEIN = ROOT / "data" / "liechtenstein-2024-03-03.osm.pbf"
TARGET_MS, TARGET_TOUR_GAP, TARGET_TOUR_S, TARGET_COVERAGE_S = 100.0, 0.01, 1.0, 30.0


def timed(fn, *args, repeat: int = 1, **kwargs):  # type: ignore[no-untyped-def]
    """(the result, the median seconds of ``repeat`` runs)."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def whole_network() -> nx.MultiGraph:
    graph = nx.MultiGraph(graph_from_extract(read_osm(NANJING), "walk").to_undirected())
    graph.remove_edges_from([(u, v, k) for u, v, k in graph.edges(keys=True) if u == v])
    return graph.subgraph(max(nx.connected_components(graph), key=len)).copy()


def bench_whole(graph: nx.MultiGraph, engine) -> None:  # type: ignore[no-untyped-def]
    required = list(graph.edges(keys=True))
    base = min(graph.nodes, key=str)
    odd = sum(1 for _, d in graph.degree() if d % 2)
    print(f"\n1. whole Nanjing walk network: {len(required):,} street segments, {graph.number_of_nodes():,} nodes, "
          f"{odd:,} odd", flush=True)
    fast, fast_s = timed(basic_route, graph, required, base, repeat=5)
    ref, ref_s = timed(basic_route, graph, required, base, t_join="networkx")
    pp_m, pp_s = timed(postman_problems_length, graph, required, base)
    print(f"   reference: networkx matching on shortest paths   {ref.length_m:>12,.1f} m {ref_s * 1000:>10,.0f} ms")
    print(f"   reference: postman_problems cpp                  {pp_m:>12,.1f} m {pp_s * 1000:>10,.0f} ms")
    if pgrouting_ready(engine):
        (pgr_m, pgr_walked), pgr_s = timed(pgr_chinese_postman, engine, graph)
        print(f"   reference: pgRouting pgr_chinesePostman           {pgr_m:>12,.1f} m {pgr_s * 1000:>10,.0f} ms  "
              f"({pgr_m / ref.length_m:.2f}x the optimum; {len(required) - pgr_walked} segments never walked)")
    else:
        print("   (pgRouting is not installed: make bench installs postgresql-15-pgrouting)")
    print(f"   gridpatrol: PyMatching sparse blossom            {fast.length_m:>12,.1f} m {fast_s * 1000:>10,.1f} ms")
    print(f"   equal length: {abs(fast.length_m - ref.length_m) < 1e-6} (postman_problems: "
          f"{abs(pp_m - ref.length_m) < 1e-6}); {ref_s / fast_s:,.0f}x faster than networkx, "
          f"{pp_s / fast_s:,.0f}x than postman_problems; vs target {TARGET_MS:.0f} ms: "
          f"{fast_s * 1000 / TARGET_MS:.2f}x")


def bench_grids(engine, city_id: int, name: str, number: str) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        codes = [r[0] for r in conn.execute(text(
            "SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = :c "
            "ORDER BY g.code"), {"c": city_id})]
    pgr = pgrouting_ready(engine)
    fast_times, ref_times, pp_times, equal, optimal, skipped = [], [], [], 0, 0, 0
    pp_equal, pgr_ratios, pgr_missed, pgr_grids, pgr_times, own_times = 0, [], 0, 0, [], []
    for code in codes:
        try:
            net, base, _ = _network_and_base(engine, code, None, MARGIN_M)
        except InputError:  # a grid with no street: nothing to patrol (the API says so)
            skipped += 1
            continue
        graph, required = net["graph"], net["required"]
        fast, fast_s = timed(basic_route, graph, required, base, repeat=3)
        ref, ref_s = timed(basic_route, graph, required, base, t_join="networkx")
        fast_times.append(fast_s)
        ref_times.append(ref_s)
        equal += abs(fast.length_m - ref.length_m) < 1e-6
        optimal += fast.optimal
        if fast.optimal and not fast.unreachable:  # rpp's condition: the required streets are one piece
            pp_m, pp_s = timed(postman_problems_length, graph, required, base)
            pp_times.append(pp_s)
            pp_equal += abs(pp_m - ref.length_m) < 1e-3
        own = nx.MultiGraph(graph.edge_subgraph(required))
        if pgr and nx.is_connected(own) and base in own:
            own_route, own_s = timed(basic_route, own, list(own.edges(keys=True)), base, repeat=3)
            (pgr_m, pgr_walked), pgr_s = timed(pgr_chinese_postman, engine, own)
            pgr_grids += 1
            pgr_ratios.append(pgr_m / own_route.length_m)
            pgr_missed += own.number_of_edges() - pgr_walked
            pgr_times.append(pgr_s)
            own_times.append(own_s)
    n = len(fast_times)
    print(f"\n{number}. every grid of {name}: {n} routed ({skipped} without streets), {optimal} optimal "
          "(one piece with the base), the others joined by the rural-postman heuristic")
    print(f"   reference: networkx matching     median {statistics.median(ref_times) * 1000:7.1f} ms, worst "
          f"{max(ref_times) * 1000:8.1f} ms")
    if pp_times:
        print(f"   reference: postman_problems rpp  median {statistics.median(pp_times) * 1000:7.1f} ms, worst "
              f"{max(pp_times) * 1000:8.1f} ms; equal lengths on {pp_equal}/{len(pp_times)} grids where it applies")
    print(f"   gridpatrol: PyMatching           median {statistics.median(fast_times) * 1000:7.1f} ms, worst "
          f"{max(fast_times) * 1000:8.1f} ms")
    print(f"   equal lengths on {equal}/{n} grids; worst vs target {TARGET_MS:.0f} ms: "
          f"{max(fast_times) * 1000 / TARGET_MS:.2f}x")
    if pgr_grids:
        print(f"   on each grid's own streets alone ({pgr_grids} grids where they are one piece with the base): "
              f"pgr_chinesePostman median {statistics.median(pgr_times) * 1000:.1f} ms, routes "
              f"{statistics.median(pgr_ratios):.2f}x gridpatrol's (median; worst {max(pgr_ratios):.2f}x), "
              f"{pgr_missed} segments never walked; gridpatrol median {statistics.median(own_times) * 1000:.1f} ms")


def bench_tour(graph: nx.MultiGraph, stops: int, reference_s: float) -> None:
    rng = random.Random(5)
    nodes = sorted(graph.nodes, key=str)
    base = nodes[0]
    buildings = dict(enumerate(rng.sample(nodes[1:], stops)))
    print(f"\n3. a {stops}-stop building tour on the whole walk network, one shift", flush=True)
    nodes_ = [base, *sorted(set(buildings.values()), key=str)]
    distance = distance_matrix(graph, nodes_)
    zero = [[0] * len(nodes_) for _ in nodes_]
    order, ref_s = timed(_solve, distance, zero, [0] * len(nodes_), 1, 1, reference_s)
    ref_m = sum(distance[a][b] for a, b in itertools.pairwise([0, *order[0], 0]))  # type: ignore[index]
    fast, fast_s = timed(plan_inspection, graph, buildings, base, shift_min=10_000, minutes_per_building=0)
    gap = fast.length_m / ref_m - 1
    print(f"   reference: OR-Tools, cheapest arc + guided local search {reference_s:.0f} s (distances given)"
          f"{ref_m:>10,.0f} m {ref_s:>8.1f} s")
    print(f"   gridpatrol: plan_inspection, defaults (distances included)       {fast.length_m:>10,.0f} m "
          f"{fast_s:>8.1f} s")
    print(f"   gap {gap:+.2%} (target within {TARGET_TOUR_GAP:.0%}); time vs target {TARGET_TOUR_S:.0f} s: "
          f"{fast_s / TARGET_TOUR_S:.2f}x")


def bench_coverage(engine, city_id: int, name: str) -> None:  # type: ignore[no-untyped-def]
    end = datetime.now(UTC)
    report, seconds = timed(coverage_report, engine, city_id, end - timedelta(days=30), end, by="grid", mode="walk")
    city = coverage_report(engine, city_id, end - timedelta(days=30), end, by="city", mode="ebike")["rows"][0]
    print(f"\n5. the whole coverage report of {name} ({len(report['rows'])} grids; walk network, response circles of "
          f"1/3/5 min from {report['police_stations']} police stations and every grid's base): {seconds:.1f} s; "
          f"vs target {TARGET_COVERAGE_S:.0f} s: {seconds / TARGET_COVERAGE_S:.2f}x")
    print(f"   by e-bike, city-wide: households within 5 min of a police station "
          f"{city['households_police_5min_share']:.0%}, of a grid base {city['households_base_5min_share']:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep the imported, divided Nanjing of an earlier run")
    parser.add_argument("--reference-s", type=float, default=30.0, help="the tour reference's search time")
    parser.add_argument("--stops", type=int, default=300)
    parser.add_argument("--skip-liechtenstein", action="store_true")
    args = parser.parse_args()
    graph = whole_network()
    with bench_database("gridpatrol_patrol_bench", reuse=args.reuse) as url:
        engine = make_engine(url)
        bench_whole(graph, engine)
        nanjing = city_id_of(engine, NANJING, "nanjing")
        bench_grids(engine, nanjing, "the Nanjing demo", "2")
        bench_tour(graph, args.stops, args.reference_s)
        if not args.skip_liechtenstein:
            liechtenstein = city_id_of(engine, LIECHTENSTEIN, "liechtenstein")
            bench_grids(engine, liechtenstein, "Liechtenstein", "4")
            bench_coverage(engine, liechtenstein, "Liechtenstein")
        engine.dispose()


if __name__ == "__main__":
    main()
