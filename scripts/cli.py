"""``gridpatrol``: the command line. Thin: parse arguments, call :mod:`gis` and :mod:`api`, show progress.

Every error a user can fix ends in one line on stderr and a non-zero exit: 2 for bad input (a missing or broken
file, an unknown city), 3 when the database cannot be reached or started.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg2
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from api.settings import Settings
from gis.access.store import audit as audit_log
from gis.db.embedded import EmbeddedPostgres
from gis.db.engine import check_database, make_engine
from gis.db.migrate import upgrade
from gis.errors import DatabaseUnavailableError, GridpatrolError, InputError
from gis.geo.cities import CITIES, city_from_name

DEMO_FILE = Path("data/nanjing-xinjiekou.osm")
DEMO_CITY = "nanjing"

EXIT_INPUT = 2
EXIT_DATABASE = 3


def embedded(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir.resolve() / "postgres", port=settings.pg_port)


def database_url(settings: Settings, *, say: Callable[[str], None] = print) -> str:
    """``DATABASE_URL`` when set; otherwise the embedded server, started (and its database created) if needed."""
    if settings.database_url:
        return settings.database_url
    server = embedded(settings)
    if server.start():
        say(f"started embedded PostgreSQL on 127.0.0.1:{server.port} ({server.pgdata})")
    server.create_database(settings.db_name)
    return server.url(settings.db_name)


def ready_engine(settings: Settings):  # type: ignore[no-untyped-def]
    """An engine on a reachable, migrated database."""
    engine = make_engine(database_url(settings))
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        check_database(engine)  # raises the clear DatabaseUnavailableError
        raise DatabaseUnavailableError(str(exc)) from exc
    upgrade(engine)
    return engine


# -- commands ----------------------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in ("backup", "restore"):
        return db_backup_restore(args, settings)
    if settings.database_url:
        if args.action == "status":
            engine = make_engine(settings.database_url)
            print(f"DATABASE_URL is set; PostGIS {check_database(engine)} reachable there")
        else:
            print("DATABASE_URL is set: gridpatrol uses that server and starts or stops nothing")
        return 0
    server = embedded(settings)
    if args.action == "start":
        started = server.start()
        server.create_database(settings.db_name)
        print(("started" if started else "already running") + f": {server.url(settings.db_name)}")
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    else:
        state = server.status()
        print(f"{state}: {server.url(settings.db_name)} (data in {server.pgdata})")
        return 0 if state == "running" else 1
    return 0


def db_backup_restore(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.backup import backup, restore

    if not args.file:
        raise InputError(f"gridpatrol db {args.action} FILE: say which file")
    url = database_url(settings)
    path = Path(args.file)
    if args.action == "backup":
        size = backup(url, path)
        print(f"wrote {path} ({size / 2**20:,.1f} MB); restore it with: gridpatrol db restore {path}")
        return 0
    if not args.yes:
        raise InputError(f"restoring replaces everything in the database with {path}: add --yes to go ahead")
    restore(url, path)
    engine = ready_engine(settings)  # a backup from an older version: bring its schema up to date
    engine.dispose()
    print(f"restored {path}")
    return 0


def read_password(args: argparse.Namespace) -> str:
    """From ``--password-stdin``, else ``GRIDPATROL_PASSWORD``, else asked for twice on a terminal."""
    import getpass

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("GRIDPATROL_PASSWORD"):
        return os.environ["GRIDPATROL_PASSWORD"]
    if not sys.stdin.isatty():
        raise InputError("no password: pipe it with --password-stdin, or set GRIDPATROL_PASSWORD")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InputError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    from gis.access.store import users

    engine = ready_engine(settings)
    try:
        if args.action == "list":
            for u in users.list_users(engine):
                where = u.unit_code or ("every city" if u.scope.everywhere else f"city {u.scope.city_id}")
                print(f"  {u.username:<24} {u.role:<12} {u.scope.level:<10} {where:<16} "
                      f"{'' if u.active else 'disabled'}")
            return 0
        if not args.username:
            raise InputError(f"gridpatrol users {args.action} USERNAME: say whose account")
        if args.action == "add":
            if not args.role:
                raise InputError("a new user needs --role: " + ", ".join(users.USER_ROLES))
            user = users.create_user(engine, args.username, read_password(args), args.role, unit=args.unit,
                                     display_name=args.name or "", staff_id=args.staff_id,
                                     department=args.department)
            print(f"added {user.username}: {user.role} of {user.unit_code or user.scope.level}")
        elif args.action == "passwd":
            user = users.set_password(engine, args.username, read_password(args))
            print(f"new password for {user.username}; their earlier sign-ins no longer work")
        else:
            user = users.set_active(engine, args.username, args.action == "enable")
            print(f"{user.username} {'enabled' if user.active else 'disabled (signed out everywhere)'}")
    finally:
        engine.dispose()
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from tqdm import tqdm


    engine = ready_engine(settings)
    try:
        if args.action == "list":
            for e in audit_log.audit_entries(engine, subject=args.subject, username=args.user, limit=args.limit):
                print(f"  {e['at'][:19]}  {e['username'] or '-':<16} {e['method'] or e['action']:<6} "
                      f"{e['status'] or '':<4} {e['subject'] or ''}")
            return 0
        if (args.before is None) == (args.keep_days is None):
            raise InputError("gridpatrol audit prune: say either --before DATE or --keep-days N")
        if args.keep_days is not None:
            if args.keep_days < 1:
                raise InputError("--keep-days must be at least 1")
            before = datetime.now(UTC) - timedelta(days=args.keep_days)
        else:
            try:  # a date is midnight in the service's time zone
                day = datetime.strptime(args.before, "%Y-%m-%d")
            except ValueError:
                raise InputError(f"--before {args.before!r}: give a date as YYYY-MM-DD") from None
            before = day.replace(tzinfo=ZoneInfo(settings.timezone))
        total = audit_log.count_audit_before(engine, before)
        with tqdm(total=total, desc="pruning the audit log", unit="line", file=sys.stderr) as bar:
            deleted = audit_log.prune_audit(engine, before, progress=bar.update)
        print(f"deleted {deleted:,} audit line(s) written before {before.isoformat(timespec='seconds')}")
    finally:
        engine.dispose()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    ready_engine(settings)
    print("database schema is up to date")
    return 0


class StepBar:
    """A tqdm progress bar over the importer's named steps."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr,
                        bar_format="{desc}: {n_fmt}/{total_fmt} {bar} {postfix} [{elapsed}]")
        self.started = False

    def __call__(self, name: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_postfix_str(name)

    def close(self, ok: bool) -> None:
        if ok and self.started:
            self.bar.update(1)
            self.bar.set_postfix_str("done")
        self.bar.close()


def run_import(settings: Settings, path: Path, city_name: str, households: Path | None) -> int:
    from gis.planning.store.importer import STEPS, import_osm

    city = city_from_name(city_name)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    engine = ready_engine(settings)
    bar = StepBar(len(STEPS), desc=f"importing {path.name}")
    ok = False
    try:
        report = import_osm(engine, path, city=city, households_csv=households, progress=bar)
        ok = True
    finally:
        bar.close(ok)
        engine.dispose()
    print("\n".join(report.lines()))
    return 0


def run_divide(settings: Settings, city_name: str, *, district: str | None = None, grid_band: str = "300-500",
               community_band: str = "3000-6000", dry_run: bool = False) -> int:
    from sqlalchemy import text

    from gis.planning.division import parse_band
    from gis.planning.store.city import find_city
    from gis.planning.store.divisions import divide_and_store

    bands = {"grid_band": parse_band(grid_band, what="--grid-band"),
             "community_band": parse_band(community_band, what="--community-band")}
    engine = ready_engine(settings)
    try:
        with engine.connect() as conn:
            city = find_city(conn, city_name)
            districts = conn.execute(text("SELECT count(*) FROM admin_units WHERE city_id = :c AND level = 'district'"),
                                     {"c": city.id}).scalar() or 1
        bar = StepBar(1 if district else int(districts), desc=f"dividing {city.name_en or city.name}")
        ok = False
        try:
            summaries = divide_and_store(engine, city.id, district=district, dry_run=dry_run, progress=bar, **bands)
            ok = True
        finally:
            bar.close(ok)
    finally:
        engine.dispose()
    for summary in summaries:
        print("\n".join(summary.lines()))
    grids = sum(s.grids for s in summaries)
    in_band = sum(s.grids_in_band for s in summaries)
    eligible = grids - sum(s.single_building_grids for s in summaries)
    print(f"{'proposed (not stored, --dry-run)' if dry_run else 'stored'}: {grids} grids, {in_band} of {eligible} "
          f"in the band ({in_band / max(eligible, 1):.1%}; single buildings above it excepted)")
    return 0


def cmd_divide(args: argparse.Namespace, settings: Settings) -> int:
    return run_divide(settings, args.city, district=args.district, grid_band=args.grid_band,
                      community_band=args.community_band, dry_run=args.dry_run)


def cmd_export_grids(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.exchange import format_for, grids_to_bytes
    from gis.planning.store.city import find_city
    from gis.planning.store.exchange import grids_frame

    fmt = format_for(args.out)
    engine = ready_engine(settings)
    try:
        with engine.connect() as conn:
            frame = grids_frame(conn, find_city(conn, args.city).id)
    finally:
        engine.dispose()
    if frame.empty:
        raise InputError(f"{args.city} has no grids yet: run gridpatrol divide --city {args.city}")
    Path(args.out).write_bytes(grids_to_bytes(frame, fmt))
    print(f"wrote {len(frame)} grids to {args.out} ({fmt})")
    return 0


def cmd_import_grids(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.store.exchange import import_grids

    engine = ready_engine(settings)
    try:
        result = import_grids(engine, args.file, community_code=args.community, author=args.author,
                              reason=args.reason, dry_run=args.dry_run)
    finally:
        engine.dispose()
    print(f"{'would change' if args.dry_run else 'changed'}: {len(result.grids)} grid(s) updated, "
          f"{len(result.created)} new ({', '.join(result.created) or '-'}), {len(result.retired)} retired "
          f"({', '.join(result.retired) or '-'}); {result.buildings_moved} buildings and "
          f"{result.households_moved} households change grid")
    for warning in result.warnings:
        print(f"  warning: {warning}")
    return 0


def _seed_city(settings: Settings, city_name: str, seed: Callable[[Engine, int], dict[str, int]]) -> dict[str, int]:
    """Run one of the demo's synthetic seeders on the city named ``city_name``; its counts."""
    from gis.planning.store.city import find_city

    engine = ready_engine(settings)
    try:
        with engine.connect() as conn:
            city_id = find_city(conn, city_name).id
        return seed(engine, city_id)
    finally:
        engine.dispose()


def seed_staff(settings: Settings, city_name: str) -> None:
    from gis.demo.staff import seed_demo_staff

    counts = _seed_city(settings, city_name, seed_demo_staff)
    if any(counts.values()):
        print("synthetic demo staff: " + ", ".join(f"{n} {role}" for role, n in counts.items()))


def seed_activity(settings: Settings, city_name: str) -> None:
    from gis.demo.activity import seed_demo_activity

    counts = _seed_city(settings, city_name, seed_demo_activity)
    if any(counts.values()):
        print(f"synthetic demo activity: {counts['events']} events, {counts['visits']} patrol visits")


def cmd_seed_activity(args: argparse.Namespace, settings: Settings) -> int:
    seed_activity(settings, args.city)
    return 0


def cmd_seed_staff(args: argparse.Namespace, settings: Settings) -> int:
    seed_staff(settings, args.city)
    return 0


def cmd_import_events(args: argparse.Namespace, settings: Settings) -> int:
    from gis.dispatch.store.bulk import bulk_intake, read_events_file

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    frame = read_events_file(path.read_bytes(), path.name)
    engine = ready_engine(settings)
    try:
        report = bulk_intake(engine, frame, author=args.author, source_name=path.name,
                             radius_m=settings.nearest_grid_m)
    finally:
        engine.dispose()
    print(f"stored {report.stored:,} events from {path.name} in {report.seconds:.2f} s "
          f"({report.stored / max(report.seconds, 1e-9):,.0f}/s): {report.in_grid:,} inside a grid, "
          f"{report.nearest:,} on the nearest grid, {report.street_queue:,} in a street's queue (flagged), "
          f"{report.closed:,} closed" + (f" (in {len(report.archives)} archive partition(s): "
                                         f"{', '.join(report.archives)})" if report.archives else ""))
    return 0


def cmd_escalate(args: argparse.Namespace, settings: Settings) -> int:
    from gis.dispatch.store.events import escalate_overdue

    engine = ready_engine(settings)
    try:
        done = escalate_overdue(engine)
    finally:
        engine.dispose()
    print(f"escalated {len(done)} overdue event(s)")
    for item in done:
        print(f"  event {item['id']}: now at the {item['level']} level, due {item['due_at']}")
    return 0


def cmd_log_visit(args: argparse.Namespace, settings: Settings) -> int:
    from gis.patrol.gpx import track_from_gpx
    from gis.patrol.store.visits import log_visit

    try:
        data = Path(args.gpx).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {args.gpx}: {exc.strerror}") from None
    coords, start, end = track_from_gpx(data)
    if start is None or end is None:
        raise InputError(f"{args.gpx} has no times: a visit needs them (record the track with times)")
    engine = ready_engine(settings)
    try:
        visit = log_visit(engine, args.grid, kind=args.kind, started_at=start, ended_at=end, staff_id=args.staff,
                          track=coords, tolerance_m=args.tolerance)
    finally:
        engine.dispose()
    share = f"{visit['walked_share']:.0%}" if visit["walked_share"] is not None else "–"
    print(f"visit {visit['id']} on grid {args.grid}: {visit['segments_walked']}/{visit['segments_required']} street "
          f"segments walked ({share} of {visit['required_m']:,.0f} m), {visit['started_at']} – {visit['ended_at']}")
    return 0


def cmd_compliance(args: argparse.Namespace, settings: Settings) -> int:
    import csv

    from gis.patrol.store.visits import compliance, schedule

    engine = ready_engine(settings)
    try:
        if args.schedule:
            plan = schedule(engine, args.grid, args.month, settings.timezone)
            rows = [{"grid": args.grid, **item} for item in plan["items"]]
        else:
            report = compliance(engine, args.grid, args.month, settings.timezone)
            rows = [{"grid": args.grid, "month": args.month, **{k: v for k, v in w.items() if k != "staff"}}
                    for w in report["weeks"]]
    finally:
        engine.dispose()
    if not args.schedule:
        print(f"grid {args.grid}, {args.month}: basic patrol done in {report['basic_patrols_done']} of "
              f"{report['weeks_in_month']} weeks; full inspection {report['full_inspection']} "
              f"({report['buildings_visited']}/{report['buildings']} buildings)", file=sys.stderr)
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    out = open(args.csv, "w", newline="") if args.csv else sys.stdout  # noqa: SIM115
    try:
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if args.csv:
            out.close()
            print(f"wrote {len(rows)} row(s) to {args.csv}")
    return 0


def cmd_coverage(args: argparse.Namespace, settings: Settings) -> int:
    import csv
    from datetime import UTC, datetime, timedelta

    from gis.patrol.store.coverage import coverage_report
    from gis.planning.store.city import find_city

    try:
        minutes = [float(m) for m in args.minutes.split(",")]
        end = datetime.fromisoformat(args.end) if args.end else datetime.now(UTC)
        start = datetime.fromisoformat(args.start) if args.start else end - timedelta(days=30)
    except ValueError:
        raise InputError("--minutes is like 1,3,5 and --start/--end ISO 8601 dates (e.g. 2026-11-01)") from None
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    engine = ready_engine(settings)
    try:
        with engine.connect() as conn:
            city = find_city(conn, args.city)
        report = coverage_report(engine, city.id, start, end, by=args.by, mode=args.mode, minutes=minutes)
    finally:
        engine.dispose()
    rows = report["rows"]
    out = open(args.csv, "w", newline="") if args.csv else sys.stdout  # noqa: SIM115
    try:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if args.csv:
            out.close()
            print(f"wrote {len(rows)} {args.by} row(s) to {args.csv} in {report['seconds']:.1f} s")
    return 0


def cmd_kpis(args: argparse.Namespace, settings: Settings) -> int:
    import csv
    from datetime import UTC, datetime, timedelta

    from gis.oversight.store.kpis import KPI_FIELDS, kpis

    def when(text: str | None, default: datetime) -> datetime:
        if text is None:
            return default
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-01)") from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    end = when(args.end, datetime.now(UTC))
    start = when(args.start, end - timedelta(days=30))
    engine = ready_engine(settings)
    try:
        rows = kpis(engine, args.by, start, end, prefix=args.unit)
    finally:
        engine.dispose()
    out = open(args.csv, "w", newline="") if args.csv else sys.stdout  # noqa: SIM115
    try:
        writer = csv.DictWriter(out, fieldnames=KPI_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if args.csv:
            out.close()
            print(f"wrote {len(rows)} {args.by} row(s) to {args.csv}")
    return 0


def cmd_patrol(args: argparse.Namespace, settings: Settings) -> int:
    import json
    import time

    from gis.patrol.gpx import to_gpx, tours_to_gpx
    from gis.patrol.inspection import DEFAULT_SHIFT_MIN
    from gis.patrol.store.plans import DEFAULT_DWELL_MIN, plan_basic, plan_budgeted_round, plan_full_inspection

    shift = DEFAULT_SHIFT_MIN if args.shift is None else args.shift
    dwell = DEFAULT_DWELL_MIN if args.dwell is None else args.dwell

    base = None
    if args.base:
        try:
            lon, lat = (float(v) for v in args.base.split(","))
        except ValueError:
            raise InputError(f"--base is lon,lat (WGS-84), e.g. 118.7838,32.0415; got {args.base!r}") from None
        base = (lon, lat)
    if args.inspection and args.budget is not None:
        raise InputError("--inspection and --budget are different patrols: give one")
    engine = ready_engine(settings)
    try:
        started = time.perf_counter()
        if args.budget is not None:
            plan = plan_budgeted_round(engine, args.grid, args.budget, base=base, dwell_min=dwell)
        elif args.inspection:
            plan = plan_full_inspection(engine, args.grid, base=base, shift_min=shift)
        else:
            plan = plan_basic(engine, args.grid, base=base, dwell_min=dwell)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    p = plan["properties"]
    if args.budget is not None:
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
        tours = args.inspection or args.budget is not None
        Path(args.gpx).write_text((tours_to_gpx if tours else to_gpx)(plan), encoding="utf-8")
        print(f"wrote {args.gpx}")
    if args.geojson:
        Path(args.geojson).write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.geojson}")
    return 0


def cmd_streets(args: argparse.Namespace, settings: Settings) -> int:
    from gis.patrol.store.streets import grid_streets, set_optional_streets

    engine = ready_engine(settings)
    try:
        if args.optional is None:
            streets = grid_streets(engine, args.grid)
        else:
            if not args.author or not args.reason:
                raise InputError("--optional changes the grid's patrol: give --author and --reason too")
            streets = set_optional_streets(engine, args.grid, args.optional, author=args.author, reason=args.reason)
    finally:
        engine.dispose()
    p = streets["properties"]
    for f in streets["features"]:
        s = f["properties"]
        flag = f"optional ({s['reason']})" if s["optional"] else "required"
        print(f"  {s['id']:<28} {s['length_m']:>8,.1f} m  {flag:<10}  {s['name'] or s['highway'] or ''}")
    print(f"grid {args.grid}: {p['required_segments']} required segment(s), {p['required_m']:,.0f} m; "
          f"{p['optional_segments']} optional, {p['optional_m']:,.0f} m")
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    return run_import(settings, Path(args.file), args.city, Path(args.households) if args.households else None)


def serve(settings: Settings, host: str, port: int, *, workers: int = 1, access_log: bool = True) -> None:
    import uvicorn

    from api.app import create_app

    settings = settings.model_copy(update={"database_url": database_url(settings)})
    print(f"gridpatrol serving on http://{host}:{port}  (map at /, API docs at /docs; Ctrl-C to stop)")
    if workers > 1:  # worker processes build the app from the environment
        os.environ["DATABASE_URL"] = settings.database_url or ""
        uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level="info", access_log=access_log)
    else:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    ready_engine(settings).dispose()
    serve(settings, args.host or settings.host, args.port or settings.port, workers=args.workers,
          access_log=not args.no_access_log)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Start the database, load central Nanjing (once), serve; stop the embedded server on exit."""
    server = None if settings.database_url else embedded(settings)
    was_running = server is not None and server.status() == "running"
    # `kill`, systemd and docker stop with SIGTERM, whose default action ends the process without cleaning up.
    # uvicorn shuts down gracefully on it and then re-raises it: make it an exit, so the database is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        engine = ready_engine(settings)
        from sqlalchemy import text

        from gis.planning.store.importer import file_sha256

        with engine.connect() as conn:
            loaded = conn.execute(text(
                "SELECT 1 FROM imports i JOIN admin_units c ON c.id = i.city_id "
                "WHERE c.name = :name AND i.file_sha256 = :sha LIMIT 1"
            ), {"name": CITIES[DEMO_CITY].name, "sha": file_sha256(DEMO_FILE)}).first()
        engine.dispose()
        if loaded:
            print(f"{DEMO_FILE.name} already loaded")
        else:
            run_import(settings, DEMO_FILE, DEMO_CITY, None)
            run_divide(settings, DEMO_CITY)
        seed_staff(settings, DEMO_CITY)  # grids without staff get synthetic ones, so reports find a person
        seed_activity(settings, DEMO_CITY)  # synthetic events and visits, so the leaders' maps show something
        seed_users(settings, DEMO_CITY)  # one account per role, so a newcomer can sign in
        if not args.no_serve:
            serve(settings, settings.host, settings.port)
    finally:
        if server is not None and not was_running and not args.keep_db:
            server.stop()
            print("stopped embedded PostgreSQL")
    return 0


DEMO_USERS = Path("demo-users.txt")


def seed_users(settings: Settings, city: str) -> None:
    """The demo's accounts; new ones' passwords are printed and kept in ``<data_dir>/demo-users.txt``."""
    from gis.demo.users import seed_demo_users
    from gis.planning.store.city import find_city

    engine = ready_engine(settings)
    try:
        with engine.connect() as conn:
            city_id = find_city(conn, CITIES[city].name).id
        made = seed_demo_users(engine, city_id)
    finally:
        engine.dispose()
    listing = settings.data_dir / DEMO_USERS
    if made:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with listing.open("a", encoding="utf-8") as out:
            for name, role, unit, password in made:
                out.write(f"{name}\t{password}\t{role}\t{unit}\n")
        listing.chmod(0o600)
    if listing.exists():
        print(f"demo accounts (username, password, role, unit) — sign in at /login; kept in {listing}:")
        print("".join(f"  {line}" for line in listing.read_text(encoding="utf-8").splitlines(keepends=True)))


def token_for(settings: Settings, username: str | None) -> str:
    """A sign-in for a user without their password: for the operator's own tools (screenshots), who hold the
    database anyway. Default: the first admin."""
    from api.auth import Tokens
    from gis.access.store import users

    engine = ready_engine(settings)
    try:
        found = [u for u in users.list_users(engine) if u.active and
                 (u.username == username if username else u.role == "admin")]
        if not found:
            raise InputError(f"no active user {username!r}" if username else
                             "no admin yet: gridpatrol users add admin --role admin")
        return Tokens(engine, settings).issue(found[0])[0]
    finally:
        engine.dispose()


def cmd_screenshot(args: argparse.Namespace, settings: Settings) -> int:
    from api.app import create_app
    from maps.browser import serve_in_thread, visit

    settings = settings.model_copy(update={"database_url": database_url(settings)})
    token = token_for(settings, args.user)
    with serve_in_thread(create_app(settings)) as base:
        result = visit(f"{base}{args.path}", screenshot=Path(args.out), width=args.width, height=args.height,
                       token=token)
    print(f"wrote {args.out}: {result.summary()}")
    return 0 if result.ok else 1


# -- entry point -------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridpatrol", description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="start, stop or check the embedded PostGIS; back it up or restore it")
    db.add_argument("action", choices=("start", "stop", "status", "backup", "restore"))
    db.add_argument("file", nargs="?", help="backup / restore: the pg_dump file")
    db.add_argument("--yes", action="store_true", help="restore: yes, replace the database's contents")
    db.set_defaults(func=cmd_db)

    usr = sub.add_parser("users", help="add users, reset passwords, disable or list them")
    usr.add_argument("action", choices=("add", "passwd", "disable", "enable", "list"))
    usr.add_argument("username", nargs="?")
    usr.add_argument("--role", help="add: admin, planner, dispatcher, grid_member, leader or department")
    usr.add_argument("--unit", help="add: their grid, community, street or district code, or a city's name "
                     "(an admin without one: every city)")
    usr.add_argument("--name", help="add: the name shown")
    usr.add_argument("--staff-id", type=int, help="add: their staff record (a grid member's grids and events)")
    usr.add_argument("--department", help="add: a department user's department code")
    usr.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    usr.set_defaults(func=cmd_users)

    aud = sub.add_parser("audit", help="read the audit log, or delete its old lines")
    aud.add_argument("action", choices=("list", "prune"))
    aud.add_argument("--user", help="list: one user's lines")
    aud.add_argument("--subject", help="list: the lines about one thing (e.g. /events/42)")
    aud.add_argument("--limit", type=int, default=50, help="list: how many, newest first (default 50)")
    aud.add_argument("--before", help="prune: delete the lines written before this date (YYYY-MM-DD, local time)")
    aud.add_argument("--keep-days", type=int, help="prune: keep the last N days, delete the rest")
    aud.set_defaults(func=cmd_audit)

    mig = sub.add_parser("migrate", help="create or upgrade the schema (Alembic)")
    mig.set_defaults(func=cmd_migrate)

    imp = sub.add_parser("import-osm", help="import an OSM extract (.osm, .osm.gz, .osm.bz2, .osm.pbf)")
    imp.add_argument("file", help="the OSM file")
    imp.add_argument("--city", required=True, help=f"which city it is: {', '.join(CITIES)}")
    imp.add_argument("--households", metavar="CSV",
                     help="real household counts: osm_id (way/123),households[,residents]")
    imp.set_defaults(func=cmd_import)

    div = sub.add_parser("divide", help="propose and store streets → communities → grids for a city")
    div.add_argument("--city", required=True, help="an imported city")
    div.add_argument("--district", help="only this district (name or code)")
    div.add_argument("--grid-band", default="300-500", help="households per grid (default 300-500)")
    div.add_argument("--community-band", default="3000-6000", help="households per community (default 3000-6000)")
    div.add_argument("--dry-run", action="store_true", help="report the proposal, store nothing")
    div.set_defaults(func=cmd_divide)

    exp = sub.add_parser("export-grids", help="write a city's grids to .geojson, .gpkg or .shp")
    exp.add_argument("--city", required=True)
    exp.add_argument("--out", required=True, help="the file; its suffix picks the format")
    exp.set_defaults(func=cmd_export_grids)

    img = sub.add_parser("import-grids", help="replace a community's grids from a .geojson, .gpkg, .shp or .zip")
    img.add_argument("file")
    img.add_argument("--community", required=True, help="the community's 12-digit code")
    img.add_argument("--author", required=True)
    img.add_argument("--reason", required=True)
    img.add_argument("--dry-run", action="store_true", help="report the impact, store nothing")
    img.set_defaults(func=cmd_import_grids)

    srv = sub.add_parser("serve", help="serve the API and maps")
    srv.add_argument("--host")
    srv.add_argument("--port", type=int)
    srv.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    srv.add_argument("--no-access-log", action="store_true", help="do not log every request")
    srv.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="what `make run` does: database, Nanjing, serve on :8000")
    demo.add_argument("--no-serve", action="store_true", help="load the demo city and stop")
    demo.add_argument("--keep-db", action="store_true", help="leave the embedded server running afterwards")
    demo.set_defaults(func=cmd_demo)

    staff = sub.add_parser("seed-staff", help="give a city's grids synthetic staff and a duty roster (demo)")
    staff.add_argument("--city", required=True)
    staff.set_defaults(func=cmd_seed_staff)

    act = sub.add_parser("seed-activity", help="synthetic events and patrol visits for a city's grids (the demo's; "
                                               "once per city)")
    act.add_argument("--city", required=True)
    act.set_defaults(func=cmd_seed_activity)

    ev = sub.add_parser("import-events", help="load a CSV or GeoJSON file of (historic) events, set-based")
    ev.add_argument("file")
    ev.add_argument("--author", default="bulk import")
    ev.set_defaults(func=cmd_import_events)

    esc = sub.add_parser("escalate", help="escalate every event whose deadline has passed (the service does it "
                                          "every minute)")
    esc.set_defaults(func=cmd_escalate)

    kpi = sub.add_parser("kpis", help="on-time closure rate and the other figures per unit, as CSV")
    kpi.add_argument("--by", choices=["grid", "community", "street", "district", "department"], default="grid")
    kpi.add_argument("--start", help="ISO 8601 (default: 30 days before --end)")
    kpi.add_argument("--end", help="ISO 8601 (default: now)")
    kpi.add_argument("--unit", help="only units whose code starts so")
    kpi.add_argument("--csv", help="write to this file instead of the terminal")
    kpi.set_defaults(func=cmd_kpis)

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
    vis.add_argument("--tolerance", type=float, default=20.0, help="metres from the track a street may be (20)")
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

    shot = sub.add_parser("screenshot", help="render a page in headless Chromium and save a PNG")
    shot.add_argument("--out", required=True)
    shot.add_argument("--path", default="/", help="the page, e.g. /?city=beijing")
    shot.add_argument("--width", type=int, default=1400)
    shot.add_argument("--height", type=int, default=900)
    shot.add_argument("--user", help="seen as this user (default: the first admin)")
    shot.set_defaults(func=cmd_screenshot)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        return int(args.func(args, settings))
    except DatabaseUnavailableError as exc:
        print(f"gridpatrol: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except (OperationalError, psycopg2.OperationalError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        print(f"gridpatrol: lost the database connection ({reason}); nothing was written. "
              "Check the server (gridpatrol db status) and try again", file=sys.stderr)
        return EXIT_DATABASE
    except GridpatrolError as exc:
        print(f"gridpatrol: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
