"""The one table that maps gridpatrol's error taxonomy to HTTP statuses."""

from __future__ import annotations

import logging

import psycopg2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from gis.errors import (
    ConflictError,
    DatabaseUnavailableError,
    ForbiddenError,
    GridpatrolError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
)

log = logging.getLogger(__name__)

STATUS: tuple[tuple[type[GridpatrolError], int], ...] = (
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (PayloadTooLargeError, 413),
    (ConflictError, 409),
    (InputError, 422),
    (DatabaseUnavailableError, 503),
)


def status_for(exc: GridpatrolError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(GridpatrolError)
    async def _gridpatrol_error(request: Request, exc: GridpatrolError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        body: dict[str, object] = {"detail": str(exc)}
        for extra in ("problems", "gaps"):  # a refused grid edit says what is wrong and where
            if hasattr(exc, extra):
                body[extra] = getattr(exc, extra)
        return JSONResponse(body, status_code=status)

    lost = "the database connection was lost or refused (is it restarting?): retry in a moment"

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # the service's pool does not test connections before use (gis.db.engine): a broken one surfaces here
        if exc.connection_invalidated or isinstance(exc.orig, psycopg2.OperationalError | psycopg2.InterfaceError):
            log.warning("%s %s: %s", request.method, request.url.path, exc.orig)
            return JSONResponse({"detail": lost}, status_code=503, headers={"Retry-After": "1"})
        log.exception("%s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error (logged)"}, status_code=500)

    @app.exception_handler(psycopg2.OperationalError)
    @app.exception_handler(psycopg2.InterfaceError)
    async def _connection_lost(request: Request, exc: psycopg2.Error) -> JSONResponse:  # raw DBAPI paths (intake)
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": lost}, status_code=503, headers={"Retry-After": "1"})
