"""Intake benchmark: reports over HTTP (single events) and from a file (bulk), on the Nanjing demo and on a
Siping-scale synthetic city of 7,181 grids.

    make bench      # or: .venv/bin/python bench/intake_bench.py [--seconds 20] [--workers 2] [--connections 16]

In one run, on one database: Nanjing is imported, divided and staffed; the synthetic city is built and staffed.
Then
1. the reference: a bare PostGIS point lookup (the grid containing a random point, lowest code), one connection,
   sequential, from Python: its rate and latencies are the floor any intake sits on;
2. single-event intake: ``gridpatrol serve`` (uvicorn, N worker processes) loaded by ``wrk`` (Debian's HTTP load
   generator, C, over loopback) with random points over both cities and random categories, for S seconds;
   printed: events/s, latency percentiles, the ratio to the reference, and a check that the database holds exactly
   as many new events as the load generator got 201s (none lost, none doubled); run 3 times, the median is the
   figure (the database is vacuumed and checkpointed first, as a running city's is);
3. bulk intake of 200,000 random events (CSV → validate → COPY → one spatial join), events/s: a historic file
   (90 % of its cases closed, as the files a city loads are: its past years; its closed cases become archive
   partitions, built side by side), imported 5 times (the median is the figure), then the same with every case
   still open (each open event enters the live table's indexes one by one: the dearer case). Before each import
   the server writes out what earlier steps left in memory (CHECKPOINT), so that no import pays for another's.
Targets (issue 4): ≥ 1,000 events/s with p99 under 50 ms over HTTP; bulk ≥ 50,000 events/s. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import synthetic_city  # noqa: E402
from benchdb import BENCH_CITIES, bench_database, upkeep_url  # noqa: E402

from gis.access.store.users import create_user  # noqa: E402
from gis.db.engine import make_engine, writing  # noqa: E402
from gis.demo.staff import seed_demo_staff  # noqa: E402
from gis.dispatch.store.bulk import bulk_intake, read_events_file  # noqa: E402
from gis.geo.cities import city_from_options  # noqa: E402
from gis.planning.store.divisions import divide_and_store  # noqa: E402
from gis.planning.store.importer import import_osm  # noqa: E402

PORT = 8765
CATEGORIES = ["C01", "C02", "C03", "E01", "E02", "E03", "E05", "E06", "S01", "S02"]
TARGET_RATE, TARGET_P99_MS, TARGET_BULK = 1000.0, 50.0, 50_000.0
CLOSED_SHARE = 0.9  # a historic file: most of its cases were closed long ago
LUA = """
local boxes = {%s}
local categories = {%s}
local token = "%s"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) %% 100000)
request = function()
  local b = boxes[math.random(#boxes)]
  local lon = b[1] + math.random() * (b[3] - b[1])
  local lat = b[2] + math.random() * (b[4] - b[2])
  local body = string.format('{"location":{"type":"Point","coordinates":[%%.7f,%%.7f]},"category":"%%s",' ..
    '"source":"grid_member","description":"bench"}', lon, lat, categories[math.random(#categories)])
  return wrk.format("POST", "/events", {["Content-Type"] = "application/json",
                                        ["Authorization"] = "Bearer " .. token}, body)
end
"""


def city_boxes(engine) -> list[tuple[float, float, float, float]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(g.geom)::geometry e "
            "FROM grids g JOIN admin_units c ON c.id = g.community_id GROUP BY c.city_id) s")).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def reference(url: str, boxes: list[tuple[float, float, float, float]], n: int = 5000) -> tuple[float, list[float]]:
    import psycopg2

    conn = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
    cur = conn.cursor()
    rng = random.Random(7)
    times = []
    started = time.perf_counter()
    for _ in range(n):
        b = rng.choice(boxes)
        x, y = rng.uniform(b[0], b[2]), rng.uniform(b[1], b[3])
        t = time.perf_counter()
        cur.execute("SELECT code FROM grids WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) "
                    "ORDER BY code LIMIT 1", (x, y))
        cur.fetchall()
        times.append((time.perf_counter() - t) * 1000)
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate, times


def parse_wrk(output: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    out = {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "75", "90", "99"):
        out[f"p{pct}"] = ms(re.search(rf"\s{pct}%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    out["requests"] = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out["non_2xx"] = float(bad.group(1)) if bad else 0.0
    errors = re.search(r"Socket errors: (.*)", output)
    out["socket_errors"] = errors.group(1) if errors else "none"  # type: ignore[assignment]
    return out


BENCH_USER, BENCH_PASSWORD = "bench", "bench-password-not-secret"


@contextmanager
def serving(url: str, port: int, workers: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """``gridpatrol serve`` on ``port`` with ``workers`` processes over ``url``; yields a bench admin's token."""
    engine = make_engine(url)
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": BENCH_USER}).first()
    if not exists:
        writing(engine, create_user, BENCH_USER, BENCH_PASSWORD, "admin")
    engine.dispose()
    # one load generator stands for a whole city's clients: no per-client intake limit
    env = {**os.environ, "DATABASE_URL": url, "GRIDPATROL_ESCALATE_EVERY_S": "0", "GRIDPATROL_INTAKE_RATE": "0",
           **(env or {})}
    # the server's log goes to a file: a pipe nobody reads fills up (64 kB of "connection lost" warnings during a
    # database restart) and then blocks the server's event loop on its next log line
    log_path = ROOT / "var" / f"bench-serve-{port}.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gridpatrol"), "serve", "--port", str(port),
                               "--workers", str(workers), "--no-access-log"], env=env,
                              stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"the server did not come up: see {log_path}")
        answer = httpx.post(f"http://127.0.0.1:{port}/token", timeout=30,
                            data={"username": BENCH_USER, "password": BENCH_PASSWORD})
        answer.raise_for_status()
        yield str(answer.json()["access_token"])
    finally:
        server.terminate()
        server.wait(60)
        log.close()


def http_run(url: str, boxes, seconds: int, workers: int, connections: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    with serving(url, PORT, workers) as token:
        script = LUA % (", ".join("{{{!r}, {!r}, {!r}, {!r}}}".format(*b) for b in boxes),
                        ", ".join(f'"{c}"' for c in CATEGORIES), token)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(script)
        subprocess.run(["wrk", "-t1", "-c4", "-d3s", "-s", handle.name, f"http://127.0.0.1:{PORT}"],  # warm-up
                       capture_output=True, text=True, check=True)
        counter = make_engine(url)
        with counter.connect() as conn:
            before = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        run = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", handle.name,
                              f"http://127.0.0.1:{PORT}"], capture_output=True, text=True, check=True)
        os.unlink(handle.name)
        # each worker's intake queue: how many database calls the reports went in (/health answers from one
        # worker at a time; a few asks reach both)
        seen = {}
        for _ in range(8):
            figures = httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=5).json().get("intake", {})
            seen[figures.get("process")] = figures
        batches = sum(f.get("batches", 0) for f in seen.values())
        reports = sum(f.get("reports", 0) for f in seen.values())
        with counter.connect() as conn:
            after = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
        counter.dispose()
        result = parse_wrk(run.stdout)
        result["stored"] = float(after - before)
        result["workers_seen"], result["mean_batch"] = float(len(seen)), reports / batches if batches else 0.0
        return result


