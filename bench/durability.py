"""Durability run: intake under load through a PostgreSQL restart, then every acknowledged report counted.

    make durability     # or: .venv/bin/python bench/durability.py [--rate 1000] [--seconds 300] [--workers 2]

On the embedded server (it is restarted, so DATABASE_URL must be unset): the Nanjing demo is imported, divided and
staffed; ``gridpatrol serve`` runs with N worker processes; a client drives ``POST /events`` at a fixed rate over
loopback (open loop: report i is due at i / rate seconds, whatever happened before), each report with its own
idempotency key. Half-way through, PostgreSQL is stopped (``pg_ctl stop -m fast``: connections cut, in-flight
transactions rolled back) and started again. The client retries what was not acknowledged — a refused
connection, a 503, a timeout — with the same key, until it is. At the end it compares its acknowledgements with
the database: every acknowledged report stored (0 lost), under the id it was acknowledged with, and no report
stored twice (0 duplicated).

The client is a small HTTP/1.1 client on asyncio streams (Python's httpx costs more CPU per request than the
service does on this 2-core machine). Not a test: `make test` does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdb import bench_database  # noqa: E402
from intake_bench import build_nanjing, city_boxes, serving  # noqa: E402

from api.settings import Settings  # noqa: E402
from gis.db.embedded import EmbeddedPostgres  # noqa: E402
from gis.db.engine import make_engine  # noqa: E402

PORT = 8766
CATEGORIES = ["C01", "C02", "C03", "E01", "E02", "E03", "E05", "E06", "S01"]


@dataclass
class Report:
    key: str
    body: bytes
    due: float
    tries: int = 0


@dataclass
class Tally:
    acked: dict[str, int] = field(default_factory=dict)
    latency_ms: list[tuple[float, float]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    retried: set[str] = field(default_factory=set)
    rejected: list[str] = field(default_factory=list)
    tries: list[tuple[float, str]] = field(default_factory=list)
    """Every try: seconds since the start, and its outcome (a status, or the exception's name)."""


class Connection:
    """One keep-alive HTTP/1.1 connection to the service, reopened when it breaks."""

    def __init__(self, token: str, port: int = PORT) -> None:
        self.port = port
        self.head = (f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                     f"Authorization: Bearer {token}\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, timeout: float) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), timeout)
        assert self.reader is not None
        self.writer.write(self.head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await self.writer.drain()
        status_line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and "close" in value.lower():
                close = True
        payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def drive(token: str, reports: list[Report], rate: float, connections: int, tally: Tally,
                marks: list[tuple[float, asyncio.Event]], timeout: float = 10.0, port: int = PORT) -> float:
    """Send every report at its due time (or as soon as a connection is free), retrying until acknowledged; each
    mark's event is set when the schedule reaches its time (a fault to inject then)."""
    queue: asyncio.Queue[Report] = asyncio.Queue()
    started = time.perf_counter()
    pending = len(reports)
    done = asyncio.Event()

    async def produce() -> None:
        for report in reports:
            delay = started + report.due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for at, event in marks:
                if report.due >= at and not event.is_set():
                    event.set()
            queue.put_nowait(report)

    async def retry_later(report: Report) -> None:
        await asyncio.sleep(min(2.0, 0.1 * 2 ** min(report.tries, 5)) * random.uniform(0.5, 1.5))
        queue.put_nowait(report)

    async def work() -> None:
        nonlocal pending
        conn = Connection(token, port)
        while True:
            report = await queue.get()
            report.tries += 1
            sent = time.perf_counter()
            try:
                status, payload = await conn.post(report.body, timeout)
            except (TimeoutError, OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                conn.close()
                tally.outcomes[type(exc).__name__] += 1
                tally.tries.append((sent - started, type(exc).__name__))
                tally.retried.add(report.key)
                asyncio.get_running_loop().create_task(retry_later(report))
                continue
            tally.outcomes[str(status)] += 1
            tally.tries.append((sent - started, str(status)))
            if status in (200, 201) and report.key not in tally.acked:
                tally.acked[report.key] = int(json.loads(payload)["id"])
                tally.latency_ms.append((sent - started, (time.perf_counter() - sent) * 1000))
            elif status in (429, 502, 503, 504):
                tally.retried.add(report.key)
                asyncio.get_running_loop().create_task(retry_later(report))
                continue
            else:
                tally.rejected.append(f"{status} {payload[:200]!r}")
            pending -= 1
            if pending == 0:
                done.set()

    async def progress() -> None:
        while True:
            await asyncio.sleep(5)
            t = time.perf_counter() - started
            print(f"  {t:5.0f} s: {len(tally.acked):>9,} acknowledged, {pending:>7,} waiting, "
                  f"{len(tally.retried):,} retried; " + ", ".join(f"{k} {v:,}" for k, v in
                                                              sorted(tally.outcomes.items())), flush=True)

    workers = [asyncio.create_task(work()) for _ in range(connections)]
    producer = asyncio.create_task(produce())
    reporter = asyncio.create_task(progress())
    await done.wait()
    reporter.cancel()
    producer.cancel()
    for w in workers:
        w.cancel()
    return time.perf_counter() - started


def make_reports(boxes: list[tuple[float, float, float, float]], rate: float, n: int, prefix: str,
                 description: str) -> list[Report]:
    """``n`` reports at random places of the city's boxes, due one every 1/``rate`` s, keyed ``prefix-i``."""
    rng = random.Random(5)
    reports = []
    for i in range(n):
        b = rng.choice(boxes)
        body = {"location": {"type": "Point", "coordinates": [round(rng.uniform(b[0], b[2]), 7),
                                                              round(rng.uniform(b[1], b[3]), 7)]},
                "category": rng.choice(CATEGORIES), "source": "grid_member", "description": description,
                "idempotency_key": f"{prefix}-{i}"}
        reports.append(Report(body["idempotency_key"], json.dumps(body).encode(), i / rate))
    return reports


def count_stored(url: str, prefix: str, description: str) -> tuple[dict[str, int], int]:
    """The run's reports in the database (idempotency key: id), and how many are there twice."""
    engine = make_engine(url)
    with engine.connect() as conn:
        mine = {"p": f"{prefix}-%", "d": description}  # this run's (an earlier run's stay in a reused database)
        stored = dict(conn.execute(text("SELECT idempotency_key, id FROM events WHERE idempotency_key LIKE :p"),
                                   mine).all())
        # the unique key forbids two rows per key; a retry without it would show as a second row of the same text
        doubled = conn.execute(text("SELECT count(*) - count(DISTINCT idempotency_key) FROM events "
                                    "WHERE idempotency_key LIKE :p"), mine).scalar_one()
        doubled += conn.execute(text("SELECT count(*) FROM events WHERE description = :d AND "
                                     "idempotency_key IS NULL"), mine).scalar_one()
    engine.dispose()
    return stored, int(doubled)


def print_tally(n: int, tally: Tally, stored: dict[str, int], doubled: int, lost: list[str],
                wrong_id: list[str]) -> None:
    """The count of a run: sent, acknowledged, retried, refused, stored, lost, duplicated."""
    print(f"\n{'':<44}{'':>12}")
    for label, value in (("reports sent (first tries)", n), ("acknowledged (201, or 200 for a replay)",
                                                              len(tally.acked)),
                         ("retried at least once", len(tally.retried)), ("refused for good (4xx)", len(tally.rejected)),
                         ("stored in the database", len(stored)), ("LOST (acknowledged, not stored)", len(lost)),
                         ("DUPLICATED (stored twice)", doubled), ("acknowledged under another id", len(wrong_id)),
                         ("stored, never acknowledged", len(set(stored) - set(tally.acked)))):
        print(f"{label:<44}{value:>12,}")


def restart_database(server: EmbeddedPostgres, pause_s: float) -> tuple[float, float]:
    """Stop PostgreSQL (fast: cut every connection), wait, start it; the seconds it took to stop and to start."""
    t = time.perf_counter()
    server.stop()
    stopped = time.perf_counter() - t
    time.sleep(pause_s)
    t = time.perf_counter()
    server.start()
    return stopped, time.perf_counter() - t


async def run(args: argparse.Namespace, url: str, server: EmbeddedPostgres) -> int:
    engine = make_engine(url)
    boxes = city_boxes(engine)
    engine.dispose()
    run_id = uuid.uuid4().hex[:12]
    n = int(args.rate * args.seconds)
    reports = make_reports(boxes, args.rate, n, f"durability-{run_id}", "durability run")
    tally = Tally()
    restart = asyncio.Event()
    restart_at = args.seconds / 2
    with serving(url, PORT, args.workers, {"GRIDPATROL_INTAKE_RATE": "0"}) as token:
        print(f"driving {n:,} reports at {args.rate:,.0f}/s for {args.seconds} s over {args.connections} "
              f"connections; PostgreSQL restarts at {restart_at:.0f} s", flush=True)

        async def restarter() -> tuple[float, float, float]:
            await restart.wait()
            at = time.perf_counter()
            stopped, started = await asyncio.to_thread(restart_database, server, args.pause)
            return at, stopped, started

        restarting = asyncio.create_task(restarter())
        t0 = time.perf_counter()
        elapsed = await drive(token, reports, args.rate, args.connections, tally, [(restart_at, restart)])
        at, stopped, started = await restarting
    restart_offset = at - t0
    stored, doubled = count_stored(url, f"durability-{run_id}", "durability run")
    lost = [k for k in tally.acked if k not in stored]
    wrong_id = [k for k, i in tally.acked.items() if k in stored and stored[k] != i]
    steady = [ms for t, ms in tally.latency_ms if not restart_offset - 1 <= t <= restart_offset + 10]
    print_tally(n, tally, stored, doubled, lost, wrong_id)
    print(f"\nachieved {len(tally.acked) / elapsed:,.0f} acknowledged reports/s over {elapsed:.0f} s "
          f"(target {args.rate:,.0f}/s: {len(tally.acked) / elapsed / args.rate:.2f}x); PostgreSQL restart at "
          f"{restart_offset:.0f} s: stop {stopped:.1f} s, down {args.pause:.0f} s, start {started:.1f} s")
    if steady:
        print(f"latency away from the restart: p50 {statistics.median(steady):.1f} ms, "
              f"p99 {float(np.percentile(steady, 99)):.1f} ms")
    print("outcomes of every try: " + ", ".join(f"{k} {v:,}" for k, v in sorted(tally.outcomes.items())))
    for line in tally.rejected[:5]:
        print(f"  refused: {line}")
    ok = not lost and not doubled and not wrong_id and not tally.rejected and len(tally.acked) == n
    print("\nRESULT: " + ("0 lost, 0 duplicated: every acknowledged report is stored once" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="reports per second")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="the service's worker processes")
    parser.add_argument("--connections", type=int, default=32, help="the client's connections")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--reuse", action="store_true", help="keep the database (and city) of an earlier run")
    args = parser.parse_args()
    # a SIGTERM (kill, a CI timeout) unwinds like Ctrl-C: the server and its worker processes are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = Settings()
    if settings.database_url:
        sys.exit("the durability run restarts the embedded PostgreSQL: unset DATABASE_URL")
    server = EmbeddedPostgres.for_data_dir(ROOT / settings.data_dir, port=settings.pg_port)
    with bench_database("gridpatrol_durability", reuse=args.reuse) as url:
        engine = make_engine(url)
        with engine.connect() as conn:
            built = conn.execute(text("SELECT count(*) FROM grids")).scalar_one() > 0
        if not built:
            build_nanjing(engine)
        engine.dispose()
        code = asyncio.run(run(args, url, server))
    sys.exit(code)


if __name__ == "__main__":
    main()
