from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from api.deps import get_engine
from gis.db.engine import check_database
from gis.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and database check")
def health(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> Any:
    """``200 {"status": "ok", "postgis": "3.3.2", "intake": {...}}``, or ``503`` with the reason when the
    database is down. ``intake``: the batches this worker process has stored reports in since it started (see
    ``api.intake``): its process id, how many, for how many reports, their mean size, and how many reports wait
    now. ``audit``: the audit lines waiting to be written, and those refused (quarantined) or dropped since it
    started. When the database is down: ``503`` saying so, and nothing of the server's internals."""
    try:
        version = check_database(engine)
    except DatabaseUnavailableError as exc:
        log.warning("health: %s", exc)  # the reason goes to the log, not to whoever asks
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return {"status": "ok", "database": "ok", "postgis": version, "intake": request.app.state.intake.figures(),
            "audit": request.app.state.audit.figures()}
