"""Shared basic patrol benchmark (issue 25, first part): every grid of the divided Nanjing demo and of Liechtenstein,
its basic patrol shared among k = 2, 3 and 4 members, against a lower bound and against OR-Tools in the same run.

    make bench      # or: .venv/bin/python bench/split_bench.py [--reuse] [--ortools-grids 3] [--ortools-s 30]
                    #     [--exact-grids 3] [--exact-s 60]

1. Per city and k: the split's time per grid (median, worst; the grid's network loaded beforehand, as the API has it)
   and the longest part against the lower bound (max of the single optimal route ÷ k and the longest single
   street's round trip from the base; for a grid whose streets fall into pieces, CP-SAT's proven bound on one
   member's walk ÷ k, given ``--bound-s`` seconds, or with 0 the streets' length ÷ k; and the pigeonhole's pairs,
   which the split's own bound has): median, worst (and its grid), and the share of grids within 10 % of it.
2. OR-Tools' routing solver on the arc-to-node transformation (each street a pair of nodes, one per direction, of
   which a route visits one; k vehicles from the base; the longest route minimised through the distance
   dimension's global span), given ``--ortools-s`` seconds, on the ``--ortools-grids`` grids of each city with
   the most streets: the longest part of each.
3. The rural postman: every grid whose streets fall into pieces, solved by CP-SAT (``gis.patrol.rural``) within
   ``--rural-s`` seconds against today's heuristic (Frederickson's): the share solved to optimality, the worst gap,
   the time, and how much shorter the routes got.
4. Split or bound? With ``--exact-grids N``: per city and k, the N smallest grids whose split is more than 10 %
   above its bound, solved by an exact integer model of the min-max problem itself (:func:`exact_min_max`, CP-SAT
   warm-started from the split, ``--exact-s`` seconds each; lengths in decimetres, so its metres are good to a few
   centimetres a street): how far the split is from the optimum, and how far the bound.
Targets (issue 25): the split under 1 s per grid; the longest part within 10 % of the lower bound on the median
grid. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import bench_database, city_id_of, machine  # noqa: E402
from sqlalchemy import text  # noqa: E402

from gis.db.engine import make_engine  # noqa: E402
from gis.errors import InputError  # noqa: E402
from gis.patrol.route import basic_route  # noqa: E402
from gis.patrol.rural import solve_rural  # noqa: E402
from gis.patrol.split import split_route  # noqa: E402
from gis.patrol.store.plans import MARGIN_M, _network_and_base  # noqa: E402

NANJING = ROOT / "data" / "nanjing-xinjiekou.osm"
LIECHTENSTEIN = ROOT / "data" / "liechtenstein-2024-03-03.osm.pbf"
KS = (2, 3, 4)
TARGET_S, TARGET_RATIO = 1.0, 1.10


def ortools_longest(graph: nx.MultiGraph, required: list[Any], base: Any, k: int, seconds: float) -> float | None:
    """The longest of k routes by OR-Tools on the arc-to-node transformation (metres), or None without a solution."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    reach = nx.node_connected_component(graph, base)  # the streets the base reaches (the split's too)
    edges = [(u, v, graph.edges[u, v, key]["length"]) for u, v, key in required if u in reach]
    ends = {base} | {n for u, v, _ in edges for n in (u, v)}
    dist = {n: nx.single_source_dijkstra_path_length(graph, n, weight="length") for n in ends}
    arcs = [(u, v, m) for u, v, m in edges] + [(v, u, m) for u, v, m in edges]  # node i+1: arc i
    n = len(arcs) + 1
    scale = 10  # decimetres: the solver takes integers

    def cost(i: int, j: int) -> int:
        if j == 0:
            return 0 if i == 0 else round(dist[arcs[i - 1][1]][base] * scale)
        a, _, metres = arcs[j - 1]
        here = base if i == 0 else arcs[i - 1][1]
        return round((dist[here].get(a, 1e9) + metres) * scale)
    matrix = [[cost(i, j) for j in range(n)] for i in range(n)]
    manager = pywrapcp.RoutingIndexManager(n, k, 0)
    routing = pywrapcp.RoutingModel(manager)
    transit = routing.RegisterTransitCallback(
        lambda a, b: matrix[manager.IndexToNode(a)][manager.IndexToNode(b)])
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    routing.AddDimension(transit, 0, 10**9, True, "walk")
    routing.GetDimensionOrDie("walk").SetGlobalSpanCostCoefficient(100)
    half = len(edges)
    for i in range(half):  # each street walked in one direction or the other, by one route
        routing.AddDisjunction([manager.NodeToIndex(1 + i), manager.NodeToIndex(1 + half + i)], 10**8, 1)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromSeconds(int(seconds))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        return None
    longest = 0.0
    for vehicle in range(k):
        index, total = routing.Start(vehicle), 0
        while not routing.IsEnd(index):
            nxt = solution.Value(routing.NextVar(index))
            total += matrix[manager.IndexToNode(index)][manager.IndexToNode(nxt)]
            index = nxt
        longest = max(longest, total / scale)
    return longest


