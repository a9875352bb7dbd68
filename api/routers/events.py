"""Dispatch: report events, follow them round the loop, see what is overdue and how units perform.

The reporter's contact is personal data: it is returned to the reporter's own client at intake, and afterwards
only to the staff handling the event: its assignee, the dispatchers (centre staff) of its unit, the department it
went to. Each such read is written to the audit log. Everyone sees only the events of their jurisdiction.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from api.deps import ConnectionDep, SettingsDep, aware, client_of, get_engine
from api.jurisdiction import event_in_scope, narrow, require_code
from api.ratelimit import Reporter
from api.roles import Desk, Dispatcher, Handler
from api.schemas import BulkLoad, Category, Escalations, Event, EventStep, Kpis, StaffMember, documented
from api.session import TOKEN_COOKIE
from api.tokens import CurrentUser, oauth2
from gis.access.scope import User
from gis.db.engine import reading
from gis.dispatch import rules
from gis.dispatch.store import events
from gis.dispatch.store.bulk import bulk_intake, read_events_file
from gis.errors import (
    ForbiddenError,
    InputError,
    NotFoundError,
    RateLimitedError,
    UnauthorizedError,
)
from gis.exports import write_rows
from gis.geo.coords import point_from_geojson
from gis.oversight.store import kpis as oversight
from gis.planning.store.staff import add_staff, staff_places, staff_role

router = APIRouter(tags=["dispatch"])
EngineDep = Annotated[Engine, Depends(get_engine)]
REPLAY_WINDOW = timedelta(seconds=10)
SOON = timedelta(hours=2)
"""What "due soon" means on the console."""
MAX_STREAMS = 4
"""Streams (assignments, the live queue) one user may hold open at once, per worker (a phone and a desk, with room
for reconnects)."""


class EventBody(BaseModel):
    location: Any = Field(description="a GeoJSON Point: {\"type\": \"Point\", \"coordinates\": [lon, lat]}",
                          examples=[{"type": "Point", "coordinates": [118.7838, 32.0415]}])
    crs: str = Field(default="wgs84", description="the location's coordinate system: wgs84, gcj02 (Amap, "
                     "Tencent) or bd09 (Baidu)")
    category: str = Field(description="a category code (GET /categories)", examples=["C01"])
    priority: str = Field(default="normal", description="urgent, high or normal")
    source: str = Field(description="grid_member, resident_app, hotline, video or referral")
    description: str = Field(default="", description=f"what was seen (at most {rules.MAX_DESCRIPTION} characters)")
    reporter_contact: str | None = Field(default=None, description="personal data: seen only by the handling staff")
    photos: list[str] = Field(default_factory=list, description="photo references (URLs or storage keys)")
    idempotency_key: str | None = Field(default=None, description="a client key: a retry returns the first "
                                        "result; or send the Idempotency-Key header")
    publish: bool = Field(default=False, description="the reporter lets the public see the description and photo "
                          "(Open311's public reads; only where the category is public)")


class StepBody(BaseModel):
    """The actor is the signed-in user; their role in the loop is their staff record's (grid member, grid chief,
    police, …), or centre staff for a dispatcher, department for a department."""

    note: str | None = Field(default=None, max_length=2000)
    hours: float | None = Field(default=None, description="extend: the extra hours")
    evaluation: int | None = Field(default=None, description="close: a score from 1 to 5")
    into: int | None = Field(default=None, description="merge: the event this one duplicates")
    to_level: str | None = Field(default=None, description="escalate: community, street or department "
                                 "(default: the next level up)")
    staff_id: int | None = Field(default=None, description="dispatch: to this staff member (default: as placed)")
    seen_updated_at: datetime | None = Field(default=None, description="the event's updated_at as you read it: "
                                             "if it changed since, 409 and nothing done")
    photos: list[str] = Field(default_factory=list, max_length=20, description="a feedback's photos (keys from "
                              "POST /photos), kept with the step")
    reason: str | None = Field(default=None, max_length=40, description="return (退单): not_our_duty, "
                               "wrong_location, unclear_ownership or overlapping_duties")
    review_on: date | None = Field(default=None, description="hang (挂账): the date to look at the case again")
    department: str | None = Field(default=None, max_length=32, description="dispatch: to this department (the "
                                   "lead one, 主办, with assisting)")
    assisting: list[str] = Field(default_factory=list, max_length=rules.MAX_ASSISTING,
                                 description="dispatch: departments assisting the lead one (协办)")
    due: datetime | None = Field(default=None, description="supervise (督办): the new deadline")
    unit: str | None = Field(default=None, max_length=40, description="supervise: the unit answerable (a unit's, "
                             "grid's or department's code)")


class StaffBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: str
    unit: str | None = Field(default=None, description="the code of their community or street")
    grids: dict[str, str] = Field(default_factory=dict, description="grid code → duty (chief, member, embedded)")
    roster: list[dict[str, Any]] = Field(default_factory=list, description="[{grid, weekday (0 = Monday), "
                                         "starts: 'HH:MM', ends: 'HH:MM'}]")


@router.get(
    "/categories",
    summary="Event categories, where each goes, and their deadlines",
    response_model=None,
    responses=documented(list[Category]),
)
def list_categories(conn: ConnectionDep, _: CurrentUser) -> list[dict[str, Any]]:
    return events.categories(conn)


@router.post("/events", status_code=201, summary="Report an event: placed on its grid and person at once",
             response_model=None,
             responses={**documented(Event, status=201),
                        200: {"model": Event, "description": "a retry with the same idempotency key: the first result"},
                        409: {"description": "the idempotency key was used for a different report"},
                        422: {"description": "bad location, coordinate system, category or text"},
                        429: {"description": "this client sends reports too fast: retry after Retry-After"}})
async def report_event(request: Request, body: EventBody, _: Reporter,
                       idempotency_key: Annotated[str | None, Header()] = None) -> Response:
    lon, lat = point_from_geojson(body.location)
    report = rules.EventIn(lon=lon, lat=lat, crs=body.crs, category=body.category, priority=body.priority,
                            source=body.source, description=body.description,
                            reporter_contact=body.reporter_contact, photos=body.photos,
                            idempotency_key=body.idempotency_key or idempotency_key, publish=body.publish)
    result = await request.app.state.intake.submit(report)  # stored in a batch with the others waiting (api.intake)
    headers = {"Location": f"/events/{result.event['id']}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    # the event holds only JSON types: skip FastAPI's generic encoder on the hottest path
    return Response(orjson.dumps(result.event), status_code=200 if result.replayed else 201, headers=headers,
                    media_type="application/json")


@router.post(
    "/events/bulk",
    status_code=201,
    summary="Load a CSV or GeoJSON file of (historic) events, set-based",
    response_model=None,
    responses={
        **documented(BulkLoad, status=201),
        403: {"description": "rows placed outside your jurisdiction (listed); nothing stored"},
        413: {"description": "file too large"},
        422: {"description": "bad rows (all listed), unknown categories, or points outside the "
                                             "service area; nothing stored"},
    },
)
async def bulk_events(
    request: Request, engine: EngineDep, settings: SettingsDep, user: Dispatcher,
    format: Literal["csv", "geojson"] = "csv",
) -> dict[str, Any]:
    """The body is the file. Columns: category, lon, lat, [crs, priority, source, description, reported_at,
    closed_at]; a GeoJSON file gives Points with those properties."""
    body = await request.body()  # at most api.limits.MAX_BULK_BYTES: the body guard refused anything larger
    if not body:
        raise InputError("the request body is empty: send the file as the body")
    name = f"upload.{format}"
    frame = await run_in_threadpool(read_events_file, body, name)
    report = await run_in_threadpool(bulk_intake, engine, frame, author=user.username, source_name=name,
                                     radius_m=settings.nearest_grid_m, scope=user.scope)
    return report.as_dict()


@router.get(
    "/events",
    summary="Events by state, grid, unit or overdue",
    response_model=None,
    responses=documented(list[Event]),
)
def find_events(
    conn: ConnectionDep, user: CurrentUser,
    state: Annotated[list[str] | None, Query(description="one or more states")] = None,
    grid: Annotated[str | None, Query(pattern=r"^\d{15}$")] = None,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,15}$", description="a district/street/community/grid "
                                      "code: events under it")] = None,
    overdue: bool = False,
    category: Annotated[str | None, Query(max_length=16)] = None,
    source: Annotated[str | None, Query(max_length=20)] = None,
    due_soon: Annotated[bool, Query(description="dispatched or handled and due within 2 hours (or overdue)")] = False,
    duplicates: Annotated[bool, Query(description="possible duplicates waiting for a person")] = False,
    returned: Annotated[bool, Query(description="returned by a department (退单), waiting for the centre")] = False,
    supervised: Annotated[bool, Query(description="open cases under supervision (督办)")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Only the events of the user's jurisdiction (a department: those gone or escalated to it, or that it
    assists); no contacts. Sorted by deadline."""
    if grid is not None:
        narrow(user, grid)
    now = datetime.now(UTC)
    return events.list_events(conn, states=state, grid=grid, unit_code=narrow(user, unit),
                              city_id=user.scope.city_id,
                              department=user.department_desk,
                              overdue_at=now if overdue else None, limit=limit, offset=offset, category=category,
                              source=source, due_before=now + SOON if due_soon else None, duplicates=duplicates,
                              returned=returned, supervised=supervised)


