"""What a request body may be, per route, and who may send one: checked before the body is read.

Each route that takes a body has one limit here (``BODY_LIMITS``; anything else: ``DEFAULT_BODY``). A body longer
than its route's limit is refused with 413 as it arrives, from its ``Content-Length`` (the server then holds the
body to that length) or, when it is chunked, as soon as it has grown past the limit: nothing larger is held in
memory. A request that needs a sign-in and carries no valid token is refused with 401 before a byte of its body is
read (only ``POST /token``, the sign-in forms and Open311's ``POST requests``, whose ``api_key`` travels in the body
as the spec has it, read theirs first). A change signed by the sign-in cookie, which a browser sends by itself, must
also come from the service's own pages: its ``Origin`` (or ``Referer``) is this host, else 403.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import psycopg2
from sqlalchemy.exc import DBAPIError

from api.asgi import Message, Scope
from api.errors import LOST_CONNECTION, connection_lost
from api.session import TOKEN_COOKIE
from gis.errors import PayloadTooLargeError, UnauthorizedError
from gis.member.photos import MAX_PHOTO_BYTES

log = logging.getLogger(__name__)

MB = 2**20
DEFAULT_BODY = 1 * MB
"""A JSON body: a report, a step, an outline of a grid."""
MAX_BULK_BYTES = 512 * MB
"""A historic events file (``POST /events/bulk``): split a larger one."""
MAX_GRID_FILE_BYTES = 50 * MB
"""A community's grid file, or a city's official units (GeoJSON, GeoPackage, zipped shapefile); larger: the CLI."""
MAX_GPX_BYTES = 20 * MB
"""A walked track as GPX."""
MAX_TRACK_JSON_BYTES = 20 * MB
"""A visit logged as JSON (its track may hold 50,000 points)."""

BODY_LIMITS: tuple[tuple[str, re.Pattern[str], int], ...] = tuple(
    (method, re.compile(path), limit) for method, path, limit in (
        ("POST", r"^/events/bulk$", MAX_BULK_BYTES),
        ("POST", r"^/photos$", MAX_PHOTO_BYTES + 64 * 1024),  # the store says which is too large, and by how much
        ("POST", r"^/communities/[^/]+/grids/import$", MAX_GRID_FILE_BYTES),
        ("POST", r"^/cities/[^/]+/units/import$", MAX_GRID_FILE_BYTES),
        ("POST", r"^/grids/[^/]+/visits/gpx$", MAX_GPX_BYTES),
        ("POST", r"^/grids/[^/]+/visits$", MAX_TRACK_JSON_BYTES),
    ))
PUBLIC_BODIES = re.compile(r"^/(token|login|first-sign-in|logout|open311/v2/requests\.[a-z]+)$")
"""Routes that read their body before (or without) a sign-in."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def body_limit(method: str, path: str) -> int:
    for m, pattern, limit in BODY_LIMITS:
        if m == method and pattern.match(path):
            return limit
    return DEFAULT_BODY


def _too_large(limit: int) -> PayloadTooLargeError:
    size = f"{limit / MB:,.0f} MB" if limit >= MB else f"{limit // 1024:,} kB"
    return PayloadTooLargeError(f"the request body is larger than this endpoint takes ({size})")


async def _answer(send: Callable[[Message], Awaitable[None]], status: int, detail: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _token(scope: Scope) -> tuple[str | None, bool]:
    """The request's token, and whether it came in the sign-in cookie (which a browser sends by itself)."""
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None, False
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE and value:
            return value, True
    return None, False


def _same_origin(scope: Scope) -> bool:
    """Whether a request's ``Origin`` (else its ``Referer``) is this service: a change signed by the cookie must
    come from the service's own pages (besides the cookie's SameSite=Strict)."""
    headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    source = headers.get(b"origin") or headers.get(b"referer")
    host = headers.get(b"host")
    if not source or not host or source == "null":
        return False
    parts = urlsplit(source)
    return parts.netloc == host and parts.scheme in ("http", "https")


class BodyGuard:
    """ASGI middleware: the module docstring's two rules."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = body_limit(scope["method"], path)
        declared = dict((k.lower(), v) for k, v in scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(send, 413, str(_too_large(limit)), [(b"connection", b"close")])
            return
        if not PUBLIC_BODIES.match(path):
            token, by_cookie = _token(scope)
            if by_cookie and not _same_origin(scope):
                await _answer(send, 403, "a change signed by the sign-in cookie must come from this service's own "
                                         "pages (its Origin); other clients send `Authorization: Bearer <token>`")
                return
            state = getattr(scope.get("app"), "state", None)
            try:
                if token is None:
                    raise UnauthorizedError("sign in first: POST /token with your username and password, then send "
                                            "`Authorization: Bearer <token>`")
                if state is not None and hasattr(state, "tokens"):
                    await state.tokens.user(token)
            except UnauthorizedError as exc:
                await _answer(send, 401, str(exc), [(b"www-authenticate", b"Bearer")])
                return
            except (DBAPIError, psycopg2.Error) as exc:  # the sign-in check runs outside the routes' handlers
                if not connection_lost(exc):
                    raise
                log.warning("%s %s: %s", scope["method"], path, exc)
                await _answer(send, 503, LOST_CONNECTION, [(b"retry-after", b"1")])
                return
        if declared is not None:  # the server holds the body to its declared length, checked above
            await self.app(scope, receive, send)
            return
        # chunked: read it here, up to the limit, before the route sees any of it
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > limit:
                await _answer(send, 413, str(_too_large(limit)), [(b"connection", b"close")])
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)
