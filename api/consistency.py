"""Read-your-writes over replicas: a reader who has just changed something reads from a server that holds it.

Every successful change (a request that is not GET, HEAD or OPTIONS, answered below 400) is remembered with its
time: in a cookie (``gp_wrote``: browsers, so the pages, send it back to whichever worker or instance answers
next) and in the worker's memory under the request's credentials (API clients without cookies that come back to
the same worker). A heavy read (:func:`get_read_engine`) then asks :class:`gis.db.replicas.ReadRouter` for a
replica that holds a sample of the primary taken after that time; until one does (a second or two), the read
goes to the primary.

Without a read URL (one database), none of this runs: the middleware is not installed and every read goes to the
one engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection, Engine
from starlette.types import Message, Scope

from api.session import TOKEN_COOKIE

COOKIE = "gp_wrote"
REMEMBER_S = 900
"""How long a change steers its author's reads: longer than any replica may lag (``replica_max_lag_s``)."""
SAFE = {"GET", "HEAD", "OPTIONS"}


def _who(headers: list[tuple[bytes, bytes]] | Request) -> str | None:
    """The request's credentials, hashed (a bearer token, or the sign-in cookie), or None."""
    if isinstance(headers, Request):
        value = headers.headers.get("authorization") or headers.cookies.get(TOKEN_COOKIE)
    else:
        value = next((v.decode("latin-1") for k, v in headers if k.lower() == b"authorization"), None)
        if value is None:
            cookie = next((v.decode("latin-1") for k, v in headers if k.lower() == b"cookie"), "")
            value = next((part.strip() for part in cookie.split(";") if part.strip().startswith(f"{TOKEN_COOKIE}=")),
                         None)
    return hashlib.sha256(value.encode()).hexdigest()[:32] if value else None


class Writes:
    """When each set of credentials last changed something (this worker's memory)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def mark(self, who: str | None, at: float) -> None:
        if who is None:
            return
        if len(self._last) > 50_000:  # forget the ones too old to matter
            cutoff = at - REMEMBER_S
            self._last = {k: v for k, v in self._last.items() if v >= cutoff}
        self._last[who] = at

    def last(self, who: str | None) -> float | None:
        return self._last.get(who) if who else None


class MarkWrites:
    """ASGI middleware: a successful change sets the ``gp_wrote`` cookie and is remembered (see the module)."""

    def __init__(self, app: Callable[..., Awaitable[None]], writes: Writes) -> None:
        self.app = app
        self.writes = writes

    async def __call__(self, scope: Scope, receive: Callable[..., Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE:
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                at = time.time()  # after the change committed: the endpoint answers once it has
                self.writes.mark(_who(scope["headers"]), at)
                cookie = f"{COOKIE}={at:.3f}; Path=/; Max-Age={REMEMBER_S}; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, marked)


class RetryReads:
    """ASGI middleware: a read (GET, HEAD) whose database connection was lost (a replica restarting to follow a
    new primary, or dying) is answered once more, on fresh connections, before the client sees a 503: the router
    has left that replica out meanwhile (``ReadRouter`` marks a replica down on a lost connection). Reads change
    nothing, so trying again is safe; a stream that already began is never replayed."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[..., Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def first(message: Message) -> None:
            if held or (message["type"] == "http.response.start" and message["status"] == 503):
                held.append(message)  # kept back until it is known whether this try counts
                return
            await send(message)

        await self.app(scope, receive, first)
        if not held:
            return
        if not scope.get("state", {}).pop("database_lost", False):
            for message in held:
                await send(message)
            return
        await self.app(scope, receive, send)


def wrote_at(request: Request) -> float | None:
    """When the reader last changed something, as far as this request tells (cookie, or this worker's memory)."""
    times = []
    cookie = request.cookies.get(COOKIE)
    if cookie:
        with contextlib.suppress(ValueError):
            times.append(float(cookie))
    writes: Writes | None = getattr(request.app.state, "writes", None)
    if writes is not None and (remembered := writes.last(_who(request))) is not None:
        times.append(remembered)
    return max(times) if times else None


async def get_read_engine(request: Request) -> Engine:
    """The engine of a heavy read (maps, tiles, leaders' figures, KPIs, coverage, bulletins, Open311 GETs): a
    replica fresh enough for this reader, else the primary."""
    reads = request.app.state.reads
    if not reads.replicas:
        return request.app.state.engine  # type: ignore[no-any-return]
    return reads.engine(after=wrote_at(request))  # type: ignore[no-any-return]


ReadEngineDep = Annotated[Engine, Depends(get_read_engine)]


def get_read_connection(engine: ReadEngineDep) -> Iterator[Connection]:
    with engine.connect() as conn:
        yield conn


ReadConnectionDep = Annotated[Connection, Depends(get_read_connection)]