@router.get("/events/counts", summary="How many cases of your jurisdiction are in each open state, overdue, due soon")
def event_counts(conn: ConnectionDep, user: Desk,
                 unit: Annotated[str | None, Query(pattern=r"^\d{6,15}$")] = None) -> dict[str, int]:
    """What the console keeps in view: each open state's count, and of the dispatched and handled cases those past
    their deadline (``overdue``) and due within 2 hours (``due_soon``)."""
    return events.state_counts(conn, unit_code=narrow(user, unit), city_id=user.scope.city_id,
                               department=user.department_desk,
                               now=datetime.now(UTC), soon=SOON)


@router.get("/events/live", summary="New reports of your jurisdiction as they come in (server-sent events)",
            response_class=StreamingResponse,
            responses={429: {"description": f"this user already holds {MAX_STREAMS} streams open"}})
async def live_queue(request: Request, engine: EngineDep, user: Desk,
                     token: Annotated[str | None, Depends(oauth2)] = None,
                     since: Annotated[int | None, Query(ge=0, description="the last event id the page has")] = None,
                     limit: Annotated[int | None, Query(ge=1, description="close after this many events")] = None,
                     poll: Annotated[float, Query(ge=0.1, le=10)] = 0.5,
                     heartbeat: Annotated[float, Query(ge=0.1, le=60)] = 15.0) -> StreamingResponse:
    """``text/event-stream``: a ``report`` event (the case as JSON, without the reporter's contact) for each new
    case of the user's jurisdiction, within ``poll`` seconds of its commit; ``since`` resumes after a reconnect
    (the browser sends it as ``Last-Event-ID``). Polled, as the assignment stream is; it ends with the sign-in."""
    open_streams: dict[int, int] = request.app.state.streams
    if open_streams.get(user.id, 0) >= MAX_STREAMS:
        raise RateLimitedError(f"you already follow {MAX_STREAMS} streams: close one first", 5.0)
    credential = token or request.cookies.get(TOKEN_COOKIE) or ""
    resume = request.headers.get("last-event-id", "")
    after = since if since is not None else int(resume) if resume.isdigit() else None
    department = user.department_desk
    if after is None:
        after = await run_in_threadpool(reading, engine, events.last_event_id)
    open_streams[user.id] = open_streams.get(user.id, 0) + 1

    async def stream() -> AsyncIterator[str]:
        last, sent, quiet = after, 0, 0.0
        try:
            yield ": following new reports\n\n"
            while limit is None or sent < limit:
                try:
                    await request.app.state.tokens.user(credential)
                except UnauthorizedError:
                    yield "event: end\ndata: signed out: sign in again to follow\n\n"
                    return
                if await request.is_disconnected():
                    return
                fresh = await run_in_threadpool(reading, engine, events.list_events, after_id=last, limit=100,
                                                unit_code=user.scope.prefix, city_id=user.scope.city_id,
                                                department=department)
                for event in fresh:
                    last, sent = max(last, int(event["id"])), sent + 1
                    yield f"id: {event['id']}\nevent: report\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
                    if limit is not None and sent >= limit:
                        return
                quiet = 0.0 if fresh else quiet + poll
                if quiet >= heartbeat:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(poll)
        finally:
            open_streams[user.id] -= 1

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get(
    "/events/{event_id}",
    summary="One event (the reporter's contact only for those handling it)",
    response_model=None,
    responses={**documented(Event), 404: {"description": "no such event in your jurisdiction"}},
)
def one_event(request: Request, event_id: int, conn: ConnectionDep, user: CurrentUser) -> dict[str, Any]:
    event_in_scope(conn, user, event_id)
    event = events.get_event(conn, event_id, with_contact=True)
    if handles(user, event):
        if event.get("reporter_contact") is not None:
            request.app.state.audit.add(user, "read_personal", method="GET", path=request.url.path,
                                        subject=f"event {event_id}", client=client_of(request),
                                        detail={"field": "reporter_contact"})
    else:
        event.pop("reporter_contact", None)
    return event


