"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2) under ``/open311/v2``: what 311 clients speak.

Services are the event categories; a request is an event. Statuses map to ``open``/``closed`` (closed: closed,
rejected or merged), with the loop's state in ``status_notes``. JSON only (the spec's XML format is not served).
Errors come in the spec's shape: ``[{"code": 400, "description": "…"}]``. Extensions for the queries the spec
lacks: ``lat``/``long``/``radius`` (metres) and ``bbox`` on ``GET requests.json``. The reporter's contact (email,
phone, names) is stored for the handling staff and never returned here.

The read endpoints are public (they carry no personal data). ``POST requests.json`` needs a token: the spec's
``api_key`` field, or an ``Authorization: Bearer`` header (a resident app signs in with its own account).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from api.deps import aware, get_engine
from api.errors import status_for
from api.tokens import current_user, oauth2
from gis.dispatch import rules
from gis.dispatch.store import events
from gis.errors import GridpatrolError, InputError, NotFoundError
from gis.geo.bbox import parse_bbox
from gis.geo.coords import check_lonlat

router = APIRouter(prefix="/open311/v2", tags=["open311"])
EngineDep = Annotated[Engine, Depends(get_engine)]
CLOSED = ("closed", "rejected", "merged")
MAX_REQUESTS = 1000
T = TypeVar("T")


def _spec_error(exc: GridpatrolError) -> JSONResponse:
    status = status_for(exc)
    status = 400 if status == 422 else status  # the spec's clients know 400 for bad input
    return JSONResponse([{"code": status, "description": str(exc)}], status_code=status)


def _spec_errors(call: Callable[[], T]) -> T | JSONResponse:
    try:
        return call()
    except GridpatrolError as exc:
        return _spec_error(exc)


async def _spec_errors_async(call: Callable[[], Awaitable[T]]) -> T | JSONResponse:
    try:
        return await call()
    except GridpatrolError as exc:
        return _spec_error(exc)


@router.get("/services.json", summary="Open311: the service list (event categories)")
def services(engine: EngineDep) -> list[dict[str, Any]]:
    return [{"service_code": c["code"], "service_name": c["name"], "description": c["name_en"],
             "metadata": False, "type": "realtime", "keywords": c["kind"], "group": c["kind"]}
            for c in events.categories(engine)]


@router.get("/services/{code}.json", summary="Open311: a service definition (no extra attributes)")
def service_definition(code: str, engine: EngineDep) -> Any:
    def find() -> dict[str, Any]:
        if not any(c["code"] == code for c in events.categories(engine)):
            raise NotFoundError(f"no service {code!r} (GET services.json lists them)")
        return {"service_code": code, "attributes": []}
    return _spec_errors(find)


