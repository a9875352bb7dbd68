"""Events round the loop, and the figures they make: ``import-events``, ``escalate``, ``kpis``, and the working
calendar their deadlines count (``calendar show|add|remove|hours|national``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.settings import Settings
from gis.db.engine import reading
from gis.errors import InputError
from gis.oversight.store.kpis import KPI_LEVELS
from scripts.cli.base import Subparsers, engine_for, when, write_csv


def cmd_import_events(args: argparse.Namespace, settings: Settings) -> int:
    from gis.dispatch.store.bulk import bulk_intake, read_events_file

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    frame = read_events_file(path.read_bytes(), path.name)
    with engine_for(settings) as engine:
        report = bulk_intake(engine, frame, author=args.author, source_name=path.name,
                             radius_m=settings.nearest_grid_m)
    print(f"stored {report.stored:,} events from {path.name} in {report.seconds:.2f} s "
          f"({report.stored / max(report.seconds, 1e-9):,.0f}/s): {report.in_grid:,} inside a grid, "
          f"{report.nearest:,} on the nearest grid, {report.street_queue:,} in a street's queue (flagged), "
          f"{report.closed:,} closed" + (f" (in {len(report.archives)} archive partition(s): "
                                         f"{', '.join(report.archives)})" if report.archives else ""))
    return 0


def cmd_escalate(args: argparse.Namespace, settings: Settings) -> int:
    from gis.dispatch.store.events import escalate_overdue

    with engine_for(settings) as engine:
        done = escalate_overdue(engine)
    print(f"escalated {len(done)} overdue event(s)")
    for item in done:
        print(f"  event {item['id']}: now at the {item['level']} level, due {item['due_at']}")
    return 0


def cmd_kpis(args: argparse.Namespace, settings: Settings) -> int:
    from gis.oversight.store.kpis import KPI_FIELDS, kpis

    end = when(args.end, datetime.now(UTC))
    start = when(args.start, end - timedelta(days=30))
    with engine_for(settings) as engine:
        rows = reading(engine, kpis, args.by, start, end, prefix=args.unit)
    write_csv(rows, KPI_FIELDS, args.csv, what=f"{args.by} row(s)")
    return 0


def cmd_calendar(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date

    from gis.db.engine import writing
    from gis.dispatch.store import calendar
    from gis.dispatch.worktime import parse_hours
    from gis.planning.store.city import find_city

    def day() -> date:
        try:
            return date.fromisoformat(args.day)
        except ValueError:
            raise InputError(f"a day is YYYY-MM-DD, not {args.day!r}") from None

    with engine_for(settings) as engine:
        if args.action == "national":
            done = writing(engine, calendar.load_national)
            print(f"China's calendar from {done['source']}: {done['added']} new day(s), known until "
                  f"{done['known_until']}")
            return 0
        if not args.city:
            raise InputError("name the city: --city")
        city_id = reading(engine, find_city, args.city).id
        if args.action == "add":
            writing(engine, calendar.add_day, city_id, day(), working=args.working, name=args.name or "",
                    author="cli", now=datetime.now(UTC))
        elif args.action == "remove":
            writing(engine, calendar.remove_day, city_id, day(), now=datetime.now(UTC))
        elif args.action == "hours":
            writing(engine, calendar.set_work_hours, city_id, list(parse_hours(args.hours or "")))
        shown = reading(engine, calendar.year_days, city_id, args.year or datetime.now(UTC).year)
    print(f"{args.city} {shown['year']}: working hours {', '.join(shown['working_hours'])} ({shown['timezone']}); "
          + ("China's holidays apply" + (f", known until {shown['national_known_until']}"
                                         if shown["national_known_until"] else "")
             if shown["national_calendar"] else "no national calendar (a city outside China)"))
    for d in shown["days"]:
        print(f"  {d['day']}  {'working' if d['working'] else 'day off'}  {d['name']}"
              + ("  (the city's own)" if d["own"] else ""))
    return 0


def register(sub: Subparsers) -> None:
    ev = sub.add_parser("import-events", help="load a CSV or GeoJSON file of (historic) events, set-based")
    ev.add_argument("file")
    ev.add_argument("--author", default="bulk import")
    ev.set_defaults(func=cmd_import_events)

    esc = sub.add_parser("escalate", help="escalate every event whose deadline has passed (the service does it "
                                          "every minute)")
    esc.set_defaults(func=cmd_escalate)

    kpi = sub.add_parser("kpis", help="on-time closure rate and the other figures per unit, as CSV")
    kpi.add_argument("--by", choices=list(KPI_LEVELS), default="grid")
    kpi.add_argument("--start", help="ISO 8601 (default: 30 days before --end)")
    kpi.add_argument("--end", help="ISO 8601 (default: now)")
    kpi.add_argument("--unit", help="only units whose code starts so")
    kpi.add_argument("--csv", help="write to this file instead of the terminal")
    kpi.set_defaults(func=cmd_kpis)

    cal = sub.add_parser("calendar", help="the working calendar deadlines count: show a year, add or remove a city's "
                                          "own day off, set its working hours, load China's new holidays")
    cal.add_argument("action", choices=["show", "add", "remove", "hours", "national"])
    cal.add_argument("--city", help="the city's name or handle")
    cal.add_argument("--year", type=int, help="show: the year (default: this one)")
    cal.add_argument("--day", help="add/remove: YYYY-MM-DD, after today")
    cal.add_argument("--name", help="add: what the day is, e.g. 城市纪念日")
    cal.add_argument("--working", action="store_true", help="add: an extra working day instead of a day off")
    cal.add_argument("--hours", help="hours: e.g. 08:30-12:00,13:30-17:30")
    cal.set_defaults(func=cmd_calendar)
