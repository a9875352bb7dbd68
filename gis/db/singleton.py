"""Background work done once, by whichever service instance holds the lock.

Every worker process of every service instance runs the same timers (the escalation run). :class:`BackgroundLock`
is a PostgreSQL session advisory lock, taken on a connection of its own to the primary and kept: the instance that
holds it does the work, the others skip their turn. When the holder dies, or the primary does (a failover), its
session ends and the lock with it; the next instance to try takes it on the new primary.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable 32-bit advisory-lock key for ``name`` (distinct from the bulk import's per-token keys)."""
    return zlib.crc32(f"gridpatrol:{name}".encode())


class BackgroundLock:
    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self._raw: Any = None

    def held(self) -> bool:
        """Whether this instance holds the lock now: checks that the connection holding it is alive, or tries to
        take it. Never waits for another holder."""
        if self._raw is not None:
            try:
                cur = self._raw.cursor()
                cur.execute("SELECT 1")
                cur.close()
                self._raw.commit()
                return True
            except Exception:
                log.warning("lost the %s lock (its connection broke)", self.name)
                self._drop()
        try:
            raw = self.engine.raw_connection()
        except SQLAlchemyError as exc:
            log.debug("%s lock: no database: %s", self.name, exc)
            return False
        try:
            cur = raw.cursor()
            cur.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
            row = cur.fetchone()
            got = bool(row and row[0])
            cur.close()
            raw.commit()  # a session lock: it outlives the transaction
        except Exception:
            raw.invalidate()
            return False
        if not got:
            raw.close()
            return False
        self._raw = raw
        log.info("this instance now runs the %s", self.name)
        return True

    def _drop(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()  # the session ends: the lock goes with it

    def release(self) -> None:
        self._drop()