def bulk_run(engine, boxes, n: int = 200_000, closed: float = CLOSED_SHARE) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """A file of ``n`` historic events at random points of both cities over 300 days; ``closed`` of them closed
    1 to 120 hours after they were reported (some of them late), the rest still open."""
    rng = np.random.default_rng(11)
    which = rng.integers(0, len(boxes), n)
    b = np.array(boxes)[which]
    reported = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 300 * 86400, n), "s")
    closed_at = pd.Series(reported + pd.to_timedelta(rng.integers(3600, 120 * 3600, n), "s"))
    frame = pd.DataFrame({
        "category": rng.choice(CATEGORIES, n),
        "lon": b[:, 0] + rng.random(n) * (b[:, 2] - b[:, 0]),
        "lat": b[:, 1] + rng.random(n) * (b[:, 3] - b[:, 1]),
        "reported_at": reported,
        "closed_at": closed_at.where(rng.random(n) < closed),
    })
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False)
    settle(engine.url.render_as_string(hide_password=False))
    started = time.perf_counter()
    rows = read_events_file(buffer.getvalue(), "bench.csv")
    validated = time.perf_counter() - started
    report = bulk_intake(engine, rows, source_name="bench.csv")
    total = time.perf_counter() - started
    return {"rows": n, "validate_s": validated, "store_s": report.seconds, "total_s": total, "rate": n / total,
            "in_grid": report.in_grid, "nearest": report.nearest, "street": report.street_queue,
            "closed": report.closed, "archives": len(report.archives)}