def bench_rural(networks: list[Any], seconds: float) -> None:
    rural = [(code, g, r, b) for code, g, r, b in networks if not basic_route(g, r, b).optimal]
    if not rural:
        print("   rural postman: no grid's streets fall into pieces", flush=True)
        return
    times, gaps, gains, optimal = [], [], [], 0
    for _code, graph, required, base in rural:
        heuristic = basic_route(graph, required, base)
        solved = solve_rural(graph, required, base, time_limit_s=seconds)
        times.append(solved.seconds)
        gaps.append(solved.gap)
        gains.append(1 - solved.route.length_m / heuristic.length_m)
        optimal += solved.route.optimal
    print(f"   rural postman, {len(rural)} grids in pieces, CP-SAT within {seconds:g} s: {optimal} solved to "
          f"optimality ({optimal / len(rural):.0%}), worst gap {max(gaps):.1%}; time median "
          f"{statistics.median(times):.2f} s, worst {max(times):.2f} s; shorter than the heuristic by "
          f"{statistics.median(gains):.1%} on the median grid, {max(gains):.1%} at most", flush=True)


def tour_bounds(networks: list[Any], seconds: float) -> tuple[dict[str, float], int]:
    """Each grid's proven lower bound on one member's shortest walk: the optimal route's length, or, where the
    streets fall into pieces (the heuristic's route is not proven optimal), CP-SAT's bound within ``seconds``. k
    walks from one base, joined at the base, are one walk: the longest is at least a k-th of this bound. Also how
    many grids are in pieces."""
    bounds, pieces = {}, 0
    for code, graph, required, base in networks:
        tour = basic_route(graph, required, base)
        if tour.optimal:
            bounds[code] = tour.length_m
            continue
        pieces += 1
        if seconds > 0:
            bounds[code] = solve_rural(graph, required, base, time_limit_s=seconds, heuristic=tour).lower_bound_m
    return bounds, pieces


