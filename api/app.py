"""The FastAPI application: ``create_app(settings)``. Nothing connects at import time."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from api import errors
from api.audit import AuditLog, AuditMiddleware
from api.consistency import MarkWrites, RetryReads, Writes
from api.headers import SecurityHeaders, tile_origin
from api.intake import IntakeQueue
from api.limits import BodyGuard
from api.ratelimit import RateLimiter
from api.routers import (
    auth,
    bulletins,
    calendar,
    desk,
    divisions,
    events,
    exchange,
    grid_edits,
    health,
    layers,
    leaders,
    maps,
    member,
    ogc,
    open311,
    patrols,
    screen,
    tiles,
    units,
    visits,
)
from api.settings import Settings
from api.tokens import Tokens
from gis.db.engine import make_engine, writing
from gis.db.replicas import ReadRouter
from gis.db.singleton import BackgroundLock
from gis.dispatch.store.events import escalate_overdue
from gis.errors import GridpatrolError
from gis.planning.store.figures import fold_case_changes

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "maps" / "static"


def settle_gc() -> None:
    """Move everything loaded at start-up (geopandas, pyproj, shapely, pandas: a few hundred thousand objects) out
    of the garbage collector's sight. Otherwise every full collection walks them all and a request that happens
    to trigger one takes ~100 ms longer (seen as the worst case of the edit-preview benchmark)."""
    gc.collect()
    gc.freeze()


async def _escalate_forever(engine: Engine, lock: BackgroundLock, every_s: float) -> None:
    """Escalate events whose deadline has passed, every ``every_s`` seconds (0: never), off the event loop: on
    whichever worker of whichever instance holds the lock (``gis.db.singleton``), so never twice."""
    while every_s > 0:
        await asyncio.sleep(every_s)
        if not await asyncio.to_thread(lock.held):
            continue
        try:
            done = await asyncio.to_thread(escalate_overdue, engine)
        except (GridpatrolError, SQLAlchemyError) as exc:  # the database may be restarting: try again later
            log.warning("escalation run failed: %s", exc)
            continue
        if done:
            log.info("escalated %d overdue event(s)", len(done))


async def _fold_forever(engine: Engine, every_s: float) -> None:
    """Fold the cases' changes into the grids' figures every ``every_s`` seconds (0: never), off the event loop; a
    fold under way elsewhere (another worker or instance) makes this one a no-op (the function's own lock)."""
    failing = False  # said once when it starts failing (the database restarting) and once when it works again
    while every_s > 0:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(writing, engine, fold_case_changes)
        except (GridpatrolError, SQLAlchemyError) as exc:  # the database may be restarting: try again later
            if not failing:
                log.warning("folding the grids' case figures failed (readers stay exact; trying again every "
                            "%.0f s): %s", every_s, exc)
            failing = True
            continue
        if failing:
            log.info("folding the grids' case figures works again")
        failing = False


def create_app(settings: Settings) -> FastAPI:
    """The service over the database at ``settings.database_url`` (which must be set: the CLI resolves it)."""
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url; `gridpatrol serve` starts the embedded server")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(settings.database_url or "", connections=settings.db_connections)
        app.state.reads = ReadRouter.build(app.state.engine, settings.read_url, max_lag_s=settings.replica_max_lag_s,
                                           connections=settings.read_connections)
        app.state.intake = IntakeQueue(app.state.engine, settings)
        app.state.tokens = Tokens(app.state.engine, settings,
                                  reads=app.state.reads.engine if app.state.reads.replicas else None)
        lock = BackgroundLock(app.state.engine, "escalation run")
        app.state.audit = AuditLog(app.state.engine)
        app.state.audit.start()
        settle_gc()
        ticker = asyncio.create_task(_escalate_forever(app.state.engine, lock, settings.escalate_every_s))
        folder = asyncio.create_task(_fold_forever(app.state.engine, settings.fold_every_s))
        try:
            yield
        finally:
            for task in (ticker, folder):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.audit.stop()
            await app.state.intake.close()
            await asyncio.to_thread(lock.release)
            app.state.tokens.close()
            app.state.reads.close()
            app.state.engine.dispose()

    app = FastAPI(
        title="gridpatrol",
        summary="Grid mapping and patrol planning for city grid governance (网格化管理)",
        version="0.1.0",
        lifespan=lifespan,
        # The stock docs pages load Swagger UI/ReDoc from a CDN; intranets have none. Serve our own copy.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.intake_limiter = RateLimiter(settings.intake_rate, settings.intake_burst)
    app.state.login_limiter = RateLimiter(1 / settings.sign_in_every_s, settings.sign_in_burst)
    app.state.login_hashing = asyncio.Semaphore(auth.MAX_HASHING)  # Argon2 work at once (api.routers.auth)
    app.state.login_waiting = 0
    app.state.streams = {}  # user id -> assignment streams open (api.routers.events.follow)
    errors.install(app)
    if settings.read_url:  # reads spread over replicas: remember who changed what, when (read-your-writes)
        app.state.writes = Writes()
        app.add_middleware(MarkWrites, writes=app.state.writes)
        app.add_middleware(RetryReads)
    app.add_middleware(BodyGuard)  # innermost: refused bodies are audited like any refused change
    app.add_middleware(AuditMiddleware)
    # outermost: every answer gets its headers, every page its nonce; the basemap's tiles may come from its server
    app.add_middleware(SecurityHeaders, images=tile_origin(settings.tile_url))
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(layers.router)
    app.include_router(tiles.router)
    app.include_router(ogc.router)
    app.include_router(divisions.router)
    app.include_router(exchange.router)  # before grid_edits: /grids/export is not a grid code
    app.include_router(grid_edits.router)
    app.include_router(units.router)
    app.include_router(events.router)
    app.include_router(calendar.router)
    app.include_router(desk.router)
    app.include_router(open311.router)
    app.include_router(patrols.router)
    app.include_router(visits.router)
    app.include_router(leaders.router)
    app.include_router(screen.router)
    app.include_router(bulletins.router)
    app.include_router(member.router)
    app.include_router(maps.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        vendor = "/static/vendor/swagger-ui"
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="gridpatrol API",
            swagger_js_url=f"{vendor}/swagger-ui-bundle.js", swagger_css_url=f"{vendor}/swagger-ui.css",
            swagger_favicon_url=f"{vendor}/favicon-32x32.png",
        )

    return app


def app_from_env() -> FastAPI:
    """The app from the environment's settings: the factory ``gridpatrol serve --workers N`` gives uvicorn (each
    worker process builds its own; DATABASE_URL is set by the CLI before it starts them)."""
    return create_app(Settings())
