"""The command centre's big screen (指挥大屏): the page for the wall and the data it polls every few seconds.

``GET /screen?unit=CODE`` is a static page (``maps/static/screen``) with no feature in it; ``GET /screen/data``
answers every panel in one read (:func:`gis.oversight.store.screen.screen`). The response circles take seconds on a
large city, so they are computed on a worker thread and kept :data:`CIRCLES_TTL_S`; the data says ``computing``
until the first ones are ready, and a refresh never waits for them. A screen account (role ``screen``) reads this
and the basemap under it, and nothing else (``api.tokens.current_user``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.engine import Engine

from api.consistency import ReadEngineDep
from api.deps import SettingsDep
from api.jurisdiction import unit_in_jurisdiction
from api.roles import ScreenReader
from api.settings import Settings
from gis.access.scope import User
from gis.db.engine import reading
from gis.errors import GridpatrolError
from gis.oversight.store import screen as screen_store
from gis.oversight.store.leaders import Unit

router = APIRouter(tags=["screen"])
PAGE = Path(__file__).resolve().parents[2] / "maps" / "static" / "screen" / "index.html"
CIRCLES_TTL_S = 600.0

_circles: dict[tuple[str, int, str | None], tuple[float, dict[str, Any]]] = {}
_computing: set[tuple[str, int, str | None]] = set()
_lock = threading.Lock()


def _circles_for(engine: Engine, unit: Unit, timezone: str) -> dict[str, Any]:
    """The unit's response circles when computed within :data:`CIRCLES_TTL_S` (else the last ones, or
    ``computing``), starting their computation on a worker thread when due."""
    key = (str(engine.url), unit.city_id, unit.code)
    now = time.monotonic()
    with _lock:
        hit = _circles.get(key)
        due = (hit is None or now - hit[0] >= CIRCLES_TTL_S) and key not in _computing
        if due:
            _computing.add(key)
    if due:
        def work() -> None:
            try:
                value = {"status": "ready", **screen_store.response_circles(engine, unit, timezone=timezone)}
            except GridpatrolError as exc:
                value = {"status": "none", "reason": str(exc)}
            except Exception as exc:  # a failed computation is shown, and tried again later
                value = {"status": "failed", "reason": type(exc).__name__}
            with _lock:
                _circles[key] = (time.monotonic(), value)
                _computing.discard(key)
        threading.Thread(target=work, name="screen-circles", daemon=True).start()
    return hit[1] if hit is not None else {"status": "computing"}


def screen_data(engine: Engine, settings: Settings, user: User, city: str | None, unit: str | None) -> dict[str, Any]:
    with engine.connect() as conn:
        found = unit_in_jurisdiction(conn, user, city=city, unit=unit, default_city=settings.default_city)
        zone = screen_store.city_timezone(conn, found.city_id, settings.timezone)
    started = time.perf_counter()
    data = reading(engine, screen_store.screen, found, timezone=zone)
    data["response_circles"] = _circles_for(engine, found, zone)
    data["server_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return data


@router.get("/screen", response_class=HTMLResponse, summary="The command centre's big screen (指挥大屏) for a wall "
            "display: today's intake, open and overdue cases, the live feed, the heat map, the league table")
def screen_page(_: ScreenReader) -> FileResponse:
    """Built for 1920×1080 and 3840×2160 with no mouse or keyboard: it polls ``/screen/data`` every few seconds,
    shows a lost connection plainly and recovers by itself. ``?unit=CODE`` (or ``?city=``): default, the
    signed-in user's unit."""
    return FileResponse(PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/screen/data", summary="Every panel of the big screen, for a unit, now")
async def screen_json(engine: ReadEngineDep, settings: SettingsDep, user: ScreenReader,
                      city: Annotated[str | None, Query(description="a city (key, name or id)")] = None,
                      unit: Annotated[str | None, Query(description="a district (6 digits), street (9), community "
                                                                    "(12) or grid (15) code")] = None,
                      ) -> dict[str, Any]:
    """Today's intake and the same hour yesterday; open, overdue and due within 2 hours; the month's on-time
    closure; the last reports (category, grid, source, time: no personal data); the last 24 hours' heat; the
    children's league table by on-time closure; this week's patrol compliance; events by category and source this
    month; the response circles (when computed). ``server_ms``: the time the figures took."""
    return await run_in_threadpool(screen_data, engine, settings, user, city, unit)
