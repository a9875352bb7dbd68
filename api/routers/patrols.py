"""Patrol routes for grid members: a grid's weekly basic patrol, monthly full inspection and time-budgeted round,
as GeoJSON, GPX 1.1 or a map page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import folium
from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api.deps import SettingsDep, get_engine
from api.jurisdiction import require_code_async
from api.roles import Planner, Viewer, allow
from api.schemas import BasicPatrol, BudgetedRound, GridStreets, Inspection, SharedPatrol, documented
from gis.access.scope import User
from gis.db.engine import reading, writing
from gis.errors import InputError
from gis.geo.coords import to_wgs84
from gis.patrol.gpx import to_gpx, tours_to_gpx
from gis.patrol.inspection import DEFAULT_MINUTES_PER_BUILDING, DEFAULT_SHIFT_MIN
from gis.patrol.store.plans import (
    DEFAULT_DWELL_MIN,
    DEFAULT_EXACT_S,
    DEFAULT_HOT_SPOT_DAYS,
    SPLIT_EXACT_S,
    grid_outline,
    plan_basic,
    plan_budgeted_round,
    plan_full_inspection,
    plan_split,
)
from gis.patrol.store.shares import get_share, part_plan, split_for_share, store_share, week_part
from gis.patrol.store.streets import grid_streets, set_optional_streets
from gis.planning.store.city import grid_timezone
from maps.city import map_to_html
from maps.patrol import patrol_map, tours_map

PLAN_MEDIA = ("text/html", "application/gpx+xml")
"""``format=html``: the plan drawn on its map page; ``format=gpx``: a GPX 1.1 file for a phone."""
router = APIRouter(tags=["patrols"])
EngineDep = Annotated[Engine, Depends(get_engine)]
BaseParam = Annotated[str | None, Query(description="lon,lat of the base (default: the grid's centre)",
                                        examples=["118.7838,32.0415"])]
CrsParam = Annotated[str, Query(description="the base's coordinate system: wgs84, gcj02, bd09")]


@router.get("/grids/{code}/patrols/basic", summary="The grid's weekly basic patrol: every street, from the base "
            "and back, as short as possible", response_model=None,
            responses={**documented(BasicPatrol, also=PLAN_MEDIA), 404: {"description": "no such grid"},
                       422: {"description": "no streets, a base off the network, bad parameters"}})
async def basic_patrol(
    code: str, engine: EngineDep, user: Viewer, base: BaseParam = None, crs: CrsParam = "wgs84",
    dwell_min: Annotated[float, Query(ge=0, le=60, description="minutes at each key place")] = DEFAULT_DWELL_MIN,
    exact_s: Annotated[float, Query(ge=0, le=60, description="seconds CP-SAT may spend on a rural grid's route "
                                                             "(0: the heuristic alone)")] = DEFAULT_EXACT_S,
    format: Literal["geojson", "gpx", "html"] = "geojson",
) -> Any:
    """GeoJSON: the base, the steps in walking order (``required`` or a ``repeat``), the stops at key places, and
    in ``properties`` the length, minutes, deadhead share, required segments covered, and a turn list. GPX 1.1:
    the route as a track with the base and stops as waypoints, for a phone's navigation app. HTML: the map page
    (numbered stops, the turn list; printable, readable on a phone)."""
    point = _base_point(code, base, crs)
    await require_code_async(engine, user, code)
    route = await run_in_threadpool(plan_basic, engine, code, base=point, dwell_min=dwell_min, exact_s=exact_s)
    return await _deliver(engine, code, route, format, draw=patrol_map, gpx=to_gpx,
                          title=f"网格 {code} 基础巡查 · basic patrol", filename=f"patrol-{code}.gpx")


@router.get("/grids/{code}/patrols/split", summary="The grid's basic patrol shared among k members or shifts: "
            "the longest walk as short as possible", response_model=None,
            responses={**documented(SharedPatrol, also=PLAN_MEDIA), 404: {"description": "no such grid"},
                       422: {"description": "k larger than the grid's streets allow, a start off the network, "
                                            "bad parameters"}})
async def shared_patrol(
    code: str, engine: EngineDep, user: Viewer,
    k: Annotated[int, Query(ge=1, le=8, description="the members (or shifts) sharing the patrol")],
    base: BaseParam = None, crs: CrsParam = "wgs84",
    starts: Annotated[str | None, Query(description="each member's own start, lon,lat;lon,lat;… (k of them; "
                                                    "default: every part from the base)",
                                        examples=["118.7838,32.0415;118.7901,32.0442"])] = None,
    time_limit_s: Annotated[float, Query(gt=0, le=30, description="the local search's time")] = 0.5,
    exact_s: Annotated[float, Query(ge=0, le=30, description="the time for solving the parts' own routes exactly "
                                    "(CP-SAT; 0: not at all)")] = SPLIT_EXACT_S,
    format: Literal["geojson", "gpx", "html"] = "geojson",
) -> Any:
    """GeoJSON: one LineString per part (from its start and back, in walking order) and each part's start; in
    ``properties`` the longest part, one member's single route, a lower bound on the longest part and the ratio to
    it. Every street of the grid is in exactly one part. GPX 1.1: a track per part. HTML: the map page, a colour
    per part."""
    point = _base_point(code, base, crs)
    points = None
    if starts is not None:
        points = []
        for i, item in enumerate(starts.split(";"), start=1):
            try:
                lon, lat = (float(v) for v in item.split(","))
            except ValueError:
                raise InputError(f"starts is lon,lat;lon,lat;…: member {i}'s start {item!r} is not lon,lat") from None
            points.append(to_wgs84(lon, lat, crs))
    await require_code_async(engine, user, code)
    plan = await run_in_threadpool(plan_split, engine, code, k, base=point, starts=points,
                                   time_limit_s=time_limit_s, exact_s=exact_s)
    return await _deliver(engine, code, plan, format, draw=tours_map, gpx=tours_to_gpx,
                          title=f"网格 {code} 基础巡查分段 · basic patrol shared by {k}",
                          filename=f"patrol-{code}-{k}-parts.gpx")


class ShareBody(BaseModel):
    k: int = Field(ge=1, le=8, description="the people sharing the grid's basic patrol (1: not shared)")


Sharer = Annotated[User, Depends(allow("admin", "planner", "dispatcher"))]


@router.put("/grids/{code}/patrols/share", summary="Share the grid's basic patrol among k people (set once, kept)",
            response_model=None, responses={404: {"description": "no such grid"},
                                            422: {"description": "k larger than the grid's streets allow"}})
async def put_share(code: str, body: ShareBody, engine: EngineDep, user: Sharer) -> dict[str, Any]:
    """The split (as ``GET /grids/{code}/patrols/split``) is computed once and kept, so that the month's schedule
    and each member's "today's route" name the same parts week after week. ``k = 1``: the patrol is not shared
    any more. The answer: k, each part's street segments and its route's length."""
    _check_code(code)
    await require_code_async(engine, user, code)
    if body.k == 1:
        return await run_in_threadpool(writing, engine, store_share, code, 1)
    await run_in_threadpool(reading, engine, grid_outline, code)  # no such grid: 404 before the split's seconds
    parts, lengths = await run_in_threadpool(split_for_share, engine, code, body.k)
    return await run_in_threadpool(writing, engine, store_share, code, body.k, parts, lengths)


@router.get("/grids/{code}/patrols/share", summary="How the grid's basic patrol is shared (k = 1: not shared)",
            response_model=None, responses={404: {"description": "no such grid"}})
async def read_share(code: str, engine: EngineDep, user: Viewer) -> dict[str, Any]:
    _check_code(code)
    await require_code_async(engine, user, code)
    share = await run_in_threadpool(reading, engine, get_share, code)
    return share or {"grid": code, "k": 1, "parts": [], "lengths_m": [], "set_at": None}


@router.get("/grids/{code}/patrols/today", summary="Today's route for the one asking: their part of a shared "
            "patrol this week, or the whole basic patrol", response_model=None,
            responses={200: {"description": "GeoJSON: the person's part this week (as /patrols/split draws a part) or "
                                            "the basic patrol (as /patrols/basic); format=gpx, format=html"},
                       404: {"description": "no such grid"}})
async def todays_route(
    code: str, engine: EngineDep, settings: SettingsDep, user: Viewer,
    staff_id: Annotated[int | None, Query(description="whose route (a grid member: always their own)")] = None,
    format: Literal["geojson", "gpx", "html"] = "geojson",
) -> Any:
    """For the member's phone page. Where the grid's patrol is shared (``PUT /grids/{code}/patrols/share``), the
    part this person walks this week (the parts rotate week by week, as in the month's schedule): the part's route
    from the base and back, with ``part``, ``parts`` and ``week_of`` in ``properties``. Otherwise, or for someone
    who is not one of the grid's chief and members, the whole basic patrol (``part`` null)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    _check_code(code)
    await require_code_async(engine, user, code)
    who = user.staff_id if user.role == "grid_member" else staff_id
    zone = await run_in_threadpool(reading, engine, grid_timezone, code) or settings.timezone
    mine = await run_in_threadpool(reading, engine, week_part, code, who, datetime.now(ZoneInfo(zone)).date())
    if mine is None:
        plan = await run_in_threadpool(plan_basic, engine, code)
        plan["properties"] |= {"part": None, "parts": 1, "week_of": None}
        return await _deliver(engine, code, plan, format, draw=patrol_map, gpx=to_gpx,
                              title=f"网格 {code} 基础巡查 · basic patrol", filename=f"patrol-{code}.gpx")
    plan = await run_in_threadpool(part_plan, engine, code, mine["part"])
    plan["properties"] |= mine
    return await _deliver(engine, code, plan, format, draw=tours_map, gpx=tours_to_gpx,
                          title=f"网格 {code} 基础巡查 第 {mine['part']}/{mine['parts']} 段 · part {mine['part']} "
                                f"of {mine['parts']}", filename=f"patrol-{code}-part-{mine['part']}.gpx")


@router.get("/grids/{code}/patrols/inspection", summary="The grid's monthly full inspection: every building, in "
            "the shortest tours, split into shifts", response_model=None,
            responses={**documented(Inspection, also=PLAN_MEDIA), 404: {"description": "no such grid"},
                       422: {"description": "no buildings or streets, a base off the network, bad parameters"}})
async def full_inspection(
    code: str, engine: EngineDep, user: Viewer, base: BaseParam = None, crs: CrsParam = "wgs84",
    shift_min: Annotated[float, Query(gt=0, le=24 * 60, description="minutes in one shift")] = DEFAULT_SHIFT_MIN,
    minutes_per_building: Annotated[float, Query(ge=0, le=120)] = DEFAULT_MINUTES_PER_BUILDING,
    time_limit_s: Annotated[float, Query(gt=0, le=30, description="the solver's search time")] = 1.0,
    format: Literal["geojson", "gpx", "html"] = "geojson",
) -> Any:
    """GeoJSON: one LineString per tour (a day or a member: length, minutes, buildings) and each stop with the
    buildings visited there, in order. Every building of the grid is visited exactly once; those the network
    does not reach are listed. GPX 1.1: a track per tour, a waypoint per stop. HTML: the map page (each tour in
    its colour, numbered stops; printable, readable on a phone)."""
    point = _base_point(code, base, crs)
    await require_code_async(engine, user, code)
    plan = await run_in_threadpool(plan_full_inspection, engine, code, base=point, shift_min=shift_min,
                                   minutes_per_building=minutes_per_building, time_limit_s=time_limit_s)
    return await _deliver(engine, code, plan, format, draw=tours_map, gpx=tours_to_gpx,
                          title=f"网格 {code} 全面巡查 · full inspection", filename=f"inspection-{code}.gpx")


@router.get("/grids/{code}/patrols/budgeted", summary="The grid's time-budgeted patrol: the round that covers the "
            "most risk (key places, recent events) in N minutes", response_model=None,
            responses={**documented(BudgetedRound, also=PLAN_MEDIA), 404: {"description": "no such grid"},
                       422: {"description": "a zero or negative budget, no streets, a base off the network"}})
async def budgeted_patrol(
    code: str, engine: EngineDep, user: Viewer,
    minutes: Annotated[float, Query(description="the time budget: walking plus the stops, in minutes",
                                    examples=[60])],
    base: BaseParam = None, crs: CrsParam = "wgs84",
    dwell_min: Annotated[float, Query(ge=0, le=60, description="minutes at each stop")] = DEFAULT_DWELL_MIN,
    days: Annotated[int, Query(ge=1, le=3660, description="events of the last N days count")] = DEFAULT_HOT_SPOT_DAYS,
    time_limit_s: Annotated[float, Query(gt=0, le=30, description="the solver's search time")] = 1.0,
    format: Literal["geojson", "gpx", "html"] = "geojson",
) -> Any:
    """An orienteering round from the base and back within ``minutes``: each key place of the grid scores 3, each
    event of the last ``days`` days 1 (2 while open); the round collects the most score it can, then walks the
    least. GeoJSON: the round as a LineString, its stops in order with why each is worth a stop, the places left
    out for lack of time (``kind: dropped``), and in ``properties`` minutes, length and the share of the risk
    covered. GPX 1.1 and the map page as for the inspection."""
    point = _base_point(code, base, crs)
    await require_code_async(engine, user, code)
    plan = await run_in_threadpool(plan_budgeted_round, engine, code, minutes, base=point, dwell_min=dwell_min,
                                   days=days, time_limit_s=time_limit_s)
    return await _deliver(engine, code, plan, format, draw=tours_map, gpx=tours_to_gpx,
                          title=f"网格 {code} 限时巡查 · {minutes:g}-minute patrol", filename=f"budgeted-{code}.gpx")


class OptionalStreets(BaseModel):
    segments: list[str] = Field(max_length=10_000, description="the segments (u-v-key) to mark optional; every "
                                "other street of the grid becomes required; [] makes them all required",
                                examples=[["1234-5678-0"]])
    reason: str = Field(min_length=1, max_length=2000, examples=["gated compound: no access for grid members"])


@router.get("/grids/{code}/streets", summary="The grid's streets for the basic patrol: required or optional",
            response_model=None, responses={**documented(GridStreets), 404: {"description": "no such grid"},
                                            422: {"description": "no streets, a bad code"}})
async def streets(code: str, engine: EngineDep, user: Viewer) -> Any:
    """Every street segment the grid's basic patrol walks (inside the grid or along its boundary), as GeoJSON:
    its id (``u-v-key``), name, kind, length and whether a planner marked it optional (by whom, why, when)."""
    _check_code(code)
    await require_code_async(engine, user, code)
    return await run_in_threadpool(reading, engine, grid_streets, code)


@router.put("/grids/{code}/streets/optional", summary="Mark which of the grid's streets the basic patrol need "
            "not walk", response_model=None,
            responses={**documented(GridStreets), 404: {"description": "no such grid"},
                       422: {"description": "a segment that is not the grid's, every street optional, no reason"}})
async def mark_optional_streets(code: str, body: OptionalStreets, engine: EngineDep, user: Planner) -> Any:
    """Replaces the grid's optional streets with ``segments``. The basic patrol then walks only the required
    ones (the rural postman: optional streets are used only where they are the shortest way), and coverage and
    proof of patrol count only the required ones. Returns the grid's streets after the change."""
    _check_code(code)
    await require_code_async(engine, user, code)
    return await run_in_threadpool(writing, engine, set_optional_streets, code, body.segments, author=user.username,
                                   reason=body.reason)


async def _deliver(engine: Engine, code: str, plan: dict[str, Any], format: str, *,
                   draw: Callable[[dict[str, Any], Any, str], folium.Map], gpx: Callable[[dict[str, Any]], str],
                   title: str, filename: str) -> Any:
    """A planned route as asked: its map page, a GPX 1.1 download, or the GeoJSON itself."""
    if format == "html":
        grid = await run_in_threadpool(reading, engine, grid_outline, code)
        return HTMLResponse(map_to_html(draw(plan, grid, title)))
    if format == "gpx":
        return Response(gpx(plan), media_type="application/gpx+xml",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return plan


def _check_code(code: str) -> None:
    if not (len(code) == 15 and code.isdigit()):
        raise InputError(f"a grid code has 15 digits; got {code!r}")


def _base_point(code: str, base: str | None, crs: str) -> tuple[float, float] | None:
    _check_code(code)
    if base is None:
        return None
    try:
        lon, lat = (float(v) for v in base.split(","))
    except ValueError:
        raise InputError("base is lon,lat, e.g. 118.7838,32.0415") from None
    return to_wgs84(lon, lat, crs)
