"""The one table that maps gridpatrol's error taxonomy to HTTP statuses."""

from __future__ import annotations

import logging
import math
import traceback

import psycopg2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError

from api.tokens import sign_in_redirect
from gis.errors import (
    BadRequestError,
    ConflictError,
    DatabaseUnavailableError,
    ForbiddenError,
    GridpatrolError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
)

log = logging.getLogger(__name__)

STATUS: tuple[tuple[type[GridpatrolError], int], ...] = (
    (UnauthorizedError, 401),
    (RateLimitedError, 429),
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (PayloadTooLargeError, 413),
    (ConflictError, 409),
    (BadRequestError, 400),
    (InputError, 422),
    (DatabaseUnavailableError, 503),
)



LOST_CONNECTION = "the database connection was lost or refused (is it restarting?): retry in a moment"
"""What a client is told (503, ``Retry-After: 1``) when the database is unreachable: a restart, a failover."""


def connection_lost(exc: BaseException) -> bool:
    """Whether a database error means the connection was lost or refused (so: 503 and retry), not a bad query."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc.orig, psycopg2.OperationalError |
                                                              psycopg2.InterfaceError)
    return isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)


def where(exc: BaseException) -> str:
    """The last place in gridpatrol's own code (``gis/``, ``api/``) the error passed through, as ``file:line
    function``: a lost connection is not a bug, but the log should say which read or write met it."""
    ours = [f for f in traceback.extract_tb(exc.__traceback__)
            if "/gis/" in f.filename.replace("\\", "/") or "/api/" in f.filename.replace("\\", "/")]
    if not ours:
        return "?"
    last = ours[-1]
    parts = last.filename.replace("\\", "/").rsplit("/", 3)
    return f"{'/'.join(parts[-2:])}:{last.lineno} {last.name}"


def status_for(exc: GridpatrolError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _bad_value(exc: psycopg2.Error) -> JSONResponse:
    """SQLSTATE class 22 (a number out of range, a malformed value): the client's value, refused by the database
    inside a transaction that is rolled back, so nothing was stored."""
    reason = (exc.pgerror or str(exc)).strip().splitlines()[0].removeprefix("ERROR:").strip()
    return JSONResponse({"detail": f"a value is out of range or malformed: {reason}"}, status_code=422)


def install(app: FastAPI) -> None:
    @app.exception_handler(GridpatrolError)
    async def _gridpatrol_error(request: Request, exc: GridpatrolError) -> Response:
        status = status_for(exc)
        if status == 401 and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return sign_in_redirect(request)  # a browser opening a page: the sign-in form first
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        body: dict[str, object] = {"detail": str(exc)}
        for extra in ("problems", "gaps"):  # a refused grid edit says what is wrong and where
            if hasattr(exc, extra):
                body[extra] = getattr(exc, extra)
        headers: dict[str, str] = {}
        if isinstance(exc, UnauthorizedError):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return JSONResponse(body, status_code=status, headers=headers)

    lost = LOST_CONNECTION

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # the service's pool does not test connections before use (gis.db.engine): a broken one surfaces here
        if connection_lost(exc):
            log.warning("%s %s (%s): %s", request.method, request.url.path, where(exc), exc.orig)
            request.scope.setdefault("state", {})["database_lost"] = True  # a read may try once more
            return JSONResponse({"detail": lost}, status_code=503, headers={"Retry-After": "1"})
        if isinstance(exc.orig, psycopg2.DataError):
            return _bad_value(exc.orig)
        log.exception("%s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error (logged)"}, status_code=500)

    @app.exception_handler(psycopg2.DataError)
    async def _data_error(request: Request, exc: psycopg2.DataError) -> JSONResponse:  # raw DBAPI paths
        return _bad_value(exc)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, exc: ValueError) -> JSONResponse:
        # psycopg2 refuses text with NUL characters before sending anything: the client's text, not our fault
        if "NUL (0x00)" in str(exc):
            return JSONResponse({"detail": "text must not contain NUL (\\u0000) characters"}, status_code=422)
        log.exception("%s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error (logged)"}, status_code=500)

    @app.exception_handler(psycopg2.OperationalError)
    @app.exception_handler(psycopg2.InterfaceError)
    async def _connection_lost(request: Request, exc: psycopg2.Error) -> JSONResponse:  # raw DBAPI paths (intake)
        log.warning("%s %s (%s): %s", request.method, request.url.path, where(exc), exc)
        # SQLAlchemy drops every pooled connection when it sees a disconnect itself; a raw cursor's error goes
        # past it, so do the same: the others were opened before the same restart (a fresh pool; those checked
        # out finish on the old one)
        engine = getattr(request.app.state, "engine", None)
        if engine is not None:
            engine.dispose(close=False)
        return JSONResponse({"detail": lost}, status_code=503, headers={"Retry-After": "1"})
