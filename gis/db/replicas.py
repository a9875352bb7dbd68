"""Reads spread over streaming replicas, never staler than a setting, and never missing the reader's own change.

:class:`ReadRouter` keeps one small pool per replica (the hosts of the read URL, one engine each) and a monitor
that, every second, samples the primary's WAL position (``pg_current_wal_lsn``) and each replica's replayed
position (``pg_last_wal_replay_lsn``). A replica's **staleness** is the time since the first sample it has not yet
replayed: it holds everything the primary held before then, and lacks something written since. (A clock-free
measure: it needs no clock on the replica, and a replica idle with its primary is 0 s stale, where
``now() - pg_last_xact_replay_timestamp()`` would grow.)

:meth:`ReadRouter.engine` gives a read a replica whose staleness is within ``max_lag_s``, in turn; otherwise the
primary. A reader who has just written (``after``: the time of their last change, from a cookie or the worker's
memory, see ``api.consistency``) gets a replica only once it holds a sample taken after that change: until then
(a second or two) the primary. So a page never shows a user's own change as missing.

When the primary cannot be sampled (it died; a failover is under way; it lost etcd and turned read-only)
nothing new can be written: the newest WAL a replica has replayed is the newest there is, a replica holding it
is as fresh as any, and reads go on from it (a service started while there is no primary reads too). A replica
that cannot be reached is left out until it answers again.

The monitor probes over connections of its own (one per server), never from the pools the reads and writes use:
under load (a leader's heavy page holding every replica connection for seconds, intake holding the primary's) a
probe waiting for a pooled connection would let a healthy replica's figure age past the setting, and the reads
would all go to the primary, which is the one server that may be about to fail.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from gis.db.engine import make_engine, nodes_of, url_hosts

log = logging.getLogger(__name__)

_PRIMARY_OF: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def primary_of(engine: Engine) -> Engine:
    """The primary's engine behind a replica's (a read that must write: a shared cache's result), or the engine
    itself."""
    return _PRIMARY_OF.get(engine, engine)


SAMPLE_EVERY_S = 1.0
HISTORY = 900
"""Samples of the primary's position kept (15 minutes at one a second): a replica further behind is stale anyway."""


def split_hosts(url: str) -> list[str]:
    """One single-host URL per host of a libpq multi-host URL (``?host=a:1&host=b:2``), each without
    ``target_session_attrs`` (the router asks each server what it is itself)."""
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if k not in ("host", "port", "target_session_attrs")}
    if "host" not in parsed.query:
        return [parsed.set(query=query).render_as_string(hide_password=False)]
    return [parsed.set(query={**query, "host": host, **({"port": port} if port else {})})
            .render_as_string(hide_password=False) for host, port in url_hosts(url)]


def _leave_out(replica: Replica) -> Callable[[Any], None]:
    """A replica whose connection was lost, or that refused a new one, is left out of the reads at once (not at
    the monitor's next round): the read that met it is tried again elsewhere (``api.consistency.RetryReads``).

    A refusal counts too: a pool that held no connection to a replica when it died (each request takes its turn
    twice, its sign-in check's and its read's, so one pool may hold connections to one replica only) meets
    "connection refused" or a connect timeout, which SQLAlchemy does not call a disconnect. Left in, every turn
    that lands on it would fail again until the monitor's next round."""
    def lost(context: Any) -> None:
        connecting = context.connection is None and isinstance(context.original_exception, psycopg2.OperationalError)
        if context.is_disconnect or connecting:
            replica.reachable = False
    return lost


@dataclass
class Replica:
    url: str
    engine: Engine
    probe: Engine
    """The monitor's own connection to it (see the module's notes)."""
    reachable: bool = False
    standby: bool = True
    replayed: int = -1
    """The last WAL position it had replayed (bytes), when it was last asked."""
    label: str = ""

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)


