"""The failover drill: intake under load on the three-node cluster while its primary is killed, twice.

    make failover-drill     # or: .venv/bin/python bench/failover_drill.py [--rate 500] [--seconds 300]

On a local Patroni cluster of its own (``var/drill``: etcd and three nodes, one synchronous standby,
:mod:`gis.db.cluster`), the Nanjing demo is imported, divided and staffed; ``gridpatrol serve`` runs with two
worker processes, writes through the multi-host write URL and heavy reads through the replicas. A client drives
``POST /events`` on an open-loop schedule (report i due at i / rate seconds, whatever happened before), each
report with its idempotency key, retried until acknowledged, as in the durability run (bench/durability.py).

Faults, on the schedule's clock:

* at 60 s the primary's node is killed: SIGKILL of its PostgreSQL postmaster and of its Patroni (the machine is
  lost: a PostgreSQL killed alone is restarted in place by its own Patroni within seconds, which is no failover);
* at 120 s that node is started again: it rejoins as a replica (pg_rewind);
* at 180 s the new primary is killed the same way; at 240 s it comes back as a replica;
* where the machine allows it (root, ``ip netns``), each node runs as a host of its own in a network namespace
  (veth pairs on a bridge), and at 300 s the primary is cut off the network (its link down), at 360 s let back:
  the cut-off primary must stop taking writes (Patroni demotes it when it cannot renew its leader key) before the
  new one is elected, and no acknowledged report may be lost.

Meanwhile a leader reads the leaders' figures and the big screen's data every half second (heavy reads: the
replicas), and the replicas' lag is sampled every second from Patroni's REST API. At the end every acknowledged
report is looked up in the database: 0 lost and 0 duplicated are the targets, and the seconds of 503s around each
failover (target under 30 s). Not a test: ``make test`` does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdb import machine  # noqa: E402
from durability import Tally, count_stored, drive, make_reports, print_tally  # noqa: E402
from intake_bench import BENCH_PASSWORD, BENCH_USER, build_nanjing, city_boxes, serving  # noqa: E402

from gis.db.cluster import NODES, LocalCluster  # noqa: E402
from gis.db.engine import make_engine  # noqa: E402

PORT = 8767
DB = "gridpatrol_drill"
FAILING = ("503", "502", "504", "ConnectionRefusedError", "ConnectionError", "TimeoutError", "OSError",
           "IncompleteReadError")


@dataclass
class Reads:
    """The leader's reads during the drill: (seconds since the start, path, status, ms)."""
    seen: list[tuple[float, str, int, float]] = field(default_factory=list)


@dataclass
class Cut:
    """What the cut-off primary did: (seconds since the cut, it still takes writes, the leader others see)."""
    name: str = ""
    at: float = 0.0
    seen: list[tuple[float, bool, str | None]] = field(default_factory=list)


@dataclass
class Lag:
    """Patroni's view every second: (seconds, leader, {member: lag in bytes})."""
    seen: list[tuple[float, str | None, dict[str, int | None]]] = field(default_factory=list)