def handles(user: User, event: dict[str, Any]) -> bool:
    """Whether the user handles the event: its assignee, a dispatcher (or admin) of its unit, its department."""
    if user.role in ("dispatcher", "admin"):
        return True  # the caller checked the event lies in their jurisdiction
    if user.role == "department":
        return event.get("department") == user.department
    assignee = event.get("assignee")
    return user.staff_id is not None and assignee is not None and assignee["id"] == user.staff_id


@router.get(
    "/events/{event_id}/history",
    summary="Every step of an event: who, in which role, when, why",
    response_model=None,
    responses={**documented(list[EventStep]), 404: {"description": "no such event in your jurisdiction"}},
)
def event_history(event_id: int, conn: ConnectionDep, user: CurrentUser) -> list[dict[str, Any]]:
    event_in_scope(conn, user, event_id)
    return events.history(conn, event_id)


LOOP_ROLE = {"admin": "centre_staff", "dispatcher": "centre_staff", "department": "department",
             "grid_member": "grid_member", "leader": "leader"}


def loop_role(conn: Connection, user: User) -> str:
    """The user's role in the loop: their staff record's when they have one, else by their account's role."""
    role = staff_role(conn, user.staff_id) if user.staff_id is not None else None
    return role if role is not None else LOOP_ROLE[user.role]


