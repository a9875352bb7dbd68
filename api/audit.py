"""The audit log's writer and the middleware that records every change a request makes, refused ones too."""


from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sqlalchemy.engine import Engine

from gis.access.scope import User
from gis.access.store import audit as audit_log

log = logging.getLogger(__name__)

class AuditLog:
    """The audit log's writer: lines are queued by the request and written in batches, off the request path
    (``flush_every_s``), and on shutdown. A line is lost only if the process is killed within that time."""

    def __init__(self, engine: Engine, flush_every_s: float = 0.2) -> None:
        self.engine = engine
        self.every = flush_every_s
        self.queue: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    def add(self, user: User | None, action: str, **fields: Any) -> None:
        self.queue.append({"username": user.username if user else None, "role": user.role if user else None,
                           "action": action, **fields})

    def flush(self) -> None:
        batch = []
        while self.queue:
            batch.append(self.queue.popleft())
        if batch:
            try:
                audit_log.audit(self.engine, batch)
            except Exception:  # the database may be restarting: keep the lines for the next round
                self.queue.extendleft(reversed(batch))
                raise

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
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.flush)


Scope = MutableMapping[str, Any]


Message = MutableMapping[str, Any]


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
