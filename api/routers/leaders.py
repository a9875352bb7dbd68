"""Leaders' coverage maps: a unit's children coloured by a measure, drill-down from city to grid, the figures beside
the map and as CSV, and the whole page as one standalone HTML file."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine

from api.consistency import ReadConnectionDep, ReadEngineDep
from api.deps import SettingsDep, check_year
from api.errors import status_for
from api.roles import Viewer
from api.settings import Settings
from gis.access.scope import Scope
from gis.dispatch.store.events import categories
from gis.errors import ForbiddenError, GridpatrolError, InputError
from gis.exports import write_rows
from gis.oversight.store import leaders
from gis.patrol.store.plans import plan_basic
from gis.planning.store.tiles import grids_extent
from maps.city import map_to_html, message_page
from maps.leaders import TABLE_COLUMNS, leaders_map, standalone_html

router = APIRouter(tags=["leaders"])
DEFAULT_DAYS = 30


@dataclass
class ViewParams:
    city: str | None
    unit: str | None
    measure: str
    start: date
    end: date
    category: str | None
    mode: str
    minutes: float
    grids: bool
    scope: Scope = field(default_factory=lambda: Scope("all"))
    """The viewer's jurisdiction: the page shows nothing outside it."""

    def query(self, **changes: Any) -> str:
        values = {"city": self.city, "unit": self.unit, "measure": self.measure, "start": self.start.isoformat(),
                  "end": self.end.isoformat(), "category": self.category, "mode": self.mode,
                  "minutes": f"{self.minutes:g}", "grids": "1" if self.grids else None}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "", False)})


def view_params(
    settings: SettingsDep, user: Viewer,
    city: Annotated[str | None, Query(description="a city (name or id); default: the configured one")] = None,
    unit: Annotated[str | None, Query(description="a district (6 digits), street (9), community (12) or grid "
                                                  "(15) code")] = None,
    measure: Annotated[str, Query(description="what colours the map: " + ", ".join(leaders.MEASURES))] =
        "walked_share",
    start: Annotated[date | None, Query(description="first day of the period (default: 30 days ago)")] = None,
    end: Annotated[date | None, Query(description="last day of the period, included (default: today)")] = None,
    category: Annotated[str | None, Query(description="the heat map's event category (default: all)")] = None,
    mode: Annotated[Literal["walk", "ebike", "drive"], Query(description="response circles by")] = "ebike",
    minutes: Annotated[float, Query(gt=0, le=60, description="the response circle, in minutes")] = 5.0,
    grids: Annotated[bool, Query(description="show every grid inside the unit instead of its children")] = False,
) -> ViewParams:
    if measure not in leaders.MEASURES:
        raise InputError(f"unknown measure {measure!r}: one of {', '.join(leaders.MEASURES)}")
    for given in (start, end):
        if given is not None:
            check_year(given)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise InputError(f"the period is empty: it ends ({end}) before it starts ({start})")
    if user.scope.prefix is not None and not unit:
        unit = user.unit_code  # a viewer below the city opens on their own unit
    if user.scope.city_id is not None and not city and not unit:
        city = str(user.scope.city_id)
    return ViewParams(city=city if city or unit else settings.default_city, unit=unit, measure=measure,
                      start=start, end=end, category=category or None, mode=mode, minutes=minutes, grids=grids,
                      scope=user.scope)


ViewDep = Annotated[ViewParams, Depends(view_params)]


