"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2) under ``/open311/v2``: what 311 clients speak.

Every endpoint answers in the spec's required format, XML (``.xml``), and in JSON (``.json``), with errors in the
spec's shape in both (``<errors><error><code/><description/></error></errors>``). Service discovery is at
``/open311/discovery.{xml,json}``. Services are the event categories; a request is an event. Statuses map to
``open``/``closed`` (closed: closed, rejected or merged), with the loop's state in ``status_notes``. Extensions for
the queries the spec lacks: ``lat``/``long``/``radius`` (metres) and ``bbox`` on ``GET requests``.

What the public sees is :mod:`gis.dispatch.public`'s rule: only public categories (never a social-governance
matter or a police route), their location coarsened to about 100 m, and the description, notes and photo only when
the reporter chose to publish (the ``publish`` attribute of a public service's definition). A caller signed in
(``Authorization: Bearer``, or the sign-in cookie) sees in full what lies inside their jurisdiction. The
reporter's contact (email, phone, names) is stored for the handling staff and never returned here.
``POST requests`` needs a token: the spec's ``api_key`` field, or a bearer token.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Engine

from api.consistency import ReadEngineDep
from api.deps import aware, get_engine
from api.errors import status_for
from api.jurisdiction import event_visible
from api.session import TOKEN_COOKIE
from api.tokens import current_user, oauth2
from gis.access.scope import User
from gis.db.engine import reading
from gis.dispatch import rules
from gis.dispatch.public import MAX_IDS, request_view
from gis.dispatch.store import events
from gis.dispatch.store.requests import find_requests
from gis.errors import GridpatrolError, InputError, NotFoundError
from gis.geo.bbox import parse_bbox
from gis.geo.coords import check_lonlat

router = APIRouter(prefix="/open311", tags=["open311"])
EngineDep = Annotated[Engine, Depends(get_engine)]
FORMATS = {"json": "application/json", "xml": "text/xml; charset=utf-8"}
SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = datetime(2026, 12, 3, tzinfo=UTC).isoformat()
"""When the services or their definitions last changed (service discovery's flag for clients' caches)."""
PUBLISH = "publish"
"""The attribute of a public service with which a reporter lets the public see their description and photo."""
T = TypeVar("T")

# XML 1.0 allows tab, newline, carriage return and everything from U+0020 on (but the surrogates and two
# non-characters); anything else in a stored text (a control character a client sent) is left out of the XML.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Open311Error(Exception):
    """A refusal in the spec's shape (code and description) and the format the client asked for."""

    def __init__(self, status: int, description: str) -> None:
        self.status, self.description = status, description


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"no format {fmt!r}: ask for .xml (the spec's) or .json")
    return fmt


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _element(name: str, value: Any) -> ET.Element:
    node = ET.Element(name)
    if isinstance(value, dict):
        for key, item in value.items():
            node.append(_element(key, item))
    elif isinstance(value, list):
        child = {"attributes": "attribute", "values": "value", "endpoints": "endpoint", "formats": "format"}[name]
        for item in value:
            node.append(_element(child, item))
    else:
        node.text = _text(value)
    return node


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """The spec's XML: ``<root><item>…</item>…</root>`` for a list, ``<root>…</root>`` for one object."""
    top = ET.Element(root)
    if item is None:
        for key, value in data.items():
            top.append(_element(key, value))
    else:
        for entry in data:
            top.append(_element(item, entry))
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def _answer(fmt: str, root: str, item: str | None, data: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, data), status_code=status, media_type=FORMATS["xml"])
    return JSONResponse(data, status_code=status)


def _error(fmt: str, status: int, description: str) -> Response:
    fmt = fmt if fmt in FORMATS else "xml"
    return _answer(fmt, "errors", "error", [{"code": status, "description": description}], status)


async def _spec(fmt: str, call: Callable[[], Awaitable[Response]]) -> Response:
    """Run ``call``; any refusal comes back in the spec's error shape, in the format asked for (400 for bad
    input: the code the spec's clients know)."""
    try:
        return await call()
    except Open311Error as exc:
        return _error(fmt, exc.status, exc.description)
    except GridpatrolError as exc:
        status = status_for(exc)
        return _error(fmt, 400 if status == 422 else status, str(exc))


async def _caller(request: Request, token: str | None) -> User | None:
    """The signed-in user, when the request carries a token or the sign-in cookie; ``None`` for the public. A
    token that does not check is a 401, not the public view."""
    if not (token or request.cookies.get(TOKEN_COOKIE)):
        return None
    return await current_user(request, token)


