"""Patrols: ``patrol``, ``streets``, ``log-visit``, ``compliance``, ``coverage``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.settings import Settings
from gis.db.engine import reading, writing
from gis.errors import InputError
from scripts.cli.base import Subparsers, engine_for, read_file, write_csv


def cmd_patrol(args: argparse.Namespace, settings: Settings) -> int:
    from gis.patrol.gpx import to_gpx, tours_to_gpx
    from gis.patrol.inspection import DEFAULT_SHIFT_MIN
    from gis.patrol.store.plans import (
        DEFAULT_DWELL_MIN,
        plan_basic,
        plan_budgeted_round,
        plan_full_inspection,
        plan_split,
    )

    shift = DEFAULT_SHIFT_MIN if args.shift is None else args.shift
    dwell = DEFAULT_DWELL_MIN if args.dwell is None else args.dwell

    base = None
    if args.base:
        try:
            lon, lat = (float(v) for v in args.base.split(","))
        except ValueError:
            raise InputError(f"--base is lon,lat (WGS-84), e.g. 118.7838,32.0415; got {args.base!r}") from None
        base = (lon, lat)
    if sum([args.inspection, args.budget is not None, args.share is not None]) > 1:
        raise InputError("--inspection, --budget and --share are different patrols: give one")
    with engine_for(settings) as engine:
        started = time.perf_counter()
        if args.share is not None:
            plan = plan_split(engine, args.grid, args.share, base=base)
        elif args.budget is not None:
            plan = plan_budgeted_round(engine, args.grid, args.budget, base=base, dwell_min=dwell)
        elif args.inspection:
            plan = plan_full_inspection(engine, args.grid, base=base, shift_min=shift)
        else:
            plan = plan_basic(engine, args.grid, base=base, dwell_min=dwell)
        seconds = time.perf_counter() - started
    p = plan["properties"]
    if args.share is not None:
        print(f"grid {args.grid}: basic patrol shared by {p['k']}: the longest part {p['longest_m']:,.0f} m "
              f"({p['ratio_to_lower_bound']:.2f}× the lower bound of {p['lower_bound_m']:,.0f} m; one member alone "
              f"{p['single_route_m']:,.0f} m); planned in {seconds:.2f} s")
        for f in plan["features"]:
            if f["properties"]["kind"] == "tour":
                q = f["properties"]
                exact = "optimal" if q["optimal"] else (f"within {q['gap']:.1%} of its optimum"
                                                        if q["gap"] is not None else "heuristic")
                print(f"  {q['label']} ({exact})")
    elif args.budget is not None:
        share = f"{p['risk_share']:.0%}" if p["risk_share"] is not None else "nothing to cover"
        print(f"grid {args.grid}: {args.budget:g}-minute round, {p['stops']} stop(s), {p['length_m']:,.0f} m, "
              f"{p['minutes']:.0f} min; risk covered {share} ({p['risk']:g} of {p['risk_total']:g}: "
              f"{p['key_places']} key places, {p['events']} events of the last {p['events_since_days']} days); "
              f"{p['dropped']} place(s) left out; planned in {seconds:.1f} s")
        for f in plan["features"]:
            if f["properties"]["kind"] == "stop":
                print(f"  {f['properties']['seq']}. {f['properties']['label']}")
    elif args.inspection:
        print(f"grid {args.grid}: full inspection of {p['buildings']} buildings in {p['tours']} tour(s) of at most "
              f"{shift:.0f} min, {p['length_m']:,.0f} m in all; planned in {seconds:.1f} s")
        for f in plan["features"]:
            if f["properties"]["kind"] == "tour":
                t = f["properties"]
                print(f"  tour {t['tour']}: {t['stops']} stops, {t['buildings']} buildings, {t['length_m']:,.0f} m, "
                      f"{t['minutes']:.0f} min")
    else:
        print(f"grid {args.grid}: basic patrol {p['length_m']:,.0f} m, {p['minutes']:.0f} min walking + {p['stops']} "
              f"stop(s) = {p['minutes_with_stops']:.0f} min; {p['covered_edges']}/{p['required_edges']} street "
              f"segments, deadhead {p['deadhead_share']:.0%}, "
              f"{'optimal' if p['optimal'] else 'heuristic (rural postman)'}; planned in {seconds * 1000:.0f} ms"
              + (f"; {p['optional_edges']} optional segment(s) not required" if p.get("optional_edges") else ""))
    unreachable = p.get("unreachable_buildings") if args.inspection else p.get("unreachable")
    if unreachable:
        what = "building(s)" if args.inspection else "segment(s)"
        print(f"  {len(unreachable)} {what} cannot be reached from the base")
    if args.gpx:
        tours = args.inspection or args.budget is not None or args.share is not None
        Path(args.gpx).write_text((tours_to_gpx if tours else to_gpx)(plan), encoding="utf-8")
        print(f"wrote {args.gpx}")
    if args.geojson:
        Path(args.geojson).write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.geojson}")
    return 0


def cmd_streets(args: argparse.Namespace, settings: Settings) -> int:
    from gis.patrol.store.streets import grid_streets, set_optional_streets

    if args.optional is not None and (not args.author or not args.reason):
        raise InputError("--optional changes the grid's patrol: give --author and --reason too")
    with engine_for(settings) as engine:
        if args.optional is None:
            streets = reading(engine, grid_streets, args.grid)
        else:
            streets = writing(engine, set_optional_streets, args.grid, args.optional, author=args.author,
                              reason=args.reason)
    p = streets["properties"]
    for f in streets["features"]:
        s = f["properties"]
        flag = f"optional ({s['reason']})" if s["optional"] else "required"
        print(f"  {s['id']:<28} {s['length_m']:>8,.1f} m  {flag:<10}  {s['name'] or s['highway'] or ''}")
    print(f"grid {args.grid}: {p['required_segments']} required segment(s), {p['required_m']:,.0f} m; "
          f"{p['optional_segments']} optional, {p['optional_m']:,.0f} m")
    return 0


def cmd_log_visit(args: argparse.Namespace, settings: Settings) -> int:
    from gis.patrol.gpx import track_from_gpx
    from gis.patrol.store.visits import log_visit

    coords, start, end, times = track_from_gpx(read_file(args.gpx))
    if start is None or end is None:
        raise InputError(f"{args.gpx} has no times: a visit needs them (record the track with times)")
    with engine_for(settings) as engine:
        visit = writing(engine, log_visit, args.grid, kind=args.kind, started_at=start, ended_at=end,
                        staff_id=args.staff, track=coords, tolerance_m=args.tolerance, times=times,
                        method=args.method)
    share = f"{visit['walked_share']:.0%}" if visit["walked_share"] is not None else "–"
    how = ("map-matched" + (f", GPS error {visit['gps_sigma_m']:.0f} m" if visit["gps_sigma_m"] else "")
           if visit["matched_by"] == "hmm" else f"buffer test within {visit['tolerance_m']:.0f} m")
    print(f"visit {visit['id']} on grid {args.grid}: {visit['segments_walked']}/{visit['segments_required']} street "
          f"segments walked ({share} of {visit['required_m']:,.0f} m; {how}), "
          f"{visit['started_at']} – {visit['ended_at']}")
    return 0


def cmd_compliance(args: argparse.Namespace, settings: Settings) -> int:
    from gis.patrol.store.visits import compliance, schedule

    with engine_for(settings) as engine:
        if args.schedule:
            plan = schedule(engine, args.grid, args.month, settings.timezone)
            rows = [{"grid": args.grid, **item} for item in plan["items"]]
        else:
            report = reading(engine, compliance, args.grid, args.month, settings.timezone)
            rows = [{"grid": args.grid, "month": args.month, **{k: v for k, v in w.items() if k != "staff"}}
                    for w in report["weeks"]]
    if not args.schedule:
        print(f"grid {args.grid}, {args.month}: basic patrol done in {report['basic_patrols_done']} of "
              f"{report['weeks_in_month']} weeks; full inspection {report['full_inspection']} "
              f"({report['buildings_visited']}/{report['buildings']} buildings)", file=sys.stderr)
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    write_csv(rows, fields, args.csv, what="row(s)")
    return 0


def cmd_coverage(args: argparse.Namespace, settings: Settings) -> int:
    from gis.patrol.store.coverage import coverage_report
    from gis.planning.store.city import find_city

    try:
        minutes = [float(m) for m in args.minutes.split(",")]
        end = datetime.fromisoformat(args.end) if args.end else datetime.now(UTC)
        start = datetime.fromisoformat(args.start) if args.start else end - timedelta(days=30)
    except ValueError:
        raise InputError("--minutes is like 1,3,5 and --start/--end ISO 8601 dates (e.g. 2026-11-01)") from None
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    with engine_for(settings) as engine:
        with engine.connect() as conn:
            city = find_city(conn, args.city)
        report = coverage_report(engine, city.id, start, end, by=args.by, mode=args.mode, minutes=minutes)
    rows = report["rows"]
    write_csv(rows, list(rows[0]), args.csv, what=f"{args.by} row(s)", after=f" in {report['seconds']:.1f} s")
    return 0


def register(sub: Subparsers) -> None:
    cov = sub.add_parser("coverage", help="coverage per grid or unit for a period (streets walked, buildings "
                                          "visited, events per 1,000 households, response circles), as CSV")
    cov.add_argument("--city", required=True)
    cov.add_argument("--by", choices=["grid", "community", "street", "district", "city"], default="grid")
    cov.add_argument("--start", help="ISO 8601 (default: 30 days before --end)")
    cov.add_argument("--end", help="ISO 8601 (default: now)")
    cov.add_argument("--mode", choices=["walk", "ebike", "drive"], default="walk", help="response circles' mode")
    cov.add_argument("--minutes", default="1,3,5", help="response circles' minutes (1,3,5)")
    cov.add_argument("--csv", help="write to this file instead of the terminal")
    cov.set_defaults(func=cmd_coverage)

    vis = sub.add_parser("log-visit", help="log a patrol from a phone's GPX track: matched to the grid's streets")
    vis.add_argument("--grid", required=True, help="the grid's 15-digit code")
    vis.add_argument("--gpx", required=True, help="the GPX file (with point times)")
    vis.add_argument("--staff", type=int, help="the staff member's id")
    vis.add_argument("--kind", choices=["basic", "inspection", "budgeted"], default="basic")
    vis.add_argument("--tolerance", type=float, default=20.0, help="the buffer test: metres from the track a street "
                     "may be (20)")
    vis.add_argument("--method", choices=("hmm", "buffer"), default="hmm", help="hmm: match the track to the streets "
                     "(hidden-Markov map matching, the default); buffer: the buffer test within --tolerance")
    vis.set_defaults(func=cmd_log_visit)

    com = sub.add_parser("compliance", help="per week: was the basic patrol done; the month's full inspection; "
                                            "or with --schedule the month's plan per member; as CSV")
    com.add_argument("--grid", required=True, help="the grid's 15-digit code")
    com.add_argument("--month", required=True, help="YYYY-MM")
    com.add_argument("--schedule", action="store_true", help="the month's patrol plan with each item's status")
    com.add_argument("--csv", help="write to this file instead of the terminal")
    com.set_defaults(func=cmd_compliance)

    pat = sub.add_parser("patrol", help="a grid's weekly basic patrol (every street, from the base and back), "
                                        "its monthly full inspection (every building), or a time-budgeted round")
    pat.add_argument("--grid", required=True, help="the grid's 15-digit code")
    pat.add_argument("--base", help="lon,lat of the base (default: the grid's centre)")
    pat.add_argument("--dwell", type=float, help="minutes at each key place (default: the planner's, 10)")
    pat.add_argument("--inspection", action="store_true",
                     help="the monthly full inspection (every building) instead of the basic patrol")
    pat.add_argument("--shift", type=float, help="minutes in one shift (inspection; default: the planner's, 240)")
    pat.add_argument("--budget", type=float, metavar="MIN",
                     help="a time-budgeted round instead: the most risk (key places, recent events) in MIN minutes")
    pat.add_argument("--share", type=int, metavar="K",
                     help="the basic patrol shared among K members or shifts (1-8): the longest walk shortest")
    pat.add_argument("--gpx", help="write the route as GPX 1.1")
    pat.add_argument("--geojson", help="write the route as GeoJSON")
    pat.set_defaults(func=cmd_patrol)

    st = sub.add_parser("streets", help="a grid's streets for the basic patrol; mark which ones are optional")
    st.add_argument("--grid", required=True, help="the grid's 15-digit code")
    st.add_argument("--optional", nargs="*", metavar="U-V-KEY",
                    help="make exactly these segments optional (none: every street required again)")
    st.add_argument("--author", help="who marks them (with --optional)")
    st.add_argument("--reason", help="why (with --optional), e.g. 'gated compound'")
    st.set_defaults(func=cmd_streets)
