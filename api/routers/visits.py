"""Visits and proof: members log patrols (GPS track as GeoJSON or GPX, buildings visited); compliance per week
and month; a month's schedule per grid and member."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api.deps import SettingsDep, aware, get_engine
from api.jurisdiction import require_city, require_code_async
from api.roles import Recorder, Viewer
from api.schemas import Compliance, Coverage, Schedule, Visit, documented
from gis.access.scope import User
from gis.db.engine import reading, writing
from gis.errors import ForbiddenError, InputError, NotFoundError
from gis.exports import write_rows
from gis.geo.coords import point_from_geojson
from gis.patrol import gpx
from gis.patrol.store import visits
from gis.planning.store.city import grid_timezone
from gis.vocabulary import VISIT_KINDS

router = APIRouter(tags=["visits"])
FINER = ("grid", "community", "street", "district", "city")
EngineDep = Annotated[Engine, Depends(get_engine)]
MonthParam = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM", examples=["2026-11"])]


class VisitBody(BaseModel):
    kind: Literal["basic", "inspection", "budgeted"] = Field(description=f"one of {', '.join(VISIT_KINDS)}")
    started_at: datetime
    ended_at: datetime
    staff_id: int | None = None
    track: dict[str, Any] | None = Field(None, description="a GeoJSON LineString in WGS-84")
    buildings: list[int] = Field(default_factory=list, description="ids of the buildings visited")
    note: str = Field("", max_length=2000)
    times: list[float] | None = Field(None, description="each track point's time, Unix seconds, in the track's "
                                      "order (lets the matcher drop GPS jumps and estimate the GPS error)")
    gps_error_m: float | None = Field(None, description="the phone's GPS error, σ in metres (estimated from the "
                                      "track when left out)")
    method: Literal["hmm", "buffer"] = Field("hmm", description="hmm: hidden-Markov map matching to the streets; "
                                             "buffer: the buffer test within tolerance_m")
    tolerance_m: float = Field(visits.DEFAULT_TOLERANCE_M, ge=1, le=100, description="the buffer test's distance")
    idempotency_key: str | None = Field(None, min_length=1, max_length=128, description="a client key: the same "
                                        "visit sent again (a phone's offline queue) is stored once")
    position: dict[str, Any] | None = Field(None, description="where the member logged it: a GeoJSON Point "
                                            "(WGS-84)")


MAX_BACKDATE = timedelta(days=7)
"""How far back a grid member may log a visit (a week of a phone's offline queue); older ones, a dispatcher."""


def _recent(user: User, started_at: datetime) -> None:
    if user.role == "grid_member" and started_at < datetime.now(UTC) - MAX_BACKDATE:
        raise ForbiddenError(f"this visit began more than {MAX_BACKDATE.days} days ago: a dispatcher logs it "
                             "(a grid member logs the last week's)")


def _walker(user: User, staff_id: int | None) -> int | None:
    """Who walked: a grid member is always themself; an admin may log for anyone."""
    if user.role != "grid_member":
        return staff_id
    if staff_id is not None and staff_id != user.staff_id:
        raise ForbiddenError("a grid member logs their own visits: leave staff_id out")
    return user.staff_id


def _line(track: dict[str, Any] | None) -> list[Any] | None:
    if track is None:
        return None
    if track.get("type") != "LineString" or not isinstance(track.get("coordinates"), list):
        raise InputError('the track is a GeoJSON LineString: {"type": "LineString", "coordinates": [[lon, lat], …]}')
    return list(track["coordinates"])


@router.post(
    "/grids/{code}/visits",
    status_code=201,
    summary="Log a visit: its GPS track is matched to the grid's "
             "streets",
    response_model=None,
    responses={
        **documented(Visit, status=201),
        404: {"description": "no such grid"},
        422: {"description": "a malformed track, bad times, an unknown staff member"},
    },
)
async def log_visit(code: str, body: VisitBody, engine: EngineDep, user: Recorder) -> Any:
    """The track is matched to the grid's streets (hidden-Markov map matching; the buffer test within
    ``tolerance_m`` where the matcher finds no path, or with ``method=buffer``): the answer says how many street
    segments it walked and their share of the grid's street length (``GET /visits/{id}/streets`` draws them);
    buildings outside the grid are listed apart (``unknown_buildings``). A grid member logs their own visits
    (``staff_id`` defaults to theirs) in their own grids, begun in the last week; a dispatcher logs older ones, and
    visits for the members of their unit."""
    await require_code_async(engine, user, code)
    _recent(user, aware(body.started_at) or body.started_at)
    visit = await run_in_threadpool(
        writing, engine, visits.log_visit, code, kind=body.kind, started_at=body.started_at, ended_at=body.ended_at,
        staff_id=_walker(user, body.staff_id), track=_line(body.track), buildings=body.buildings, note=body.note,
        tolerance_m=body.tolerance_m, idempotency_key=body.idempotency_key,
        position=point_from_geojson(body.position) if body.position is not None else None,
        times=body.times, gps_error_m=body.gps_error_m, method=body.method)
    return JSONResponse(visit, status_code=200) if visit.get("replayed") else visit


@router.post(
    "/grids/{code}/visits/gpx",
    status_code=201,
    summary="Log a visit from a GPX file (a phone's recorded "
             "track)",
    response_model=None,
    responses={
        **documented(Visit, status=201),
        404: {"description": "no such grid"},
        422: {"description": "not GPX, no times, a track far from the grid"},
    },
)
async def log_visit_gpx(
    code: str, request: Request, engine: EngineDep, user: Recorder,
    kind: Literal["basic", "inspection", "budgeted"] = "basic",
    staff_id: int | None = None,
    tolerance_m: Annotated[float, Query(ge=1, le=100)] = visits.DEFAULT_TOLERANCE_M,
    method: Literal["hmm", "buffer"] = "hmm",
) -> dict[str, Any]:
    """The body is the GPX file; the visit's start and end are its first and last point times."""
    await require_code_async(engine, user, code)
    staff_id = _walker(user, staff_id)
    data = await request.body()  # at most api.limits.MAX_GPX_BYTES: the body guard refused anything larger
    coords, start, end, times = await run_in_threadpool(gpx.track_from_gpx, data)  # parsing: off the event loop
    if start is None or end is None:
        raise InputError("the GPX track has no times: record it with times, or log it as JSON with started_at/ended_at")
    _recent(user, start if start.tzinfo else start.replace(tzinfo=UTC))
    return await run_in_threadpool(writing, engine, visits.log_visit, code, kind=kind, started_at=start, ended_at=end,
                                   staff_id=staff_id, track=coords, tolerance_m=tolerance_m, times=times,
                                   method=method)


@router.get(
    "/visits/{visit_id}",
    summary="One logged visit",
    response_model=None,
    responses={**documented(Visit), 404: {"description": "no such visit"}},
)
async def get_visit(visit_id: int, engine: EngineDep, user: Viewer) -> dict[str, Any]:
    visit = await run_in_threadpool(reading, engine, visits.get_visit, visit_id)
    try:
        await require_code_async(engine, user, visit["grid"])
    except ForbiddenError:
        raise NotFoundError(f"no visit {visit_id}") from None
    return visit


@router.get(
    "/visits/{visit_id}/streets",
    summary="What a visit was credited with: the street segments it walked, the matched path, the track",
    response_model=None,
    responses={200: {"description": "GeoJSON FeatureCollection (kind: walked, matched, track)"},
               404: {"description": "no such visit"}},
)
async def visit_streets(visit_id: int, engine: EngineDep, user: Viewer) -> dict[str, Any]:
    """For a member after "end patrol" (the phone page draws it) and for whoever checks the visit: each street
    segment credited (``kind: walked``), the path along the streets the matcher found (``kind: matched``) and the
    track as sent (``kind: track``). Properties: the visit, as ``GET /visits/{id}``."""
    collection = await run_in_threadpool(reading, engine, visits.visit_streets, visit_id)
    try:
        await require_code_async(engine, user, collection["properties"]["grid"])
    except ForbiddenError:
        raise NotFoundError(f"no visit {visit_id}") from None
    return collection


@router.get(
    "/grids/{code}/compliance",
    summary="Was the weekly basic patrol done each week, and the monthly full "
            "inspection?",
    response_model=None,
    responses={**documented(Compliance, also=("text/csv",)), 404: {"description": "no such grid"}},
)
async def compliance(code: str, engine: EngineDep, settings: SettingsDep, user: Viewer, month: MonthParam,
                     format: Literal["json", "csv"] = "json") -> Any:
    await require_code_async(engine, user, code)
    zone = await run_in_threadpool(reading, engine, grid_timezone, code) or settings.timezone
    report = await run_in_threadpool(reading, engine, visits.compliance, code, month, zone)
    if format == "json":
        return report
    rows = [{"grid": code, "month": month, **{k: v for k, v in w.items() if k != "staff"}} for w in report["weeks"]]
    return _csv(rows, f"compliance-{code}-{month}.csv")


@router.get(
    "/grids/{code}/schedule",
    summary="A month's patrol plan for the grid's chief and members",
    response_model=None,
    responses={**documented(Schedule, also=("text/csv",)), 404: {"description": "no such grid"}},
)
async def schedule(code: str, engine: EngineDep, settings: SettingsDep, user: Viewer, month: MonthParam,
                   format: Literal["json", "csv"] = "json",
                   shared: Annotated[bool, Query(description="share the basic patrol among the grid's people, one "
                                                             "part each, rotating week by week")] = False) -> Any:
    """Weekly basic patrols for each person and the monthly inspection's tours, with each item's status (done,
    missed, planned) from the logged visits. ``shared``: each person walks one part of the basic patrol
    (``GET /grids/{code}/patrols/split``), a different one each week; the week's patrol is done when the parts
    together walked the grid."""
    await require_code_async(engine, user, code)
    zone = await run_in_threadpool(reading, engine, grid_timezone, code) or settings.timezone
    plan = await run_in_threadpool(partial(visits.schedule, shared=shared), engine, code, month, zone)
    if format == "json":
        return plan
    return _csv([{"grid": code, **item} for item in plan["items"]], f"schedule-{code}-{month}.csv")


def _csv(rows: list[dict[str, Any]], filename: str) -> Response:
    buffer = io.StringIO()
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    write_rows(buffer, rows, fields)
    return Response(buffer.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get(
    "/coverage",
    summary="Coverage per grid, community, street, district or city: streets planned and "
            "walked, buildings and key places visited, events per 1,000 households, response circles",
    response_model=None,
    responses={
        **documented(Coverage, also=("text/csv",)),
        404: {"description": "no such city"},
        422: {"description": "bad parameters"},
    },
)
async def coverage(
    engine: EngineDep, user: Viewer,
    city: Annotated[str, Query(description="an imported city: nanjing, 南京市, …")],
    by: Literal["grid", "community", "street", "district", "city"] = "grid",
    start: datetime | None = None, end: datetime | None = None,
    mode: Literal["walk", "ebike", "drive"] = "walk",
    minutes: Annotated[str, Query(description="response-circle minutes, comma-separated")] = "1,3,5",
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Default period: the last 30 days. Response circles: the share of households and key places within each
    number of ``minutes`` of a police station and of a grid base, by ``mode`` (walk 4.5 km/h, e-bike 15 km/h,
    drive 30 km/h), from network isochrones (reachable streets, buffered 30 m). Only the units of the user's
    jurisdiction, at its level or finer (a sum over a larger unit would count grids that are not theirs)."""
    from datetime import UTC, timedelta

    from gis.patrol.store.coverage import coverage_report
    from gis.planning.store.city import find_city

    try:
        wanted = [float(m) for m in minutes.split(",")]
    except ValueError:
        raise InputError("minutes is a comma-separated list of numbers, e.g. 1,3,5") from None
    end = aware(end) or datetime.now(UTC)
    start = aware(start) or end - timedelta(days=30)
    with engine.connect() as conn:
        city_id = find_city(conn, city).id
    require_city(user, city_id)
    if user.scope.prefix is not None and FINER.index(by) > FINER.index(user.scope.level):
        raise ForbiddenError(f"a {user.scope.level}-level user sees coverage by {user.scope.level} or finer, "
                             f"not by {by}")
    report = await run_in_threadpool(coverage_report, engine, city_id, start, end, by=by, mode=mode, minutes=wanted)
    if user.scope.prefix is not None:
        report["rows"] = [r for r in report["rows"] if str(r["code"]).startswith(user.scope.prefix)]
    if format == "json":
        return report
    return _csv(report["rows"], f"coverage-{by}.csv")