def exact_min_max(graph: nx.MultiGraph, required: list[Any], base: Any, k: int, seconds: float,
                  hint: Any = None) -> tuple[float, float, str]:
    """The min-max k-walk problem itself as an integer model for CP-SAT: the longest walk (metres) of the best
    split found, CP-SAT's proven lower bound on it, and the status (OPTIMAL: the two are equal). For each walk i
    and street e: ``x[i,e]`` ∈ {0, 1, 2} times walked (no street is walked more than twice by one walk that is
    shortest), ``s[i,e]`` ∈ {0, 1} whether walk i is the one that walks required street e (exactly one does, and
    walks it); at every node each walk's streets pair up (parity); a flow from the base to each street a walk
    serves, over the streets that walk walks, keeps each walk in one piece with the base; the longest walk is
    minimised (decimetres), the walks ordered by length (they are interchangeable). ``hint``: a split to start
    from. For the benchmark only: exact on small grids within a minute, not at grid size within a second."""
    from ortools.sat.python import cp_model

    reach = nx.node_connected_component(graph, base)
    sub = graph.subgraph(reach)
    edges = [(u, v, key) for u, v, key in sub.edges(keys=True) if u != v]
    index = {frozenset((u, v)) | {("key", key)}: i for i, (u, v, key) in enumerate(edges)}

    def at(u: Any, v: Any, key: int) -> int:
        return index[frozenset((u, v)) | {("key", key)}]
    wanted = sorted({at(u, v, key) for u, v, key in required if u in reach and u != v})
    length = [max(1, round(float(graph.edges[e]["length"]) * 10)) for e in edges]
    model = cp_model.CpModel()
    x = [[model.new_int_var(0, 2, f"x{i}_{e}") for e in range(len(edges))] for i in range(k)]
    s = [{e: model.new_bool_var(f"s{i}_{e}") for e in wanted} for i in range(k)]
    for e in wanted:
        model.add_exactly_one(s[i][e] for i in range(k))
    incident: dict[Any, list[int]] = {n: [] for n in sub.nodes}
    for e, (u, v, _) in enumerate(edges):
        incident[u].append(e)
        incident[v].append(e)
    walks = []
    for i in range(k):
        for e in wanted:
            model.add(x[i][e] >= s[i][e])
        for n, around in incident.items():
            if around:
                model.add(sum(x[i][e] for e in around) == 2 * model.new_int_var(0, len(around), f"y{i}_{n}"))
        served = sum(s[i].values())
        flow = {}
        for e in range(len(edges)):
            there, back = model.new_int_var(0, len(wanted), ""), model.new_int_var(0, len(wanted), "")
            model.add(there + back <= len(wanted) * x[i][e])
            flow[e] = (there, back)
        for n, around in incident.items():
            out = sum(flow[e][0] if edges[e][0] == n else flow[e][1] for e in around)
            into = sum(flow[e][1] if edges[e][0] == n else flow[e][0] for e in around)
            demand = sum(s[i][e] for e in wanted if edges[e][0] == n)
            model.add(out - into == (served if n == base else 0) - demand)
        walk = model.new_int_var(0, 2 * sum(length), f"walk{i}")
        model.add(walk == sum(length[e] * x[i][e] for e in range(len(edges))))
        walks.append(walk)
    longest = model.new_int_var(0, 2 * sum(length), "longest")
    model.add_max_equality(longest, walks)
    for a, b in itertools.pairwise(walks):
        model.add(a >= b)
    model.minimize(longest)
    if hint is not None:
        order = sorted(range(k), key=lambda p: -hint.parts[p].length_m)
        for i, p in enumerate(order):
            counts: dict[int, int] = {}
            for a, b, key, _ in hint.parts[p].steps:
                if a != b:
                    counts[at(a, b, key)] = counts.get(at(a, b, key), 0) + 1
            for e in range(len(edges)):
                model.add_hint(x[i][e], min(2, counts.get(e, 0)))
            mine = {at(*street) for street in hint.edges[p]}
            for e in wanted:
                model.add_hint(s[i][e], e in mine)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return float("inf"), solver.best_objective_bound / 10, solver.status_name(status)
    return solver.objective_value / 10, solver.best_objective_bound / 10, solver.status_name(status)


def bench_exact(networks: list[Any], results: dict[tuple[str, int], Any], grids: int, seconds: float) -> None:
    """Split or bound? For each k, the ``grids`` smallest grids whose split is more than 10 % above its bound,
    solved by the exact model (:func:`exact_min_max`, warm-started from the split) within ``seconds``: the split
    and the bound each against the optimum (or CP-SAT's best walk and bound, where it ran out of time)."""
    by_code = {code: (graph, required, base) for code, graph, required, base in networks}
    for k in KS:
        over = sorted((code for (code, kk), (split, bound) in results.items()
                       if kk == k and split.longest_m > TARGET_RATIO * bound), key=lambda c: len(by_code[c][1]))
        for code in over[:grids]:
            split, bound = results[code, k]
            graph, required, base = by_code[code]
            best, proven, status = exact_min_max(graph, required, base, k, seconds, hint=split)
            print(f"   exact min-max, grid {code} ({len(required)} streets), k={k}: {status}, longest walk "
                  f"{best:,.0f} m, proven ≥ {proven:,.0f} m; the split {split.longest_m:,.0f} m "
                  f"({split.longest_m / proven:.3f} × the proven bound), the split's bound {bound:,.0f} m "
                  f"({bound / proven:.3f} × it)", flush=True)


