"""The monthly bulletin (每月一研判, 考核通报): a unit's month as JSON, an XLSX workbook or a printable page.

Nothing is stored: each request computes the bulletin from the figures the API gives for the same unit and month
(:mod:`gis.oversight.store.bulletin`). A month in the future, a unit outside the jurisdiction, or a malformed month
gets a clear 4xx before anything is computed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Engine

from api.consistency import ReadEngineDep
from api.deps import SettingsDep, get_engine
from api.jurisdiction import unit_in_jurisdiction
from api.roles import Viewer
from api.settings import Settings
from gis.access.scope import User
from gis.oversight.store import bulletin as bulletin_store
from maps.bulletin import bulletin_page, bulletin_xlsx

router = APIRouter(tags=["leaders"])
EngineDep = Annotated[Engine, Depends(get_engine)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def make_bulletin(engine: Engine, settings: Settings, user: User, city: str | None, unit: str | None,
                  month: str | None) -> dict[str, Any]:
    with engine.connect() as conn:
        found = unit_in_jurisdiction(conn, user, city=city, unit=unit, default_city=settings.default_city)
        month, zone = bulletin_store.asked_month(conn, found, month, timezone=settings.timezone)
    return bulletin_store.bulletin(engine, found, month, timezone=zone)


@router.get("/bulletins", summary="A unit's monthly bulletin: rankings with the change from last month, top "
            "categories, hot spots, patrol compliance, supervised and hung cases, a written summary",
            response_model=None, responses={200: {"content": {XLSX: {}, "text/html": {}}},
                                            403: {"description": "the unit lies outside your jurisdiction"},
                                            404: {"description": "no such unit"},
                                            422: {"description": "a malformed month, or one that has not begun"}})
async def bulletins(engine: ReadEngineDep, settings: SettingsDep, user: Viewer,
                    unit: Annotated[str | None, Query(description="a district (6 digits), street (9), community "
                                                                  "(12) or grid (15) code")] = None,
                    city: Annotated[str | None, Query(description="a city (key, name or id)")] = None,
                    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default: "
                                                       "last month", examples=["2026-11"])] = None,
                    format: Literal["json", "xlsx", "html"] = "json",
                    lang: Literal["zh", "en"] = "zh") -> Any:
    """Default unit: the signed-in user's (or their city). ``format=xlsx``: one sheet per ranking with native
    number formats and a chart; ``format=html``: a page made for print (A4), Chinese or English (``lang``)."""
    data = await run_in_threadpool(make_bulletin, engine, settings, user, city, unit, month)
    code = data["unit"]["code"] or str(data["unit"]["city_id"])
    name = f"bulletin-{code}-{data['month']}"
    if format == "xlsx":
        body = await run_in_threadpool(bulletin_xlsx, data)
        return Response(body, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    if format == "html":
        query = {k: v for k, v in (("unit", unit), ("city", city), ("month", data["month"])) if v}
        other = "zh" if lang == "en" else "en"
        links = {"other": "/bulletins?" + urlencode({**query, "format": "html", "lang": other}),
                 "xlsx": "/bulletins?" + urlencode({**query, "format": "xlsx"})}
        return HTMLResponse(bulletin_page(data, lang=lang, links=links))
    return data