@router.post(
    "/events/{event_id}/{action}",
    summary="Take a step of the loop (accept, reject, merge, dispatch, receive, handle, verify, rework, close, "
             "suspend, resume, extend, escalate, return, overrule, hang, unhang, assist, supervise)",
    response_model=None,
    responses={
        **documented(Event),
        403: {"description": "your role may not take this step"},
        404: {"description": "no such event in your jurisdiction"},
        409: {"description": "the event's state does not allow this step, or it changed since "
                                             "seen_updated_at"},
    },
)
def step(event_id: int, action: str, body: StepBody, engine: EngineDep, user: Handler) -> dict[str, Any]:
    """The checks and the step in one transaction."""
    with engine.begin() as conn:
        event_in_scope(conn, user, event_id)
        if action == "merge" and body.into is not None:
            event_in_scope(conn, user, body.into)  # a duplicate of an event the user may see, and no other
        if action == "dispatch" and body.staff_id is not None:
            staff_in_scope(conn, user, body.staff_id, active=True)  # someone who exists, works here, and works
        event = events.take_step(
            conn, event_id, action, actor=user.username, role=loop_role(conn, user), note=body.note,
            actor_staff_id=user.staff_id, hours=body.hours, evaluation=body.evaluation, into=body.into,
            to_level=body.to_level, staff_id=body.staff_id, seen_updated_at=aware(body.seen_updated_at),
            photos=body.photos, reason=body.reason, review_on=body.review_on, department=body.department,
            assisting=body.assisting, due=aware(body.due), unit=body.unit,
            actor_department=user.department_desk)
    event.pop("reporter_contact", None)
    return event


@router.post(
    "/escalations/run",
    summary="Escalate every event whose deadline has passed (also run every minute)",
    response_model=None,
    responses=documented(Escalations),
)
def run_escalations(engine: EngineDep, user: Dispatcher) -> dict[str, Any]:
    """Only the events of the dispatcher's jurisdiction."""
    done = events.escalate_overdue(engine, city_id=user.scope.city_id, prefix=user.scope.prefix)
    return {"escalated": len(done), "events": done}