def settle(url: str, *, vacuum: bool = False) -> None:
    """Write out what earlier steps left in memory (the cities' build, the previous run's rows) before a timed
    run, so that it does not pay for a checkpoint of someone else's writes; with ``vacuum``, first vacuum and
    analyse every table, so that autovacuum has nothing of the set-up's left to do during the measured run.
    Both need the tables' owner or a superuser: the embedded server's own (elsewhere, as the service's role, the
    run goes on unsettled)."""
    engine = make_engine(upkeep_url(url))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn, contextlib.suppress(DBAPIError):
        if vacuum:
            conn.exec_driver_sql("VACUUM ANALYZE")
        conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()


def build_nanjing(engine) -> int:  # type: ignore[no-untyped-def]
    """The demo city, imported, divided and staffed; its id."""
    import_osm(engine, ROOT / "data" / "nanjing-xinjiekou.osm",
               city=city_from_options("nanjing", **BENCH_CITIES["nanjing"]))
    with engine.connect() as conn:
        nanjing = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(engine, nanjing)
    seed_demo_staff(engine, nanjing)
    return int(nanjing)


def build_cities(engine) -> None:  # type: ignore[no-untyped-def]
    build_nanjing(engine)
    siping = synthetic_city.build(engine)
    seed_demo_staff(engine, siping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--bulk-rows", type=int, default=200_000)
    parser.add_argument("--bulk-repeats", type=int, default=5, help="imports of the historic file (their median "
                        "is the figure: this machine's speed wanders by a third from minute to minute)")
    parser.add_argument("--http-repeats", type=int, default=3, help="HTTP runs (the median is the figure: "
                        "the p99 of one 20-second run on a shared 2-core machine wanders between 25 and 130 ms)")
    parser.add_argument("--skip-http", action="store_true", help="only the reference and the bulk intake")
    parser.add_argument("--skip-bulk", action="store_true", help="only the reference and the HTTP intake")
    parser.add_argument("--reuse", action="store_true", help="keep the database of an earlier run (its cities "
                        "and the events stored since) instead of building it again: for quick iterations")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: bash scripts/install-system-deps.sh --bench")
    with bench_database("gridpatrol_intake_bench", reuse=args.reuse) as url:
        engine = make_engine(url)
        t = time.perf_counter()
        with engine.connect() as conn:
            built = conn.execute(text("SELECT count(*) FROM admin_units WHERE level = 'city'")).scalar_one() == 2
        if not built:
            build_cities(engine)
        with engine.connect() as conn:
            grids = conn.execute(text("SELECT count(*) FROM grids")).scalar_one()
        print(f"set-up: Nanjing demo + synthetic Siping, {grids:,} grids, with staff "
              f"({'reused' if built else f'{time.perf_counter() - t:.0f} s'})")
        boxes = city_boxes(engine)
        ref_rate, ref_times = reference(url, boxes)
        ref_p50, ref_p99 = statistics.median(ref_times), float(np.percentile(ref_times, 99))
        print(f"\n{'job':<58}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        print(f"{'reference: bare PostGIS point lookup (1 connection)':<58}{ref_rate:>10,.0f}{ref_p50:>9.2f}"
              f"{ref_p99:>9.2f}", flush=True)
        if not args.skip_http:
            settle(url, vacuum=True)
            runs = []
            for i in range(args.http_repeats):
                http = http_run(url, boxes, args.seconds, args.workers, args.connections)
                runs.append(http)
                label = (f"HTTP intake: {args.workers} workers, wrk {args.connections} connections, {args.seconds} s"
                         + (f" ({i + 1})" if args.http_repeats > 1 else ""))
                print(f"{label:<58}{http['rate']:>10,.0f}{http['p50']:>9.2f}{http['p99']:>9.2f}")
                # wrk counts the responses it received in time; requests still in flight when it stops are stored
                # too (at most one per connection), so stored = answered + [0, connections]
                answered = http["requests"] - http["non_2xx"]
                ok = answered <= http["stored"] <= answered + args.connections
                print(f"    {http['requests']:,.0f} requests, {http['non_2xx']:,.0f} non-2xx, socket errors: "
                      f"{http['socket_errors']}; {http['stored']:,.0f} events stored "
                      f"({'every 201 stored, none lost or doubled' if ok else 'MISMATCH'}); "
                      f"{http['mean_batch']:.1f} reports per database call (warm-up included; "
                      f"{http['workers_seen']:.0f} of {args.workers} workers' counts seen)", flush=True)
            rate = statistics.median(r["rate"] for r in runs)
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            if len(runs) > 1:
                print(f"{f'HTTP intake: median of {len(runs)} runs':<58}{rate:>10,.0f}{p50:>9.2f}{p99:>9.2f}")
                print(f"    p99 of the runs: {', '.join(format(r['p99'], '.1f') for r in runs)} ms "
                      "(the first run fills a freshly built database: on this machine its p99 wanders most)")
            print(f"    vs target {TARGET_RATE:,.0f}/s: {rate / TARGET_RATE:.2f}x; "
                  f"p99 vs {TARGET_P99_MS:.0f} ms: {p99 / TARGET_P99_MS:.2f}x; "
                  f"vs the bare lookup: {rate / ref_rate:.2f}x the rate, "
                  f"{p50 / ref_p50:.1f}x the median latency", flush=True)
        if args.skip_bulk:
            engine.dispose()
            return
        for share, repeats in ((CLOSED_SHARE, args.bulk_repeats), (0.0, 1)):
            what = f"{share:.0%} closed" if share else "all still open"
            runs = []
            for i in range(repeats):
                bulk = bulk_run(engine, boxes, args.bulk_rows, share)
                runs.append(bulk)
                label = f"bulk intake: {args.bulk_rows:,} rows CSV, {what}" + (f" ({i + 1})" if repeats > 1 else "")
                print(f"{label:<58}{bulk['rate']:>10,.0f}")
                print(f"    validate {bulk['validate_s']:.2f} s + store {bulk['store_s']:.2f} s; "
                      f"{bulk['in_grid']:,} in a grid, {bulk['nearest']:,} nearest, {bulk['street']:,} street queue, "
                      f"{bulk['closed']:,} closed, {bulk['archives']} archive partition(s); "
                      f"vs the bare lookup: {bulk['rate'] / ref_rate:.1f}x", flush=True)
            rate = statistics.median(r["rate"] for r in runs)
            if repeats > 1:
                print(f"{f'bulk intake, {what}: median of {repeats}':<58}{rate:>10,.0f}")
            print(f"    vs target {TARGET_BULK:,.0f}/s: {rate / TARGET_BULK:.2f}x", flush=True)
        engine.dispose()


if __name__ == "__main__":
    main()