def _period(p: ViewParams, timezone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(timezone)
    return (datetime.combine(p.start, time(), zone).astimezone(UTC),
            datetime.combine(p.end + timedelta(days=1), time(), zone).astimezone(UTC))


def build_figures(engine: Engine, settings: Settings, p: ViewParams, *, prefix: str = "") -> dict[str, Any]:
    """The unit, its breadcrumb, the units shown under it with their figures and links, and notes on what has no
    data: what both the page and the table need."""
    start, end = _period(p, settings.timezone)
    with engine.connect() as conn:
        known = categories(conn)
        if p.category and p.category not in {c["code"] for c in known}:
            raise InputError(f"unknown event category {p.category!r}: GET /categories lists them")
        unit = leaders.find_unit(conn, city=p.city, unit=p.unit)
        _unit_scope(p.scope, unit)  # refused outside the viewer's jurisdiction
        # the path up stops at the viewer's own unit
        chain = [c for c in leaders.breadcrumb(conn, unit)
                 if c is unit or p.scope.covers(c.city_id, c.code)]
        level, units = leaders.child_units(conn, unit, grids=p.grids)
    info = leaders.unit_figures(engine, unit, level, units, start, end, mode=p.mode, minutes=p.minutes)
    measure = leaders.MEASURES[p.measure]

    def href(u: leaders.Unit | dict[str, Any]) -> str:
        if isinstance(u, leaders.Unit) and u.level == "city":
            return f"{prefix}/leaders?{p.query(unit=None, city=str(u.id), grids=None)}"
        code = u.code if isinstance(u, leaders.Unit) else u["code"]
        return f"{prefix}/leaders?{p.query(unit=code, city=None, grids=None)}"

    for u in units:
        u["href"] = href(u) if not (level == "grid" and unit.level == "grid") else ""
    notes = []
    if not units:
        notes.append(f"{unit.name} has no {level}s yet: divide the city first (gridpatrol divide, POST /divisions)")
    if measure.source == "coverage" and "coverage" in info["missing"]:
        notes.append(f"no coverage figures here: {info['missing']['coverage']}")
    elif units and all(u["figures"].get(measure.key) is None for u in units):
        why = {"on_time_closure_rate": "no event fell due in the period",
               "walked_share": "no street to patrol", "buildings_visited_share": "no building in these units"}
        notes.append(f"no {measure.label} for {p.start} – {p.end}: {why.get(measure.key, 'nothing to count')}")
    crumbs = [{"name": c.name, "href": href(c) if i < len(chain) - 1 or p.grids else ""}
              for i, c in enumerate(chain)]
    return {"unit": unit, "breadcrumb": crumbs, "level": level, "units": units, "measure": measure,
            "missing": info["missing"], "areas": info["areas"], "notes": notes, "period": (start, end),
            "categories": [(c["code"], c["name"]) for c in known]}


def build_view(engine: Engine, settings: Settings, p: ViewParams, *, prefix: str = "") -> dict[str, Any]:
    """Everything the page draws (see :func:`maps.leaders.leaders_map`): :func:`build_figures` plus the events,
    key places, outline, response circles and, on a grid, its patrol route."""
    view = build_figures(engine, settings, p, prefix=prefix)
    unit, units, level, notes = view["unit"], view["units"], view["level"], view["notes"]
    start, end = view["period"]
    with engine.connect() as conn:
        events = leaders.events_in(conn, unit, start, end, category=p.category)
        places = leaders.key_places_in(conn, unit)
        outline = leaders.unit_outline(conn, unit)
    if not events:
        notes.append(f"no events reported {p.start} – {p.end}" + (f" in category {p.category}" if p.category else "")
                     + ": the heat map is empty")
    route = None
    if unit.level == "grid":
        try:
            route = plan_basic(engine, unit.code or "")
        except InputError as exc:
            notes.append(f"no patrol route: {exc}")
    areas = {}
    if outline is not None:
        box = shapely.geometry.shape(outline).bounds
        areas = {name: shapely.clip_by_rect(a, *box) for name, a in view["areas"].items()}
    households = sum(u["households"] for u in units)
    summary = (f"{len(units):,} {level}s · {households:,} households · {len(events):,} events "
               f"{p.start} – {p.end} · response circles: {p.minutes:g} min by {p.mode}")
    footnote = ("Figures are the API's (GET /coverage, GET /kpis) for the period; coverage is computed for the "
                f"whole city and kept {leaders.COVERAGE_TTL_S:.0f} s. Response circles are network isochrones "
                "(buffered reachable streets). Click a unit to go down a level; the path above goes back up.")
    return {**view, "areas": areas, "events": events, "places": places, "outline": outline, "route": route,
            "summary": summary, "footnote": footnote,
            "params": {"city": p.city if not p.unit else None, "unit": p.unit, "start": p.start.isoformat(),
                       "end": p.end.isoformat(), "category": p.category, "mode": p.mode, "minutes": p.minutes,
                       "grids": p.grids},
            "measures": leaders.MEASURES}


@router.get("/leaders", response_class=HTMLResponse, summary="Leaders' coverage map: a unit's children "
            "coloured by a measure, drill-down from city to grid")
async def leaders_page(request: Request, engine: ReadEngineDep, settings: SettingsDep, p: ViewDep,
                       export: Annotated[bool, Query(description="download as one standalone HTML file")] = False,
                       ) -> Response:
    """City → district → street → community → grid: click a unit to go down a level, the path at the top to go
    back up. The panel holds the measure, the period, the heat map's category, the response circles' mode and
    minutes, the figures as a sortable table (and CSV), and a link saving the page as one HTML file."""
    prefix = str(request.base_url).rstrip("/") if export else ""
    try:
        if p.grids and not export:  # a unit of many grids: its grids from tiles, not thousands in the page
            count = await run_in_threadpool(_grids_in, engine, p)
            if count > settings.leaders_inline_grids_max:
                where = {"unit": p.unit} if p.unit else {"city": p.city}
                return RedirectResponse(f"/leaders/grids?{urlencode(where)}", status_code=303)
        view = await run_in_threadpool(build_view, engine, settings, p, prefix=prefix)
    except GridpatrolError as exc:
        return HTMLResponse(message_page("Cannot draw this map", str(exc)), status_code=status_for(exc))
    links = {"csv": f"{prefix}/leaders/figures?{p.query(format='csv')}",
             "export": f"{prefix}/leaders?{p.query(export='1')}"}
    fmap = leaders_map(view, links=links)  # the basemap: maps/static/basemap.js
    if export:
        name = view["unit"].code or str(view["unit"].id)
        return HTMLResponse(standalone_html(fmap),
                            headers={"Content-Disposition": f'attachment; filename="leaders-{name}.html"'})
    return HTMLResponse(map_to_html(fmap))


GRIDS_PAGE = Path(__file__).resolve().parents[2] / "maps" / "static" / "leaders" / "grids.html"


@router.get("/leaders/grids", response_class=HTMLResponse, summary="Every grid of the jurisdiction coloured by a "
            "figure, drawn from vector tiles: a province's 50,000 grids in one view")
def grids_page(_: Viewer) -> FileResponse:
    """The page holds no feature: the grids come from ``/tiles/grids`` (one point per grid below zoom 12, outlines
    from 12), coloured by open cases past their deadline, open cases or households; click a grid for its leaders'
    map (``/leaders?unit=CODE``)."""
    return FileResponse(GRIDS_PAGE, media_type="text/html")


def _grids_in(engine: Engine, p: ViewParams) -> int:
    with engine.connect() as conn:
        return grids_extent(conn, scope=_unit_scope(p.scope, leaders.find_unit(conn, city=p.city, unit=p.unit)))[1]


def _unit_scope(scope: Scope, found: leaders.Unit) -> Scope:
    """The grids of a unit (or a city) the viewer asked for, as a jurisdiction inside their own: ForbiddenError
    when it lies outside it."""
    if not scope.covers(found.city_id, found.code):
        raise ForbiddenError(f"{found.name} lies outside your jurisdiction")
    return Scope(found.level, found.city_id, found.code if found.level != "city" else None)


@router.get("/leaders/grids/extent", summary="Where the jurisdiction's grids are, and how many")
def grids_extent_of(conn: ReadConnectionDep, user: Viewer,
                    city: Annotated[str | None, Query(description="only this city's grids (name or id)")] = None,
                    unit: Annotated[str | None, Query(description="only the grids inside this unit (its code)")] = None,
                    ) -> dict[str, Any]:
    """The box around the viewer's grids and their number; with ``unit`` or ``city``, those inside it (where it
    lies in the viewer's jurisdiction)."""
    found = None if city is None and unit is None else leaders.find_unit(conn, city=city, unit=unit)
    box, count = grids_extent(conn, scope=user.scope if found is None else _unit_scope(user.scope, found))
    answer: dict[str, Any] = {"bbox": list(box) if box else None, "grids": count}
    return answer if found is None else {**answer, "unit": found.name}


@router.get("/leaders/figures", summary="The leaders' table: each unit's figures, as JSON or CSV")
async def leaders_figures(engine: ReadEngineDep, settings: SettingsDep, p: ViewDep,
                          format: Literal["json", "csv"] = "json") -> Any:
    """The table beside the map: per unit households, grids, streets walked, buildings visited, response-circle
    shares, events, on-time closure rate, open overdue and events per 1,000 households."""
    view = await run_in_threadpool(build_figures, engine, settings, p)
    rows = [{"code": u["code"], "name": u["name"], "level": view["level"], **u["figures"]} for u in view["units"]]
    if format == "json":
        return {"unit": {"level": view["unit"].level, "code": view["unit"].code, "name": view["unit"].name},
                "level": view["level"], "start": p.start.isoformat(), "end": p.end.isoformat(), "mode": p.mode,
                "minutes": p.minutes, "notes": view["notes"], "rows": rows}
    out = io.StringIO()
    keys = ["code", "name", "level", *(k for k, _h, _f in TABLE_COLUMNS)]
    write_rows(out, rows, keys)
    name = view["unit"].code or str(view["unit"].id)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="leaders-{name}.csv"'})