@router.get("/discovery.{fmt}", summary="Open311: service discovery")
async def discovery(request: Request, fmt: str) -> Response:
    async def answer() -> Response:
        base = str(request.base_url).rstrip("/")
        return _answer(_format(fmt), "discovery", None, {
            "changeset": CHANGESET,
            "contact": "the city's grid governance centre (网格化服务管理中心)",
            "key_service": f"{base}/login: sign in with an account the centre gives you; POST /token issues the "
                           "api_key",
            "endpoints": [{"specification": SPEC, "url": f"{base}/open311/v2",
                           "changeset": CHANGESET, "type": "production",
                           "formats": ["text/xml", "application/json"]}]})
    return await _spec(fmt, answer)


def _service(c: dict[str, Any]) -> dict[str, Any]:
    return {"service_code": c["code"], "service_name": c["name"], "description": c["name_en"],
            "metadata": bool(c["public"]), "type": "realtime", "keywords": c["kind"], "group": c["kind"]}


@router.get("/v2/services.{fmt}", summary="Open311: the service list (event categories)")
async def services(fmt: str, engine: ReadEngineDep) -> Response:
    def answer() -> Response:
        return _answer(_format(fmt), "services", "service", [_service(c) for c in reading(engine, events.categories)])
    return await _spec(fmt, lambda: run_in_threadpool(answer))


def _definition(c: dict[str, Any]) -> dict[str, Any]:
    """A public service has one attribute: whether the reporter lets the public see what they wrote."""
    attributes = [{
        "variable": True, "code": PUBLISH, "datatype": "singlevaluelist", "required": False,
        "datatype_description": "true: the public may read your description and see your photo",
        "order": 1, "description": "公开我的描述和照片? Show my description and photo to the public?",
        "values": [{"key": "false", "name": "不公开 keep private"}, {"key": "true", "name": "公开 publish"}],
    }] if c["public"] else []
    return {"service_code": c["code"], "attributes": attributes}


@router.get("/v2/services/{code}.{fmt}", summary="Open311: a service definition (its attributes)")
async def service_definition(code: str, fmt: str, engine: ReadEngineDep) -> Response:
    def answer() -> Response:
        found = [c for c in reading(engine, events.categories) if c["code"] == code]
        if not found:
            raise NotFoundError(f"no service {code!r} (GET services.{fmt} lists them)")
        return _answer(_format(fmt), "service_definition", None, _definition(found[0]))
    return await _spec(fmt, lambda: run_in_threadpool(answer))


def _publish(fields: dict[str, Any]) -> bool:
    """``attribute[publish]`` as the spec's form encoding sends it (or ``{"attribute": {"publish": …}}`` in JSON)."""
    nested = fields.get("attribute")
    value = fields.get(f"attribute[{PUBLISH}]", nested.get(PUBLISH) if isinstance(nested, dict) else None)
    text = str(value).strip().lower() if value is not None else ""
    if text in ("", "false", "0", "no"):
        return False
    if text in ("true", "1", "yes"):
        return True
    raise InputError(f"attribute[{PUBLISH}] is true or false; got {value!r}")


@router.post("/v2/requests.{fmt}", status_code=201, summary="Open311: create a service request")
async def create_request(request: Request, fmt: str,
                         token: Annotated[str | None, Depends(oauth2)] = None) -> Response:
    """Form-encoded (as the spec) or JSON. ``lat``/``long`` are WGS-84; the extension field ``crs`` (gcj02,
    bd09) says otherwise. ``address_string`` alone is not enough: this service needs the point. ``api_key``: a
    token from POST /token (or send it as a bearer token). ``attribute[publish]=true`` lets the public see the
    description and photo (public services only)."""
    async def answer() -> Response:
        _format(fmt)
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                raw = await request.json()
            except ValueError:
                raw = None
            if not isinstance(raw, dict):
                raise Open311Error(400, "the body is not a JSON object")
            fields = dict(raw)
        else:
            fields = dict((await request.form()).items())
        signed = await current_user(request, token or str(fields.get("api_key") or ""))
        request.app.state.intake_limiter.take(f"user:{signed.id}")
        report = _report(fields)
        stored = await request.app.state.intake.submit(report)  # see api.intake
        event = stored.event
        return _answer(fmt, "service_requests", "request", [{
            "service_request_id": str(event["id"]), "service_notice": _notice(event), "account_id": None}], 201)
    return await _spec(fmt, answer)