@router.post("/requests.json", status_code=201, summary="Open311: create a service request")
async def create_request(request: Request,
                         token: Annotated[str | None, Depends(oauth2)] = None) -> Any:
    """Form-encoded (as the spec) or JSON. ``lat``/``long`` are WGS-84; the extension field ``crs`` (gcj02,
    bd09) says otherwise. ``address_string`` alone is not enough: this service needs the point. ``api_key``: a
    token from POST /token (or send it as a bearer token)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            raw = await request.json()
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            return JSONResponse([{"code": 400, "description": "the body is not a JSON object"}], status_code=400)
        fields = {k: v for k, v in raw.items()}
    else:
        fields = dict((await request.form()).items())
    signed = await _spec_errors_async(lambda: current_user(request, token or str(fields.get("api_key") or "")))
    if isinstance(signed, JSONResponse):
        return signed
    limited = _spec_errors(lambda: request.app.state.intake_limiter.take(f"user:{signed.id}"))
    if isinstance(limited, JSONResponse):
        return limited

    def read() -> rules.EventIn:
        if not fields.get("service_code"):
            raise InputError("service_code is required (GET services.json lists them)")
        if fields.get("lat") in (None, "") or fields.get("long") in (None, ""):
            raise InputError("lat and long are required: this service places a request by its point "
                             "(address_string alone cannot be located)")
        try:
            lat, lon = float(fields["lat"]), float(fields["long"])
        except (TypeError, ValueError):
            raise InputError("lat and long must be numbers") from None
        contact = "; ".join(str(fields[k]) for k in ("first_name", "last_name", "email", "phone")
                            if fields.get(k)) or None
        media = fields.get("media_url")
        description = str(fields.get("description") or "")
        if fields.get("address_string"):
            description = f"{description}\n[address] {fields['address_string']}".strip()
        return rules.EventIn(lon=lon, lat=lat, crs=str(fields.get("crs") or "wgs84"),
                              category=str(fields["service_code"]), source="resident_app", description=description,
                              reporter_contact=contact, photos=[str(media)] if media else [])

    report = _spec_errors(read)
    if isinstance(report, JSONResponse):
        return report
    stored = await _spec_errors_async(lambda: request.app.state.intake.submit(report))  # see api.intake
    if isinstance(stored, JSONResponse):
        return stored
    event = stored.event
    return [{"service_request_id": str(event["id"]), "service_notice": _notice(event), "account_id": None}]


@router.get("/requests.json", summary="Open311: service requests, with the spec's filters and a spatial extension")
def find_requests(
    engine: EngineDep,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    status: str | None = Query(default=None, description="open, closed, or both comma-separated"),
    lat: Annotated[float | None, Query(description="extension: centre of a radius query (WGS-84)")] = None,
    long: Annotated[float | None, Query(description="extension: centre of a radius query (WGS-84)")] = None,
    radius: Annotated[float | None, Query(gt=0, le=50_000, description="extension: metres")] = None,
    bbox: Annotated[str | None, Query(description="extension: minlon,minlat,maxlon,maxlat")] = None,
) -> Any:
    def find() -> list[dict[str, Any]]:
        where: list[str] = ["true"]
        params: dict[str, Any] = {}
        if service_request_id:
            try:
                params["ids"] = [int(x) for x in service_request_id.split(",")]
            except ValueError:
                raise InputError("service_request_id is a comma-separated list of numbers") from None
            where.append("e.id = ANY(%(ids)s)")
        else:  # the spec: default to the last 90 days, at most 1000 requests
            end = aware(end_date) or datetime.now(UTC)
            start = aware(start_date) or end - timedelta(days=90)
            if end <= start:
                raise InputError("end_date must come after start_date")
            where.append("e.reported_at >= %(start)s AND e.reported_at < %(end)s")
            params.update(start=start, end=end)
        if service_code:
            where.append("e.category_code = ANY(%(codes)s)")
            params["codes"] = service_code.split(",")
        if status:
            wanted = set(status.split(","))
            if not wanted <= {"open", "closed"}:
                raise InputError("status is open, closed, or open,closed")
            if wanted == {"open"}:
                where.append("e.state <> ALL(%(closed)s)")
            elif wanted == {"closed"}:
                where.append("e.state = ANY(%(closed)s)")
            params["closed"] = list(CLOSED)
        if (lat is None) != (long is None) or (radius is not None and lat is None):
            raise InputError("a radius query gives lat, long and radius (metres)")
        if lat is not None and long is not None:
            check_lonlat(long, lat)
            where.append("ST_DWithin(e.geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, "
                         "%(radius)s)")
            params.update(lon=long, lat=lat, radius=radius or 500.0)
        if bbox:
            west, south, east, north = parse_bbox(bbox)
            where.append("e.geom && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)")
            params.update(w=west, s=south, e=east, n=north)
        return [_request(row) for row in _query(engine, " AND ".join(where), params)]
    return _spec_errors(find)


@router.get("/requests/{request_id}.json", summary="Open311: one service request")
def one_request(request_id: str, engine: EngineDep) -> Any:
    def find() -> list[dict[str, Any]]:
        if not request_id.isdigit():
            raise InputError("a service_request_id is a number")
        rows = _query(engine, "e.id = %(id)s", {"id": int(request_id)})
        if not rows:
            raise NotFoundError(f"no service request {request_id}")
        return [_request(rows[0])]
    return _spec_errors(find)


_SQL = """
    SELECT e.id, e.state, e.category_code, c.name, e.description, ST_X(e.geom), ST_Y(e.geom), e.reported_at,
           e.updated_at, e.due_at, e.photos, e.grid_code, e.level, d.name, g.name, s.name,
           coalesce((SELECT t.note FROM event_transitions t WHERE t.event_id = e.id AND t.note IS NOT NULL
                     ORDER BY t.at DESC, t.id DESC LIMIT 1),
                    (SELECT i.note FROM event_imports i WHERE i.id = e.import_id))
    FROM events e JOIN categories c ON c.code = e.category_code LEFT JOIN departments d ON d.code = e.department_code
    LEFT JOIN grids g ON g.id = e.grid_id LEFT JOIN admin_units s ON s.id = e.street_id
    WHERE {where} ORDER BY e.reported_at DESC, e.id DESC LIMIT %(limit)s"""


def _query(engine: Engine, where: str, params: dict[str, Any]) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql(_SQL.format(where=where), {**params, "limit": MAX_REQUESTS}).all())


def _request(row: Any) -> dict[str, Any]:
    (eid, state, code, name, description, lon, lat, reported, updated, due, photos, grid, level, department,
     grid_name, street, note) = row
    agency = department if (level == "department" or grid is None) and department else \
        (f"{grid_name} ({grid})" if grid else f"{street} 综治中心")
    return {
        "service_request_id": str(eid), "status": "closed" if state in CLOSED else "open",
        "status_notes": f"{state}: {note}" if note else state, "service_name": name, "service_code": code,
        "description": description, "agency_responsible": agency, "service_notice": None,
        "requested_datetime": reported.isoformat(), "updated_datetime": updated.isoformat(),
        "expected_datetime": due.isoformat() if due else None, "address": None, "address_id": None,
        "zipcode": None, "lat": round(lat, 7), "long": round(lon, 7),
        "media_url": photos[0] if photos else None,
    }


def _notice(event: dict[str, Any]) -> str:
    due = f"; expected by {event['due_at']}" if event["due_at"] else ""
    return f"received: {event['category_name']}, handled by grid {event['grid'] or event['street']}{due}"

