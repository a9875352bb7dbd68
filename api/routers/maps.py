"""Map pages, drawn by :mod:`maps` from the stored layers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse

from api.consistency import ReadConnectionDep
from api.deps import SettingsDep
from api.jurisdiction import require_city
from api.roles import Desk, Planner, Viewer
from api.tokens import CurrentUser
from gis.errors import ForbiddenError, NotFoundError
from gis.planning.store import city as features
from gis.planning.store.basemap import basemap_built
from maps.city import city_map, map_to_html, message_page, tiled_city_page

router = APIRouter(tags=["maps"])


PLANNER = Path(__file__).resolve().parents[2] / "maps" / "static" / "planner" / "index.html"
CONSOLE = Path(__file__).resolve().parents[2] / "maps" / "static" / "console" / "index.html"


@router.get("/planner", response_class=HTMLResponse, summary="The planner's page: view and edit grid boundaries")
def planner_page(_: Planner) -> FileResponse:
    """``?community=CODE`` opens a community, ``&grid=CODE`` selects a grid for editing."""
    return FileResponse(PLANNER, media_type="text/html")


@router.get("/basemap.json", summary="The intranet basemap the pages draw under their maps (none: url null)",
            response_model=None)
def basemap(conn: ReadConnectionDep, settings: SettingsDep, _: CurrentUser) -> dict[str, Any]:
    """``url`` (an XYZ template, GRIDPATROL_TILE_URL), ``crs`` (wgs84 or gcj02: the pages shift GCJ-02 tiles onto
    the WGS-84 overlays), ``attribution``, ``max_zoom``; with no intranet basemap named, ``vector``: whether the
    offline basemap has been built (the pages then draw ``tiles`` with MapLibre GL, 512-pixel tiles)."""
    return {"url": settings.tile_url or None, "crs": settings.tile_crs, "attribution": settings.tile_attribution,
            "max_zoom": settings.tile_max_zoom, "vector": not settings.tile_url and basemap_built(conn),
            "tiles": "/tiles/basemap/{z}/{x}/{y}.mvt?tile_size=512"}


@router.get("/console", response_class=HTMLResponse, summary="The centre's console: the live queue and the loop")
def console_page(_: Desk) -> FileResponse:
    """Centre staff (dispatchers) and departments: the cases of their jurisdiction, new ones pushed as they come."""
    return FileResponse(CONSOLE, media_type="text/html")


@router.get("/", response_class=HTMLResponse, summary="Map of a city: buildings by households, key places")
def city_page(
    conn: ReadConnectionDep, settings: SettingsDep, user: Viewer,
    city: Annotated[str | None, Query(description="an imported city; default: the configured one")] = None,
) -> HTMLResponse:
    """Only what lies in the viewer's jurisdiction; their own city by default."""
    cities = [c for c in features.list_cities(conn) if user.scope.city_id in (None, c.id)]
    if not cities:
        return HTMLResponse(message_page("No city imported yet", "Import an OpenStreetMap extract first:",
                                         status_hint="gridpatrol import-osm data/nanjing-xinjiekou.osm "
                                                     "--city nanjing --code 320100 (docs/ONBOARDING.md)"),
                            status_code=404)
    try:
        row = features.find_city(conn, city or (str(user.scope.city_id) if user.scope.city_id else None)
                                 or settings.default_city)
        require_city(user, row.id)
    except ForbiddenError as exc:
        return HTMLResponse(message_page("Not your city", str(exc)), status_code=403)
    except NotFoundError as exc:
        if city:
            return HTMLResponse(message_page("Unknown city", str(exc)), status_code=404)
        row = cities[0]
    count = features.building_count(conn, row.id)
    extent = features.city_extent(conn, row.id)
    title = f"{row.name} {row.name_en or ''}".strip()
    if count > settings.city_map_inline_max and extent is not None:  # too large for the page: from the tiles
        return HTMLResponse(tiled_city_page(title, extent.bounds, count, features.household_classes(conn, row.id)))
    buildings = features.read_layer(conn, "buildings", filters={"city_id": row.id}, scope=user.scope)
    places = features.read_layer(conn, "key_places", filters={"city_id": row.id}, scope=user.scope)
    districts = features.read_layer(conn, "admin_units", filters={"city_id": row.id, "level": "district"},
                                    scope=user.scope)
    communities = features.read_layer(conn, "admin_units", filters={"city_id": row.id, "level": "community"},
                                      scope=user.scope)
    grids = features.read_layer(conn, "grids", filters={"city_id": row.id}, scope=user.scope)
    fmap = city_map(buildings, places, districts, grids=grids, communities=communities,
                    title=title,
                    extent=extent,
                    tile_url=None)  # the basemap: maps/static/basemap.js
    return HTMLResponse(map_to_html(fmap))