def staff_in_scope(conn: Connection, user: User, staff_id: int, *, active: bool = False) -> None:
    """404 unless the staff member is the user, or works in the user's jurisdiction (a dispatcher, leader or admin
    of their unit); with ``active``, unless they still work (someone a case may be dispatched to)."""
    if active and staff_role(conn, staff_id) is None:
        raise NotFoundError(f"no working staff member {staff_id} in your jurisdiction")
    if user.staff_id == staff_id:
        return
    if user.role in ("dispatcher", "leader", "admin") and any(
            user.scope.covers(city, code) for city, code in staff_places(conn, staff_id)):
        return
    raise NotFoundError(f"no staff member {staff_id} in your jurisdiction")


@router.get(
    "/staff/{staff_id}/events",
    summary="A staff member's events (default: the open ones)",
    response_model=None,
    responses={**documented(list[Event]), 404: {"description": "no such staff member in your jurisdiction"}},
)
def staff_events(request: Request, staff_id: int, conn: ConnectionDep, user: CurrentUser,
                 state: Annotated[list[str] | None, Query()] = None) -> list[dict[str, Any]]:
    """The member's own list carries the reporters' contacts (audited); others see it without them."""
    staff_in_scope(conn, user, staff_id)
    own = user.staff_id == staff_id
    found = events.list_events(conn, staff_id=staff_id, states=state or ["dispatched", "suspended", "handled"],
                               with_contact=own, limit=10_000)
    if own:
        request.app.state.audit.add(user, "read_personal", method="GET", path=request.url.path,
                                    subject=f"staff {staff_id} events", client=client_of(request),
                                    detail={"events": [e["id"] for e in found if e.get("reporter_contact")]})
    return found




@router.get("/staff/{staff_id}/events/stream", summary="New assignments as they happen (server-sent events)",
            response_class=StreamingResponse,
            responses={404: {"description": "no such staff member in your jurisdiction"},
                       429: {"description": f"this user already holds {MAX_STREAMS} streams open"}})
async def follow(request: Request, staff_id: int, engine: EngineDep, user: CurrentUser,
                 token: Annotated[str | None, Depends(oauth2)] = None,
                 limit: Annotated[int | None, Query(ge=1, description="close after this many events")] = None,
                 heartbeat: Annotated[float, Query(ge=0.1, le=60)] = 15.0,
                 poll: Annotated[float, Query(ge=0.1, le=10)] = 1.0) -> StreamingResponse:
    """``text/event-stream``: an ``assigned`` event (the event as JSON) each time one is dispatched, reworked,
    escalated or reassigned to this person, within ``poll`` seconds; a comment line every ``heartbeat`` seconds
    keeps proxies from closing it. (Polled rather than LISTEN/NOTIFY: a NOTIFY takes a database-wide lock at
    every commit, which serialised intake.) The contacts only on the member's own stream (each one audited).

    The stream waits on the event loop, not in a worker thread, and ends (with an ``end`` event) within a few
    seconds of its token or account ceasing to hold: a password reset, a disabled account, an expired sign-in."""
    await run_in_threadpool(reading, engine, staff_in_scope, user, staff_id)
    open_streams: dict[int, int] = request.app.state.streams
    if open_streams.get(user.id, 0) >= MAX_STREAMS:
        raise RateLimitedError(f"you already follow {MAX_STREAMS} streams: close one first", 5.0)
    open_streams[user.id] = open_streams.get(user.id, 0) + 1
    own = user.staff_id == staff_id
    credential = token or request.cookies.get(TOKEN_COOKIE) or ""

    def audited(event: dict[str, Any]) -> None:
        if own and event.get("reporter_contact") is not None:
            request.app.state.audit.add(user, "read_personal", method="GET", path=request.url.path,
                                        subject=f"event {event['id']}", client=client_of(request),
                                        detail={"field": "reporter_contact"})

    async def still_valid() -> bool:
        try:
            await request.app.state.tokens.user(credential)
        except UnauthorizedError:
            return False
        return not await request.is_disconnected()

    async def stream() -> AsyncIterator[str]:
        try:
            async for chunk in _assignments(engine, staff_id, limit, heartbeat, poll, own, audited, still_valid):
                yield chunk
        finally:
            open_streams[user.id] -= 1

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _assignments(engine: Engine, staff_id: int, limit: int | None, heartbeat: float, poll: float,
                       with_contact: bool, seen_by: Callable[[dict[str, Any]], None],
                       still_valid: Callable[[], Awaitable[bool]]) -> AsyncIterator[str]:
    yield ": following assignments\n\n"
    seen: set[tuple[int, datetime]] = set()
    since = started = datetime.now(UTC)
    quiet = 0.0
    sent = 0
    while limit is None or sent < limit:
        if not await still_valid():
            yield "event: end\ndata: signed out: sign in again to follow\n\n"
            return
        # look back a little: a step committed late can carry an earlier time than one already seen
        after = max(since - REPLAY_WINDOW, started)
        found = await run_in_threadpool(reading, engine, events.assignments_since, staff_id, after)
        fresh = [a for a in found if a not in seen]
        for event_id, at in fresh:
            seen.add((event_id, at))
            event = await run_in_threadpool(reading, engine, events.get_event, event_id, with_contact=with_contact)
            seen_by(event)
            sent += 1
            yield f"id: {event_id}\nevent: assigned\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
            if limit is not None and sent >= limit:
                return
        if fresh:
            since = max(since, max(at for _, at in fresh))
            quiet = 0.0
        elif quiet >= heartbeat:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll)
        quiet += poll


