"""The audit log's writer and the middleware that records every change a request makes, refused ones too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from api.asgi import Message, Scope
from gis.access.scope import User
from gis.access.store import audit as audit_log
from gis.db.engine import writing

log = logging.getLogger(__name__)

MAX_QUEUED = 100_000
"""Lines a worker holds while the database cannot take them (a restart): beyond, the oldest are dropped, counted."""
SHUTDOWN_S = 5.0
"""The longest a shutdown waits for the last lines to be written."""


class AuditLog:
    """The audit log's writer: lines are queued by the request and written in batches, off the request path
    (``flush_every_s``), and on shutdown. A line is lost only if the process is killed within that time.

    Lines are cleaned before they are stored (:func:`gis.access.lines.clean_line`). A batch the database refuses
    for what it holds is written line by line, and a line refused on its own is *quarantined*: logged in full and
    counted (``quarantined``), never retried, never holding up the others. A batch that fails because the database
    cannot be reached is kept for the next round, up to ``MAX_QUEUED`` lines (then the oldest go, counted in
    ``dropped``); shutdown waits at most ``shutdown_s`` for the last write."""

    def __init__(self, engine: Engine, flush_every_s: float = 0.2, *, max_queued: int = MAX_QUEUED,
                 shutdown_s: float = SHUTDOWN_S) -> None:
        self.engine = engine
        self.every = flush_every_s
        self.max_queued = max_queued
        self.shutdown_s = shutdown_s
        self.queue: deque[dict[str, Any]] = deque()
        self.quarantined = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, user: User | None, action: str, **fields: Any) -> None:
        if len(self.queue) >= self.max_queued:
            self.queue.popleft()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.error("audit log queue full (%d lines): %d oldest line(s) dropped so far", self.max_queued,
                          self.dropped)
        self.queue.append({"username": user.username if user else None, "role": user.role if user else None,
                           "action": action, **fields})

    def figures(self) -> dict[str, int]:
        return {"queued": len(self.queue), "quarantined": self.quarantined, "dropped": self.dropped}

    def flush(self) -> None:
        batch = []
        while self.queue:
            batch.append(self.queue.popleft())
        if not batch:
            return
        try:
            writing(self.engine, audit_log.audit, batch)
        except DBAPIError as refused:
            if _transient(refused):  # the database may be restarting, or failing over: keep the lines for later
                self._requeue(batch)
                raise
            for i, line in enumerate(batch):  # something in the batch was refused: find it, write the rest
                try:
                    writing(self.engine, audit_log.audit, [line])
                except DBAPIError as exc:
                    if _transient(exc):
                        self._requeue(batch[i:])
                        raise
                    self.quarantined += 1
                    log.error("audit line refused by the database, quarantined (not retried): %r: %s",
                              {k: (str(v)[:500] if v is not None else None) for k, v in line.items()},
                              str(exc.orig).strip().splitlines()[0] if exc.orig else exc)

    def _requeue(self, lines: list[dict[str, Any]]) -> None:
        room = self.max_queued - len(self.queue)
        kept = lines[:max(room, 0)]
        self.dropped += len(lines) - len(kept)
        self.queue.extendleft(reversed(kept))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await asyncio.to_thread(self.flush)
            except Exception as exc:
                log.warning("audit log write failed (will retry): %s", exc)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await asyncio.wait_for(asyncio.to_thread(self.flush), timeout=self.shutdown_s)
        except TimeoutError:
            log.error("audit log: the last write took longer than %.0f s; stopped waiting for it", self.shutdown_s)
        except Exception as exc:
            log.error("audit log: %d line(s) could not be written at shutdown: %s", len(self.queue), exc)


class AuditMiddleware:
    """Every request that changes something (any method but GET, HEAD, OPTIONS) goes into the audit log with its
    user, path, status and what it created (the ``Location`` it answered with) — refused ones too."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[..., Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        seen: dict[str, Any] = {"status": None, "location": None}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"location":
                        seen["location"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            app = scope.get("app")
            audit = getattr(getattr(app, "state", None), "audit", None)
            if audit is not None:
                state = scope.get("state") or {}
                client = scope.get("client")
                audit.add(state.get("user"), "change", method=scope["method"], path=scope["path"],
                          status=seen["status"] or 500, subject=seen["location"] or scope["path"],
                          client=client[0] if client else None)


def _transient(exc: DBAPIError) -> bool:
    """A refusal that says nothing about the lines: the connection was lost, or the server is read-only (a
    replica, during a failover); marked so by ``gis.db.engine``."""
    return isinstance(exc, OperationalError) or bool(exc.connection_invalidated)