async def read_forever(port: int, token: str, started: float, reads: Reads, stop: asyncio.Event) -> None:
    paths = ["/leaders/figures?city=nanjing", "/screen/data?city=nanjing"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        i = 0
        while not stop.is_set():
            path = paths[i % len(paths)]
            i += 1
            t = time.perf_counter()
            try:
                status = (await client.get(path)).status_code
            except httpx.HTTPError:
                status = 0
            reads.seen.append((t - started, path.split("?")[0], status, (time.perf_counter() - t) * 1000))
            await asyncio.sleep(0.5)


async def watch_lag(cluster: LocalCluster, started: float, lag: Lag, stop: asyncio.Event) -> None:
    while not stop.is_set():
        members = await asyncio.to_thread(cluster.members)
        leader = next((m.name for m in members if m.role == "leader"), None)
        lag.seen.append((time.perf_counter() - started, leader,
                         {m.name: m.lag_bytes for m in members if m.role != "leader"}))
        await asyncio.sleep(1.0)


@dataclass
class Routing:
    """Where a worker sent the heavy reads, from ``/health`` every second: (seconds, replicas in use)."""
    seen: list[tuple[float, int]] = field(default_factory=list)


async def watch_routing(port: int, started: float, routing: Routing, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while not stop.is_set():
            t = time.perf_counter() - started
            try:
                replicas = (await client.get("/health")).json().get("replicas") or []
                routing.seen.append((t, sum(1 for r in replicas if r.get("used"))))
            except (httpx.HTTPError, ValueError):
                pass  # no answer in time: the intake's own figures show it
            await asyncio.sleep(1.0)


def takes_writes(cluster: LocalCluster, name: str) -> bool:
    """Whether node ``name``'s PostgreSQL is up and a primary (asked through its unix socket, which no network cut
    reaches)."""
    try:
        conn = cluster.connect(name)
    except Exception:  # stopped, restarting: it takes nothing
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT NOT pg_is_in_recovery()")
            return bool(cur.fetchone()[0])
    except Exception:
        return False
    finally:
        conn.close()


async def watch_cut(cluster: LocalCluster, cut: Cut, started: float, until: float) -> None:
    while time.perf_counter() - started < until:
        writable = await asyncio.to_thread(takes_writes, cluster, cut.name)
        others = [m for m in await asyncio.to_thread(cluster.members) if m.name != cut.name]
        leader = next((m.name for m in others if m.role == "leader"), None)
        cut.seen.append((time.perf_counter() - started - cut.at, writable, leader))
        await asyncio.sleep(0.5)


OUTAGE_GAP_S = 15.0
"""Failed tries further apart than this after the fault's own are not its outage: they are listed apart. Longer
than the client's timeout (10 s), so that the tries that hang at a cut-off primary, and fail when they time out,
belong to the cut's outage."""


def outage(tally: Tally, at: float, horizon: float = 90.0) -> tuple[float, float, int, list[float]]:
    """Around a fault at ``at``: (seconds from the first failed try to the last one of the fault's outage, the
    failed tries that follow one another less than :data:`OUTAGE_GAP_S` apart from the first; seconds from the
    fault to the first acknowledgement after them; how many tries failed in it; the times of failed tries later
    within ``horizon`` s, which are not the failover's)."""
    failed = sorted(t for t, outcome in tally.tries if at - 1 <= t <= at + horizon and outcome in FAILING)
    if not failed:
        return 0.0, 0.0, 0, []
    end = 1
    while end < len(failed) and failed[end] - failed[end - 1] < OUTAGE_GAP_S:
        end += 1
    last = failed[end - 1]
    ok_after = [t for t, outcome in tally.tries if t > last and outcome in ("200", "201")]
    return last - failed[0], (min(ok_after) if ok_after else last) - at, end, failed[end:]


async def run(args: argparse.Namespace, cluster: LocalCluster, write: str, read: str) -> int:
    engine = make_engine(write)
    boxes = city_boxes(engine)
    engine.dispose()
    run_id = uuid.uuid4().hex[:12]
    n = int(args.rate * args.seconds)
    reports = make_reports(boxes, args.rate, n, f"drill-{run_id}", "failover drill")
    tally, reads, lag, routing = Tally(), Reads(), Lag(), Routing()
    schedule = [(60.0, "kill"), (120.0, "start"), (180.0, "kill"), (240.0, "start")]
    if cluster.separate_hosts:
        schedule += [(300.0, "cut"), (360.0, "heal")]
    schedule = [(at, what) for at, what in schedule if at < args.seconds]
    marks = [(at, asyncio.Event()) for at, _ in schedule]
    log: list[tuple[float, str]] = []
    cut = Cut()
    watchers: list[asyncio.Task[None]] = []
    env = {"GRIDPATROL_READ_URL": read, "GRIDPATROL_REPLICA_MAX_LAG_S": str(args.max_lag)}
    with serving(write, PORT, args.workers, env) as token:
        print(f"driving {n:,} reports at {args.rate:,.0f}/s for {args.seconds} s over {args.connections} "
              f"connections, 2 workers; faults: " + ", ".join(f"{what} at {at:.0f} s" for at, what in schedule),
              flush=True)
        started = time.perf_counter()
        stop = asyncio.Event()

        async def faults() -> None:
            killed: list[str] = []
            for (_, what), (_, event) in zip(schedule, marks, strict=True):
                await event.wait()
                leader = await asyncio.to_thread(cluster.leader) if what in ("kill", "cut") else None
                if what in ("kill", "cut") and leader is None:
                    log.append((time.perf_counter() - started, f"no primary to {what}"))
                    continue
                if what == "kill" and leader is not None:
                    await asyncio.to_thread(cluster.kill_node, leader)
                    killed.append(leader)
                    log.append((time.perf_counter() - started, f"SIGKILL {leader} (the primary): PostgreSQL "
                                                                "and Patroni"))
                elif what == "cut" and leader is not None:
                    await asyncio.to_thread(cluster.partition, leader)
                    cut.name, cut.at = leader, time.perf_counter() - started
                    watchers.append(asyncio.create_task(watch_cut(cluster, cut, started, cut.at + 55)))
                    log.append((cut.at, f"cut {leader} (the primary) off the network"))
                elif what == "heal":
                    if cut.name:
                        await asyncio.to_thread(cluster.heal, cut.name)
                        log.append((time.perf_counter() - started, f"let {cut.name} back on the network"))
                elif killed:
                    name = killed[-1]
                    await asyncio.to_thread(cluster.start_node, name)
                    log.append((time.perf_counter() - started, f"start {name} again (rejoins as a replica)"))
                print(f"  {log[-1][0]:5.0f} s: {log[-1][1]}", flush=True)

        injector = asyncio.create_task(faults())
        # the leader signs in on their own: reads under the intake's token would count as its writer's, who reads
        # their own changes from the primary (api.consistency)
        leader_token = httpx.post(f"http://127.0.0.1:{PORT}/token", timeout=30, data={
            "username": BENCH_USER, "password": BENCH_PASSWORD}).json()["access_token"]
        reader = asyncio.create_task(read_forever(PORT, leader_token, started, reads, stop))
        watcher = asyncio.create_task(watch_lag(cluster, started, lag, stop))
        router = asyncio.create_task(watch_routing(PORT, started, routing, stop))
        elapsed = await drive(token, reports, args.rate, args.connections, tally, marks, port=PORT)
        stop.set()
        await injector
        for task in watchers:
            await task
        await reader
        await watcher
        await router
        async with httpx.AsyncClient(timeout=10) as client:
            health = (await client.get(f"http://127.0.0.1:{PORT}/health")).json()
    for name in NODES:  # a node still down (a run cut short before its restart) comes back as a replica
        await asyncio.to_thread(cluster.start_node, name)
    await asyncio.to_thread(cluster.wait_healthy, timeout_s=180, replicas=2)
    stored, doubled = count_stored(write, f"drill-{run_id}", "failover drill")
    lost = [k for k in tally.acked if k not in stored]
    wrong_id = [k for k, i in tally.acked.items() if k in stored and stored[k] != i]
    kills = [t for t, what in log if what.startswith(("SIGKILL", "cut"))]
    steady = [ms for t, ms in tally.latency_ms if not any(k - 1 <= t <= k + 60 for k in kills)]

    print(f"\nmachine: {machine()}")
    print_tally(n, tally, stored, doubled, lost, wrong_id)
    print(f"\nachieved {len(tally.acked) / elapsed:,.0f} acknowledged reports/s over {elapsed:.0f} s "
          f"(target {args.rate:,.0f}/s: {len(tally.acked) / elapsed / args.rate:.2f}x)")
    print("\nfaults and failovers:")
    for t, what in log:
        print(f"  {t:6.1f} s  {what}")
    worst = 0.0
    victims = [what.split()[1] for _, what in log if what.startswith(("SIGKILL", "cut"))]
    for k, victim in zip(kills, victims, strict=True):
        span, back, failed, later = outage(tally, k)
        worst = max(worst, back)
        new = next((leader for t, leader, _ in lag.seen if t > k and leader not in (None, victim)), None)
        print(f"  fault at {k:5.1f} s: failed tries from first to last {span:4.1f} s ({failed:,} tries: 503 or "
              f"refused), first acknowledgement {back:4.1f} s after the kill; new primary {new}"
              + (f"; {len(later)} more failed tries later, at {', '.join(f'{t:.1f}' for t in later[:8])} s "
                 f"(var/bench-serve-{PORT}.log says why)" if later else ""))
    split_brain = False
    if cut.seen:
        stopped = next((t for t, writable, _ in cut.seen if not writable), None)
        elected = next((t for t, _, leader in cut.seen if leader is not None), None)
        split_brain = any(writable and leader is not None for _, writable, leader in cut.seen)
        print(f"  the cut-off primary {cut.name} stopped taking writes {stopped:.1f} s after the cut; "
              f"the others elected a new primary {elected:.1f} s after it; two primaries at once: "
              f"{'YES' if split_brain else 'never'}" if stopped is not None and elected is not None else
              f"  the cut-off primary: stopped {stopped}, new primary {elected} (the drill ended first?)")
    if steady:
        print(f"latency away from the failovers (kill −1 s … +60 s left out): p50 {statistics.median(steady):.1f} ms, "
              f"p99 {float(np.percentile(steady, 99)):.1f} ms, {len(steady):,} reports")
    lags = [v for _, _, members in lag.seen for v in members.values() if v is not None]
    if lags:
        print(f"replicas' lag (Patroni, every second): median {statistics.median(lags) / 1024:,.0f} KiB, "
              f"p99 {float(np.percentile(lags, 99)) / 1024:,.0f} KiB, max {max(lags) / 2**20:,.1f} MiB")
    for path in sorted({p for _, p, _, _ in reads.seen}):
        mine = [(t, s, ms) for t, p, s, ms in reads.seen if p == path]
        ok = [ms for _, s, ms in mine if s == 200]
        gaps = [f"{t:.1f} s ({s or 'no answer'})" for t, s, _ in mine if s != 200]
        print(f"leader's reads {path}: {len(ok):,} of {len(mine):,} answered 200 "
              f"({len(ok) / max(1, len(mine)):.1%}), p50 {statistics.median(ok) if ok else 0:.0f} ms"
              + (f"; failed at {', '.join(gaps[:12])}" if gaps else "; never failed"))
    if routing.seen:
        none = [t for t, used in routing.seen if used == 0]
        print(f"heavy reads on a replica (a worker's /health every second): {len(routing.seen) - len(none)} of "
              f"{len(routing.seen)} samples" + (f"; on the primary at {', '.join(f'{t:.0f}' for t in none[:20])} s"
                                                if none else "; never on the primary"))
    print("replicas at the end (/health): " + "; ".join(f"{r['server']} {r['role']} staleness {r['staleness_s']} s "
                                                         f"used {r['used']}" for r in health.get("replicas", [])))
    print("outcomes of every try: " + ", ".join(f"{k} {v:,}" for k, v in sorted(tally.outcomes.items())))
    for line in tally.rejected[:5]:
        print(f"  refused: {line}")
    ok_run = (not lost and not doubled and not wrong_id and not tally.rejected and len(tally.acked) == n
              and not split_brain)
    print(f"\nRESULT: {'0 lost, 0 duplicated' if ok_run else 'FAILED: reports lost, duplicated or refused'}; "
          f"worst outage {worst:.1f} s (target under 30 s: {'met' if worst < 30 else 'MISSED'})")
    return 0 if ok_run and worst < 30 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="reports per second")
    parser.add_argument("--seconds", type=int, help="default 420 with separate hosts (the network cut at 300 s), "
                        "else 300")
    parser.add_argument("--one-host", action="store_true", help="no network namespaces (and so no network cut)")
    parser.add_argument("--workers", type=int, default=2, help="the service's worker processes")
    parser.add_argument("--connections", type=int, default=32, help="the client's connections")
    parser.add_argument("--max-lag", type=float, default=5.0, help="GRIDPATROL_REPLICA_MAX_LAG_S for the service")
    parser.add_argument("--keep", action="store_true", help="leave the drill's cluster running afterwards")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    hosts = not args.one_host and os.geteuid() == 0 and shutil.which("ip") is not None
    args.seconds = args.seconds or (420 if hosts else 300)
    cluster = LocalCluster.for_data_dir(ROOT / "var" / ("drill-hosts" if hosts else "drill"), separate_hosts=hosts)
    print(f"cluster in {cluster.root}" + (" (each node a host of its own: ip netns)" if hosts else
                                          " (one host: no network cut)"), flush=True)
    cluster.up(say=lambda what: print(f"starting {what}", flush=True))
    try:
        cluster.create_database(DB)
        write, read = cluster.urls(DB)
        engine = make_engine(write)
        from gis.db.migrate import upgrade

        upgrade(engine)
        with engine.connect() as conn:
            built = conn.execute(text("SELECT count(*) FROM grids")).scalar_one() > 0
        if not built:
            print("importing, dividing and staffing Nanjing on the cluster", flush=True)
            build_nanjing(engine)
        engine.dispose()
        code = asyncio.run(run(args, cluster, write, read))
    finally:
        if not args.keep:
            cluster.down()
    sys.exit(code)


if __name__ == "__main__":
    main()
