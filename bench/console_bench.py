"""Console benchmark (issue 21): a street centre's console on the Siping-scale synthetic city (7,181 grids) holding
200,000 historic (closed) and 10,000 open cases, each figure against the bare query of the same rows in the same run.

    make bench      # or: .venv/bin/python bench/console_bench.py [--reuse] [--seconds 20]

1. the first page: what the console asks for when it opens (the queue, sorted by deadline, and the counts per
   state), answered by ``gridpatrol serve`` over HTTP, timed at the client (an upper bound on the server's time);
   the reference is the same two queries run bare through psycopg2;
2. a filter change (category, overdue, source, supervised): the queue asked again;
3. live: intake at 500 reports/s over HTTP (a fifth of them in the street) while the street's console follows
   ``GET /events/live``; the delay from a report's 201 (its commit) to its arrival on the console, p50/p95/max;
   the reference is the live stream's own poll query, bare.
Targets: the first page under 300 ms, a filter change under 200 ms, a new report on the console in under 1 s
(p95) at 500 reports/s. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2 as httpx  # noqa: E402
import numpy as np  # noqa: E402
import synthetic_city  # noqa: E402
from benchdb import bench_database, machine  # noqa: E402
from intake_bench import CATEGORIES, serving  # noqa: E402

from gis.access.store.users import create_user  # noqa: E402
from gis.db.engine import make_engine, writing  # noqa: E402
from gis.dispatch.rules import OPEN_STATES  # noqa: E402

PORT = 8766
HISTORIC, OPEN = 200_000, 10_000
RATE = 500
DESK, DESK_PASSWORD = "street-desk", "bench-password-not-secret"
TARGET_FIRST_S, TARGET_FILTER_S, TARGET_LIVE_S = 0.300, 0.200, 1.0


def load_cases(engine: Any) -> None:
    """200,000 closed cases of the last 300 days and 10,000 open ones of the last 10 days."""
    synthetic_city.load_cases(engine, [(HISTORIC, 300, True), (OPEN, 10, False)], CATEGORIES, seed=21)


def street_with_most_open(engine: Any) -> tuple[str, list[tuple[float, float, float, float]]]:
    with engine.connect() as conn:
        code = conn.exec_driver_sql(
            "SELECT su.code FROM events e JOIN admin_units su ON su.id = e.street_id WHERE e.state = ANY(%(o)s) "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1", {"o": list(OPEN_STATES)}).scalar_one()
        boxes = conn.exec_driver_sql(
            "SELECT ST_XMin(g.geom), ST_YMin(g.geom), ST_XMax(g.geom), ST_YMax(g.geom) FROM grids g "
            "WHERE g.code LIKE %(p)s", {"p": code + "%"}).all()
    return code, [tuple(b) for b in boxes]


def timed(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {np.percentile(values, 95) * 1000:.1f} ms"


def follow(base: str, token: str, arrived: dict[int, float], stop: threading.Event, ready: threading.Event) -> None:
    """The console's live stream, as the browser's EventSource reads it: the moment each case arrives."""
    with httpx.Client(timeout=None) as client, client.stream(
            "GET", f"{base}/events/live", headers={"Authorization": f"Bearer {token}"}) as stream:
        ready.set()
        for line in stream.iter_lines():
            if line.startswith("id: "):
                arrived[int(line[4:])] = time.perf_counter()
            if stop.is_set():
                return


async def send(base: str, token: str, seconds: float, street_boxes: list[Any], answered: dict[int, float],
               latencies: list[float]) -> int:
    """Reports at ``RATE`` a second for ``seconds``: a fifth inside the street, the rest anywhere in the city."""
    rng = np.random.default_rng(5)
    west, south, east, north = synthetic_city.bounds()
    failures = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=30) as client:
        async def one(i: int) -> None:
            nonlocal failures
            if rng.random() < 0.2:
                b = street_boxes[int(rng.integers(0, len(street_boxes)))]
                lon, lat = b[0] + rng.random() * (b[2] - b[0]), b[1] + rng.random() * (b[3] - b[1])
            else:
                lon, lat = west + rng.random() * (east - west), south + rng.random() * (north - south)
            body = {"location": {"type": "Point", "coordinates": [lon, lat]}, "source": "grid_member",
                    "category": CATEGORIES[i % len(CATEGORIES)], "description": f"bench {i}"}
            started = time.perf_counter()
            answer = await client.post("/events", json=body)
            done = time.perf_counter()
            if answer.status_code in (200, 201):
                answered[int(answer.json()["id"])] = done
                latencies.append(done - started)
            else:
                failures += 1

        tasks = []
        start = time.perf_counter()
        for i in range(int(RATE * seconds)):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep the synthetic city and cases of an earlier run")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long intake runs at 500/s")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with bench_database("gridpatrol_console_bench", reuse=args.reuse) as url:
        engine = make_engine(url)
        synthetic_city.build(engine)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one()
        if stored < HISTORIC + OPEN:
            load_cases(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        street, boxes = street_with_most_open(engine)
        with engine.connect() as conn:
            grids = conn.exec_driver_sql("SELECT count(*) FROM grids").scalar_one()
            total, open_ = conn.exec_driver_sql(
                "SELECT count(*), count(*) FILTER (WHERE state = ANY(%(o)s)) FROM events",
                {"o": list(OPEN_STATES)}).one()
            mine = conn.exec_driver_sql(
                "SELECT count(*) FROM events e JOIN admin_units su ON su.id = e.street_id WHERE su.code = %(s)s "
                "AND e.state = ANY(%(o)s)", {"s": street, "o": list(OPEN_STATES)}).scalar_one()
            if not conn.exec_driver_sql("SELECT 1 FROM users WHERE username = %(u)s", {"u": DESK}).first():
                writing(engine, create_user, DESK, DESK_PASSWORD, "dispatcher", unit=street)
        print(f"synthetic city: {grids:,} grids, {total:,} cases ({open_:,} open); street {street}'s centre: "
              f"{mine:,} open cases", flush=True)

        raw = engine.raw_connection()
        cur = raw.cursor()
        prefix = street + "%"
        open_list = list(OPEN_STATES)

        def bare_queue(extra: str = "", params: dict[str, Any] | None = None) -> None:
            cur.execute("SELECT * FROM event_rows v WHERE (v.grid LIKE %(p)s OR v.street LIKE %(p)s) "
                        f"AND v.state = ANY(%(o)s) {extra} ORDER BY v.due_at NULLS LAST, v.id LIMIT 500",
                        {"p": prefix, "o": open_list, **(params or {})})
            cur.fetchall()

        def bare_counts() -> None:
            cur.execute("SELECT v.state, count(*) FROM event_rows v WHERE (v.grid LIKE %(p)s OR v.street LIKE %(p)s) "
                        "AND v.state = ANY(%(o)s) GROUP BY 1", {"p": prefix, "o": open_list})
            cur.fetchall()

        with serving(url, PORT, 2, env={"GRIDPATROL_INTAKE_RATE": "0"}):
            base = f"http://127.0.0.1:{PORT}"
            token = httpx.post(f"{base}/token", data={"username": DESK, "password": DESK_PASSWORD},
                               timeout=30).json()["access_token"]
            client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            queue = "/events?" + "&".join(f"state={s}" for s in OPEN_STATES) + "&limit=500"
            for _ in range(3):  # warm both workers and the caches, as a console in use is
                client.get(queue).raise_for_status()
                client.get("/events/counts").raise_for_status()
            first = timed(lambda: (client.get(queue).raise_for_status(), client.get("/events/counts")
                                   .raise_for_status()), args.repeat)
            only_queue = timed(lambda: client.get(queue).raise_for_status(), args.repeat)
            reference = timed(lambda: (bare_queue(), bare_counts()), args.repeat)
            rows = len(client.get(queue).json())
            print(f"\n1. first page (queue of {rows} cases + counts): {ms(first)}; the queue alone {ms(only_queue)}")
            print(f"   reference, the same two queries bare: {ms(reference)}; "
                  f"{statistics.median(first) / statistics.median(reference):.1f}x the bare queries; "
                  f"vs target {TARGET_FIRST_S * 1000:.0f} ms: {statistics.median(first) / TARGET_FIRST_S:.2f}x "
                  f"(p95 {np.percentile(first, 95) / TARGET_FIRST_S:.2f}x)", flush=True)
            filters = {"category": ("&category=C01", "AND v.category = 'C01'"),
                       "overdue": ("&overdue=true", "AND v.state IN ('dispatched', 'handled') AND v.due_at < now()"),
                       "source": ("&source=hotline", "AND v.source = 'hotline'"),
                       "supervised": ("&supervised=true", "AND v.supervised_at IS NOT NULL")}
            print("2. a filter change:")
            worst = 0.0
            for name, (param, sql) in filters.items():
                answered_in = timed(lambda p=param: client.get(queue + p).raise_for_status(), args.repeat)
                bare = timed(lambda s=sql: bare_queue(s), args.repeat)
                worst = max(worst, statistics.median(answered_in))
                print(f"   {name}: {ms(answered_in)}; bare {ms(bare)}; "
                      f"{statistics.median(answered_in) / max(statistics.median(bare), 1e-6):.1f}x the bare query")
            print(f"   the slowest filter vs target {TARGET_FILTER_S * 1000:.0f} ms: {worst / TARGET_FILTER_S:.2f}x",
                  flush=True)

            arrived: dict[int, float] = {}
            answered: dict[int, float] = {}
            latencies: list[float] = []
            stop, ready = threading.Event(), threading.Event()
            reader = threading.Thread(target=follow, args=(base, token, arrived, stop, ready), daemon=True)
            reader.start()
            ready.wait(10)
            time.sleep(1.0)
            with engine.connect() as conn:
                last = conn.exec_driver_sql("SELECT max(id) FROM events").scalar_one()
            poll = timed(lambda: (cur.execute(
                "SELECT * FROM event_rows v WHERE (v.grid LIKE %(p)s OR v.street LIKE %(p)s) AND v.id > %(a)s "
                "ORDER BY v.id LIMIT 100", {"p": prefix, "a": last}), cur.fetchall()), args.repeat)
            started = time.perf_counter()
            failures = asyncio.run(send(base, token, args.seconds, boxes, answered, latencies))
            sent_s = time.perf_counter() - started
            time.sleep(2.0)  # the last poll
            stop.set()
            delays = [arrived[i] - answered[i] for i in answered if i in arrived]
            theirs = len(delays)
            print(f"3. live: {len(answered):,} reports in {sent_s:.1f} s ({len(answered) / sent_s:,.0f}/s, "
                  f"{failures} refused; intake answered in {ms(latencies)}); {theirs:,} of them the street's, each "
                  f"on its console after {ms(delays)}, max {max(delays) * 1000:.0f} ms" if delays else
                  "3. live: no report reached the console")
            if delays:
                p95 = float(np.percentile(delays, 95))
                print(f"   reference, the stream's poll query bare: {ms(poll)} (the stream polls every 0.5 s); "
                      f"vs target {TARGET_LIVE_S * 1000:.0f} ms (p95): {p95 / TARGET_LIVE_S:.2f}x", flush=True)
            client.close()
        raw.close()
        engine.dispose()


if __name__ == "__main__":
    main()
