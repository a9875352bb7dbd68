"""The one table that maps gridpatrol's error taxonomy to HTTP statuses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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