@router.post(
    "/staff",
    status_code=201,
    summary="Add a staff member, their grids and duty hours",
    response_model=None,
    responses=documented(StaffMember, status=201),
)
def new_staff(body: StaffBody, engine: EngineDep, user: Dispatcher) -> dict[str, Any]:
    """Only in the dispatcher's jurisdiction: their unit and grids must lie inside it."""
    roster: list[dict[str, Any]] = []
    for slot in body.roster:
        try:
            roster.append({"grid": str(slot["grid"]), "weekday": int(slot["weekday"]),
                           "starts": datetime.strptime(str(slot["starts"]), "%H:%M").time(),
                           "ends": datetime.strptime(str(slot["ends"]), "%H:%M").time()})
        except (KeyError, ValueError, TypeError):
            raise InputError("a roster slot is {grid, weekday 0–6, starts 'HH:MM', ends 'HH:MM'}") from None
        if not 0 <= roster[-1]["weekday"] <= 6:
            raise InputError("weekday is 0 (Monday) to 6 (Sunday)")
    with engine.begin() as conn:
        for code in ([body.unit] if body.unit else []) + list(body.grids) + [s["grid"] for s in roster]:
            require_code(conn, user, code)
        return add_staff(conn, name=body.name, role=body.role, unit_code=body.unit, grids=body.grids,
                         roster=roster)


@router.get(
    "/kpis",
    summary="On-time closure and the other ranking figures per unit and period",
    response_model=None,
    responses=documented(Kpis, also=("text/csv",)),
)
def unit_kpis(
    conn: ConnectionDep, user: CurrentUser,
    by: Literal["city", "grid", "community", "street", "district", "department", "source"] = "grid",
    start: datetime | None = None,
    end: datetime | None = None,
    unit: Annotated[str | None, Query(pattern=r"^\w{1,32}$", description="only units whose code starts so")] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Default period: the last 30 days. Only the units of the user's jurisdiction; a department sees its own
    figures (``by=department``). By department or by source, the figures count the events of the user's own
    jurisdiction (``unit`` then filters departments or sources by their name's start). By city: a city's own
    figures (its id as the unit), for users whose jurisdiction is a whole city or more."""
    end = aware(end) or datetime.now(UTC)
    start = aware(start) or end - timedelta(days=30)
    if user.role == "department":
        if by != "department":
            raise ForbiddenError("a department sees its own figures: by=department")
        prefix = user.department
    elif by == "city":
        if user.scope.prefix is not None:
            raise ForbiddenError(f"a {user.scope.level}-level user sees figures by {user.scope.level} or finer, "
                                 "not by city")
        prefix = unit
    else:
        prefix = unit if by in ("department", "source") else narrow(user, unit)
    # by department or source, a unit's users see the figures of the unit's own events only
    within = user.scope.prefix if by in ("department", "source") else None
    rows = oversight.kpis(conn, by, start, end, prefix=prefix, city_id=user.scope.city_id, within=within)
    if format == "json":
        return {"by": by, "start": start.isoformat(), "end": end.isoformat(), "units": rows}
    buffer = io.StringIO()
    write_rows(buffer, rows, oversight.KPI_FIELDS)
    return Response(buffer.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="kpis-{by}.csv"'})

