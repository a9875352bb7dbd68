"""Big screen and bulletin benchmark (issue 23): the Siping-scale synthetic city (7,181 grids) with a year of synthetic
history (about 500,000 cases, 10,000 of them open), each figure against the bare queries of the same figures in the
same run.

    make bench      # or: .venv/bin/python bench/screen_bench.py [--reuse] [--repeat 20]

1. one big-screen refresh for the city (:func:`gis.oversight.store.screen.screen`, what ``GET /screen/data`` runs):
   median and p95 over ``--repeat`` refreshes, and for a district and a street; the reference is the very SQL the
   refresh sent, captured and replayed bare through psycopg2 (the database's share of the refresh);
2. the month's bulletin of the city and of its district (:func:`gis.oversight.store.bulletin.bulletin`, what
   ``GET /bulletins`` and ``gridpatrol bulletin`` run), against its SQL replayed bare; and the XLSX and printable
   page drawn from it;
3. the month's KPIs with and without leaving out, before counting, the cases closed before the month (the change
   this issue made to ``kpis``): the same figures, the time of each.
Targets: a refresh under 200 ms of server time, a bulletin under 10 s. Not a test.

The synthetic city has no street network, so the response circles and the patrol coverage are not computed there
(the screen computes the circles apart from its refresh in any case, and the bulletin's coverage is the leaders'
cached one): the figures measured are the events', the KPIs' and the patrol compliance's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx2 as httpx  # noqa: E402
import synthetic_city  # noqa: E402
from benchdb import bench_database, machine  # noqa: E402
from console_bench import ms, timed  # noqa: E402
from intake_bench import serving  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from gis.db.engine import make_engine  # noqa: E402
from gis.dispatch.rules import OPEN_STATES  # noqa: E402
from gis.oversight.store import kpis as kpis_module  # noqa: E402
from gis.oversight.store.bulletin import bulletin  # noqa: E402
from gis.oversight.store.leaders import Unit, find_unit  # noqa: E402
from gis.oversight.store.screen import screen  # noqa: E402
from maps.bulletin import bulletin_page, bulletin_xlsx  # noqa: E402

HISTORIC, OPEN = 490_000, 10_000
PORT = 8767
TZ = "Asia/Shanghai"
TARGET_REFRESH_S, TARGET_BULLETIN_S = 0.200, 10.0
CATEGORIES = ["C01", "C02", "C03", "C04", "C05", "E01", "E02", "E03", "E04", "E05", "E06", "E07", "S01", "S02", "S03"]


def load_history(engine: Engine) -> None:
    """A year of closed cases and ten days of open ones (the closed ones into archive partitions)."""
    synthetic_city.load_cases(engine, [(HISTORIC, 365, True), (OPEN, 10, False)], CATEGORIES, seed=23)


class Statements:
    """The SQL an engine sends while the block runs (to replay it bare)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sent: list[tuple[str, Any]] = []

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self.sent.append((statement, parameters))

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def replay(engine: Engine, sent: list[tuple[str, Any]]) -> float:
    """Seconds to run ``sent`` bare on one psycopg2 cursor, fetching every row."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        started = time.perf_counter()
        for statement, parameters in sent:
            cur.execute(statement, parameters)
            if cur.description is not None:
                cur.fetchall()
        spent = time.perf_counter() - started
        raw.rollback()
        return spent
    finally:
        raw.close()


def refresh(engine: Engine, unit: Unit, label: str, repeat: int) -> float:
    def once() -> dict[str, Any]:
        with engine.connect() as conn:
            return screen(conn, unit, timezone=TZ)
    once()  # warm: the session's first statements plan, PROJ starts
    times = timed(once, repeat)
    with Statements(engine) as captured:
        data = once()
    bare = [replay(engine, captured.sent) for _ in range(repeat)]
    median = statistics.median(times)
    print(f"   {label}: {ms(times)}; bare SQL ({len(captured.sent)} statements) {ms(bare)}; "
          f"ratio {median / statistics.median(bare):.2f}×  [{data['intake']['today']:,} today, "
          f"{data['open']['open']:,} open, {data['open']['overdue']:,} overdue, {len(data['heat']):,} heat cells, "
          f"{len(data['league']['units'])} units in the league]", flush=True)
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep the synthetic city and its history of a last run")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with bench_database("gridpatrol_screen_bench", reuse=args.reuse) as url:
        engine = make_engine(url)
        city_id = synthetic_city.build(engine)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one()
        if stored < HISTORIC + OPEN:
            load_history(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with engine.connect() as conn:
            grids = conn.exec_driver_sql("SELECT count(*) FROM grids").scalar_one()
            total, open_ = conn.exec_driver_sql(
                "SELECT count(*), count(*) FILTER (WHERE state = ANY(%(o)s)) FROM events",
                {"o": list(OPEN_STATES)}).one()
            city = find_unit(conn, city=str(city_id), unit=None)
            district = find_unit(conn, city=None, unit=synthetic_city.DISTRICT)
            street_code = conn.exec_driver_sql(
                "SELECT code FROM admin_units WHERE level = 'street' AND city_id = %(c)s ORDER BY code LIMIT 1",
                {"c": city_id}).scalar_one()
            street = find_unit(conn, city=None, unit=street_code)
        print(f"synthetic city: {grids:,} grids, {total:,} cases ({open_:,} open)", flush=True)

        print("1. one big-screen refresh (server time, in process)", flush=True)
        city_ms = refresh(engine, city, "the city", args.repeat)
        refresh(engine, district, f"district {district.code}", args.repeat)
        refresh(engine, street, f"street {street.code}", args.repeat)
        verdict = "met" if city_ms < TARGET_REFRESH_S else "MISSED"
        print(f"   target: a refresh under {TARGET_REFRESH_S * 1000:.0f} ms for the city: {verdict} "
              f"({city_ms * 1000:.1f} ms)", flush=True)
        with serving(url, PORT, 1) as token:  # as the wall asks: GET /screen/data over HTTP, one worker
            client = httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers={"Authorization": f"Bearer {token}"},
                                  timeout=30)
            client.get("/screen/data", params={"city": str(city_id)}).raise_for_status()
            server_ms, sizes = [], []

            def over_http() -> None:
                answer = client.get("/screen/data", params={"city": str(city_id)})
                answer.raise_for_status()
                server_ms.append(answer.json()["server_ms"] / 1000)
                sizes.append(len(answer.content))
            wall = timed(over_http, args.repeat)
            client.close()
        print(f"   GET /screen/data over HTTP: at the client {ms(wall)}; the figures' time in the server "
              f"{ms(server_ms)}; {statistics.median(sizes) / 1024:.0f} kB a refresh", flush=True)

        print("2. the month's bulletin", flush=True)
        first = datetime.now(ZoneInfo(TZ)).date().replace(day=1) - timedelta(days=1)
        month = f"{first:%Y-%m}"
        worst = 0.0
        for unit, label in ((city, "the city"), (district, f"district {district.code}")):
            with Statements(engine) as captured:
                started = time.perf_counter()
                data = bulletin(engine, unit, month, timezone=TZ)
                spent = time.perf_counter() - started
            bare = replay(engine, captured.sent)
            started = time.perf_counter()
            book = bulletin_xlsx(data)
            page = bulletin_page(data)
            drawn = time.perf_counter() - started
            worst = max(worst, spent + drawn)
            print(f"   {label}, {month}: {spent:.2f} s (bare SQL, {len(captured.sent)} statements: {bare:.2f} s, "
                  f"ratio {spent / bare:.2f}×); XLSX {len(book) / 1024:.0f} kB and page {len(page) / 1024:.0f} kB "
                  f"drawn in {drawn:.2f} s  [{data['totals']['reported']:,} reported, "
                  f"{len(data['children'])} units ranked, {len(data['departments'])} departments, "
                  f"{len(data['hot_spots'])} hot spots, {data['patrol']['totals']['grids']:,} grids' compliance]",
                  flush=True)
            for note in data["notes"]:
                print(f"      note: {note[:160]}", flush=True)
        verdict = "met" if worst < TARGET_BULLETIN_S else "MISSED"
        print(f"   target: a bulletin under {TARGET_BULLETIN_S:.0f} s: {verdict} (worst {worst:.2f} s)", flush=True)

        print("3. the month's KPIs, leaving out the cases closed before it (this issue) and not", flush=True)
        tz = ZoneInfo(TZ)
        start = datetime.combine(first.replace(day=1), datetime.min.time(), tz)
        end = datetime.combine(first + timedelta(days=1), datetime.min.time(), tz)
        at = datetime.now(tz)

        def month_kpis() -> list[dict[str, Any]]:
            with engine.connect() as conn:
                return kpis_module.kpis(conn, "street", start, end, now=at, city_id=city_id)
        pruned = month_kpis()
        pruned_t = timed(month_kpis, 5)
        counted = kpis_module._COUNTED
        kpis_module._COUNTED = "true"  # every case reported before the month's end, as before
        try:
            whole = month_kpis()
            whole_t = timed(month_kpis, 5)
        finally:
            kpis_module._COUNTED = counted
        same = pruned == whole
        print(f"   by street, {month}: {ms(pruned_t)} leaving out; {ms(whole_t)} reading every case; "
              f"{statistics.median(whole_t) / statistics.median(pruned_t):.1f}× faster; the same figures: {same}",
              flush=True)
        engine.dispose()


if __name__ == "__main__":
    main()