def _report(fields: dict[str, Any]) -> rules.EventIn:
    if not fields.get("service_code"):
        raise InputError("service_code is required (GET services lists them)")
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
                         reporter_contact=contact, photos=[str(media)] if media else [], publish=_publish(fields))


def _views(rows: Sequence[Any], user: User | None) -> list[dict[str, Any]]:
    """Each row as its caller may see it: in full inside a signed-in caller's jurisdiction; elsewhere only a
    public category's, as the public sees it."""
    out = []
    for row in rows:
        full = user is not None and event_visible(user, row.city_id, row.unit_code, row.department, row.level,
                                                  row.queue)
        if full or row.category_public:
            out.append(request_view(row, full=full))
    return out


def _cities(user: User | None) -> tuple[list[int], bool]:
    if user is None:
        return [], False
    if user.scope.everywhere:
        return [], True
    return [user.scope.city_id] if user.scope.city_id is not None else [], False


@router.get("/v2/requests.{fmt}", summary="Open311: service requests, with the spec's filters and a spatial extension")
async def list_requests(
    request: Request, fmt: str, engine: ReadEngineDep,
    token: Annotated[str | None, Depends(oauth2)] = None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    status: str | None = Query(default=None, description="open, closed, or both comma-separated"),
    lat: Annotated[float | None, Query(description="extension: centre of a radius query (WGS-84)")] = None,
    long: Annotated[float | None, Query(description="extension: centre of a radius query (WGS-84)")] = None,
    radius: Annotated[float | None, Query(gt=0, le=50_000, description="extension: metres")] = None,
    bbox: Annotated[str | None, Query(description="extension: minlon,minlat,maxlon,maxlat")] = None,
) -> Response:
    async def answer() -> Response:
        _format(fmt)
        user = await _caller(request, token)
        query: dict[str, Any] = {}
        if service_request_id:
            try:
                ids = [int(x) for x in service_request_id.split(",")]
            except ValueError:
                raise InputError("service_request_id is a comma-separated list of numbers") from None
            if len(ids) > MAX_IDS:
                raise InputError(f"at most {MAX_IDS} service_request_id values in one query")
            query["ids"] = ids
        else:  # the spec: default to the last 90 days, at most 1000 requests
            end = aware(end_date) or datetime.now(UTC)
            start = aware(start_date) or end - timedelta(days=90)
            if end <= start:
                raise InputError("end_date must come after start_date")
            query.update(start=start, end=end)
        if service_code:
            query["codes"] = service_code.split(",")
        if status:
            wanted = set(status.split(","))
            if not wanted <= {"open", "closed"}:
                raise InputError("status is open, closed, or open,closed")
            query["status"] = wanted.pop() if len(wanted) == 1 else None
        if (lat is None) != (long is None) or (radius is not None and lat is None):
            raise InputError("a radius query gives lat, long and radius (metres)")
        if lat is not None and long is not None:
            check_lonlat(long, lat)
            query["near"] = (long, lat, radius or 500.0)
        if bbox:
            query["bbox"] = parse_bbox(bbox)
        cities, everywhere = _cities(user)
        rows = await run_in_threadpool(lambda: reading(engine, find_requests, cities=cities, everywhere=everywhere,
                                                       **query))
        return _answer(fmt, "service_requests", "request", _views(rows, user))
    return await _spec(fmt, answer)


@router.get("/v2/requests/{request_id}.{fmt}", summary="Open311: one service request")
async def one_request(request: Request, request_id: str, fmt: str, engine: ReadEngineDep,
                      token: Annotated[str | None, Depends(oauth2)] = None) -> Response:
    async def answer() -> Response:
        _format(fmt)
        if not request_id.isdigit() or len(request_id) > 18:
            raise InputError("a service_request_id is a number")
        user = await _caller(request, token)
        cities, everywhere = _cities(user)
        rows = await run_in_threadpool(lambda: reading(engine, find_requests, ids=[int(request_id)], cities=cities,
                                                     everywhere=everywhere))
        views = _views(rows, user)
        if not views:  # absent, or not for this caller to see: the same answer
            raise NotFoundError(f"no service request {request_id}")
        return _answer(fmt, "service_requests", "request", views)
    return await _spec(fmt, answer)


def _notice(event: dict[str, Any]) -> str:
    due = f"; expected by {event['due_at']}" if event["due_at"] else ""
    return f"received: {event['category_name']}, handled by grid {event['grid'] or event['street']}{due}"