def bench_city(engine: Any, city_id: int, name: str, ortools_grids: int, ortools_s: float,
               rural_s: float, bound_s: float = 0.0, exact_grids: int = 0, exact_s: float = 60.0) -> None:
    with engine.connect() as conn:
        codes = [r[0] for r in conn.execute(text(
            "SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = :c "
            "ORDER BY g.code"), {"c": city_id})]
    networks = []
    for code in codes:
        try:
            net, base, _ = _network_and_base(engine, code, None, MARGIN_M)
        except InputError:  # a grid with no street: nothing to patrol
            continue
        networks.append((code, net["graph"], net["required"], base))
    print(f"   {name}: {len(networks)} grids with streets to patrol (of {len(codes)})", flush=True)
    bounds, pieces = tour_bounds(networks, bound_s)
    if bound_s > 0:
        print(f"   lower bounds: {pieces} grid(s) in pieces bounded by CP-SAT within {bound_s:g} s each "
              "(else the required length ÷ k)", flush=True)
    results: dict[tuple[str, int], Any] = {}
    for k in KS:
        times, ratios, over_single, refused, worst = [], [], [], 0, ("", 0.0)
        for code, graph, required, base in networks:
            started = time.perf_counter()
            try:
                split = split_route(graph, required, base, k)
            except InputError:  # fewer streets than members
                refused += 1
                continue
            times.append(time.perf_counter() - started)
            bound = max(split.lower_bound_m, bounds.get(code, 0.0) / k)
            ratios.append(split.longest_m / bound if bound else 1.0)
            results[code, k] = (split, bound)
            worst = max(worst, (code, ratios[-1]), key=lambda w: w[1])
            over_single.append(split.longest_m / split.tour.length_m)
        within = np.mean(np.array(ratios) <= TARGET_RATIO)
        verdict = "met" if max(times) < TARGET_S and statistics.median(ratios) <= TARGET_RATIO else "MISSED"
        print(f"   k={k}: time median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms; "
              f"longest ÷ lower bound median {statistics.median(ratios):.3f}, worst {max(ratios):.3f} "
              f"(grid {worst[0]}), "
              f"{within:.0%} of grids within 10 %; longest ÷ one member's route median "
              f"{statistics.median(over_single):.3f}"
              + (f"; {refused} grid(s) with fewer than {k} streets refused" if refused else "")
              + f"  [targets: {verdict}]", flush=True)
    if exact_grids > 0:
        bench_exact(networks, results, exact_grids, exact_s)
    if rural_s > 0:
        bench_rural(networks, rural_s)
    biggest = sorted(networks, key=lambda n: -len(n[2]))[:ortools_grids]
    for code, graph, required, base in biggest:
        for k in KS:
            split = split_route(graph, required, base, k)
            started = time.perf_counter()
            reference = ortools_longest(graph, required, base, k, ortools_s)
            spent = time.perf_counter() - started
            if reference is None:
                print(f"   OR-Tools, grid {code} ({len(required)} streets), k={k}: no solution in {spent:.0f} s")
                continue
            print(f"   OR-Tools, grid {code} ({len(required)} streets), k={k}: longest {reference:,.0f} m in "
                  f"{spent:.0f} s; the split {split.longest_m:,.0f} m in {split.seconds:.2f} s "
                  f"(ratio {split.longest_m / reference:.3f}); lower bound {split.lower_bound_m:,.0f} m", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep the imported, divided cities of an earlier run")
    parser.add_argument("--ortools-grids", type=int, default=3, help="grids per city solved by OR-Tools too (0: none)")
    parser.add_argument("--ortools-s", type=float, default=30.0, help="OR-Tools' search time per grid and k")
    parser.add_argument("--rural-s", type=float, default=10.0, help="CP-SAT's time per rural grid (0: skip the "
                        "rural postman's part)")
    parser.add_argument("--bound-s", type=float, default=2.0, help="CP-SAT's time per grid in pieces for the lower "
                        "bound on one member's walk (0: the required length ÷ k there)")
    parser.add_argument("--exact-grids", type=int, default=0, help="per city and k, the smallest grids more than "
                        "10 %% above their bound solved by the exact min-max model (0: none)")
    parser.add_argument("--exact-s", type=float, default=60.0, help="the exact model's time per grid and k")
    parser.add_argument("--skip-liechtenstein", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with bench_database("gridpatrol_split_bench", reuse=args.reuse) as url:
        engine = make_engine(url)
        print("1-2. Nanjing (the demo's division)", flush=True)
        bench_city(engine, city_id_of(engine, NANJING, "nanjing"), "Nanjing", args.ortools_grids, args.ortools_s,
                   args.rural_s, args.bound_s, args.exact_grids, args.exact_s)
        if not args.skip_liechtenstein:
            print("1-2. Liechtenstein", flush=True)
            bench_city(engine, city_id_of(engine, LIECHTENSTEIN, "liechtenstein"), "Liechtenstein",
                       args.ortools_grids, args.ortools_s, args.rural_s, args.bound_s, args.exact_grids,
                       args.exact_s)
        engine.dispose()


if __name__ == "__main__":
    main()
