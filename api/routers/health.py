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
    started. ``replicas`` (with a read URL): each replica's state, staleness in seconds and whether reads use it
    now (``gis.db.replicas``). When the primary is down: ``503`` saying so (and the replicas still answering
    reads), and nothing of the server's internals."""
    reads = request.app.state.reads
    replicas = [{k: v for k, v in r.items() if k != "url"} for r in reads.report()] if reads.replicas else None
    try:
        version = check_database(engine)
    except DatabaseUnavailableError as exc:
        log.warning("health: %s", exc)  # the reason goes to the log, not to whoever asks
        down: dict[str, Any] = {"status": "unavailable", "database": "unreachable"}
        if replicas is not None:
            down["replicas"] = replicas
        return JSONResponse(down, status_code=503, headers={"Retry-After": "5"})
    answer = {"status": "ok", "database": "ok", "postgis": version, "intake": request.app.state.intake.figures(),
              "audit": request.app.state.audit.figures()}
    if replicas is not None:
        answer["replicas"] = replicas
    return answer