@dataclass
class ReadRouter:
    primary: Engine
    primary_probe: Engine
    """The monitor's own connection to the primary (over the write URL; see the module's notes)."""
    replicas: list[Replica] = field(default_factory=list)
    max_lag_s: float = 5.0
    every_s: float = SAMPLE_EVERY_S
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _replica_thread: threading.Thread | None = None
    _primary_at: float = 0.0
    """When the primary last answered the monitor (time.time())."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _on_primary: bool = False
    """Whether the last read that could have used a replica went to the primary (for the log)."""

    @classmethod
    def build(cls, primary: Engine, read_url: str | None, *, max_lag_s: float = 5.0, connections: int = 4,
              start: bool = True) -> ReadRouter:
        """A router over the hosts of ``read_url`` (none: every read goes to ``primary``)."""
        replicas = [Replica(url=u, engine=make_engine(u, connections=connections), label=nodes_of(u),
                            probe=make_engine(u, connections=1)) for u in split_hosts(read_url)] if read_url else []
        for replica in replicas:
            _PRIMARY_OF[replica.engine] = primary
            event.listen(replica.engine, "handle_error", _leave_out(replica))
        # an engine connects only when first used: without replicas (no monitor) the probe never does
        router = cls(primary=primary, replicas=replicas, max_lag_s=max_lag_s,
                     primary_probe=make_engine(primary.url.render_as_string(hide_password=False), connections=1))
        if replicas and start:
            router.start()
        return router

    # -- the monitor ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.check()
        # two loops: a probe of the primary that hangs (a node cut off the network answers nothing until TCP gives
        # up) must not stop the replicas' probes, or their staleness would seem to grow
        self._thread = threading.Thread(target=self._watch, args=(self.sample_primary,), name="primary-monitor",
                                        daemon=True)
        self._thread.start()
        self._replica_thread = threading.Thread(target=self._watch, args=(self.sample_replicas,),
                                                name="replica-monitor", daemon=True)
        self._replica_thread.start()

    def _watch(self, probe: Callable[[], None]) -> None:
        while not self._stop.wait(self.every_s):
            probe()

    def check(self) -> None:
        """One round: the primary's position, then each replica's (errors only mark what did not answer)."""
        self.sample_primary()
        self.sample_replicas()

    def sample_primary(self) -> None:
        now = time.time()
        try:
            with self.primary_probe.connect() as conn:
                lsn = conn.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")).scalar()
            with self._lock:
                if self._samples and int(lsn or 0) < self._samples[-1][1]:
                    self._samples.clear()  # a new primary that never had the old one's last WAL: a new history
                self._samples.append((now, int(lsn or 0)))
                self._primary_at = time.time()
        except SQLAlchemyError as exc:
            log.debug("replica monitor: the primary did not answer: %s", exc)
            # its connection may now be to a demoted node, which answers but cannot say the WAL position: the next
            # probe connects afresh, to whichever node is the primary then
            self.primary_probe.dispose()

    def sample_replicas(self) -> None:
        for replica in self.replicas:
            try:
                with replica.probe.connect() as conn:
                    standby, replayed = conn.execute(text(
                        "SELECT pg_is_in_recovery(), coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), "
                        "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'))::bigint")).one()
                replica.reachable, replica.standby, replica.replayed = True, bool(standby), int(replayed)
            except SQLAlchemyError as exc:
                if replica.reachable:
                    log.warning("%s (%s) does not answer: reads leave it (%s)", replica.label, replica.describe(),
                                str(exc).splitlines()[0])
                replica.reachable = False
                replica.probe.dispose()
        now = time.time()
        if now - self._primary_at > 2 * self.every_s:
            # no primary for two rounds (it died, or lost etcd and turned read-only, or hangs cut off): nothing new
            # can be written, so the newest WAL any replica has replayed is the newest there is, and a replica
            # holding it is fresh
            known = [r.replayed for r in self.replicas if r.reachable and r.standby]
            with self._lock:
                newest = max([*known, self._samples[-1][1] if self._samples else -1])
                if newest >= 0:
                    self._samples.append((now, newest))

    # -- what a read gets -----------------------------------------------------------------------------------

    def covered_until(self, replica: Replica) -> float | None:
        """The time of the latest sample the replica has replayed (it holds everything written before it), or
        None when it holds none of those kept."""
        with self._lock:
            samples = list(self._samples)
        if not samples:
            return None
        positions = [lsn for _, lsn in samples]
        i = bisect.bisect_right(positions, replica.replayed)
        return samples[i - 1][0] if i else None

    def staleness(self, replica: Replica, now: float | None = None) -> float | None:
        """Seconds since the first sample the replica has not replayed (0: it has them all); None: unknown."""
        with self._lock:
            samples = list(self._samples)
        if not samples or not replica.reachable:
            return None
        if not replica.standby or replica.replayed >= samples[-1][1]:
            return 0.0
        positions = [lsn for _, lsn in samples]
        i = bisect.bisect_right(positions, replica.replayed)
        if i == 0:
            return None  # behind everything kept: a quarter of an hour or more
        return (now or time.time()) - samples[i][0]

    def usable(self, after: float | None = None) -> list[Replica]:
        out = []
        now = time.time()
        for replica in self.replicas:
            if not replica.standby:  # the read URL also names the primary (after a failover, say): reads that
                continue  # fall back to the primary use the write pool
            stale = self.staleness(replica, now)
            if stale is None or stale > self.max_lag_s:
                continue
            if after is not None:
                until = self.covered_until(replica)
                if until is None or until <= after:
                    continue
            out.append(replica)
        return out

    def engine(self, after: float | None = None) -> Engine:
        """The engine a heavy read should use: a fresh enough replica in turn, else the primary."""
        if not self.replicas:
            return self.primary
        usable = self.usable(after)
        if not usable:
            if after is None and not self._on_primary:
                self._on_primary = True  # said once, until a replica is in use again
                log.warning("heavy reads go to the primary: no replica fresh enough (%s)", "; ".join(
                    f"{r['server']} {r['role'] or 'unreachable'} staleness {r['staleness_s']} s"
                    for r in self.report()))
            return self.primary
        if after is None and self._on_primary:
            self._on_primary = False
            log.warning("heavy reads are on the replicas again")
        return usable[next(self._turn) % len(usable)].engine

    def report(self) -> list[dict[str, object]]:
        """Each replica's state, for ``/health`` and the CLI."""
        now = time.time()
        return [{"server": r.label, "url": r.describe(), "reachable": r.reachable,
                 "role": ("standby" if r.standby else "primary") if r.reachable else None,
                 "staleness_s": None if (s := self.staleness(r, now)) is None else round(s, 2),
                 "used": r in self.usable()} for r in self.replicas]

    def close(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._replica_thread):
            if thread is not None:
                thread.join(timeout=5)
        for replica in self.replicas:
            replica.engine.dispose()
            replica.probe.dispose()
        self.primary_probe.dispose()
