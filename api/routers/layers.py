"""GeoJSON FeatureCollections of the stored layers, with bbox filtering and paging."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api.consistency import ReadConnectionDep
from api.deps import BBoxDep, ConnectionDep, PageDep
from api.jurisdiction import require_city
from api.schemas import BuildingLayer, City, GridLayer, KeyPlaceLayer, Layer, UnitLayer, documented
from api.tokens import CurrentUser
from gis.access.scope import User
from gis.planning.store import city as features

router = APIRouter(tags=["layers"])

GEOJSON = "application/geo+json"
class GeoJSONResponse(JSONResponse):
    """The media type the layers are served as (for the OpenAPI schema: the routes hand PostGIS's text over)."""
    media_type = GEOJSON


def _doc(model: type[Layer]) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": "A GeoJSON FeatureCollection (RFC 7946) with numberMatched and "
                  "numberReturned"}, 422: {"description": "bad bbox, paging or filter"}}


def _city_id(conn: Any, city: str | None, user: User) -> int | None:
    if not city:
        return None
    city_id = features.find_city(conn, city).id
    require_city(user, city_id)
    return city_id


def _collection(conn: Any, layer: str, bbox: Any, page: Any, filters: dict[str, Any], user: User) -> Response:
    """Only what lies in the user's jurisdiction."""
    body = features.feature_collection(conn, layer, bbox=bbox, limit=page.limit, offset=page.offset,
                                       filters=filters, scope=user.scope)
    return Response(body, media_type=GEOJSON)


CityQuery = Annotated[str | None, Query(description="an imported city: nanjing, 南京市, …")]


@router.get(
    "/cities",
    summary="Imported cities with their figures",
    response_model=None,
    responses=documented(list[City]),
)
def cities(conn: ConnectionDep, user: CurrentUser) -> list[dict[str, Any]]:
    """The cities of the user's jurisdiction (all of them for an admin bound to none)."""
    return [{"id": c.id, "name": c.name, "name_en": c.name_en, "code": c.code,
             **features.city_summary(conn, c.id)} for c in features.list_cities(conn)
            if user.scope.city_id in (None, c.id)]


@router.get("/admin-units", summary="Cities, districts, streets and communities", response_class=GeoJSONResponse,
            responses=_doc(UnitLayer))
def admin_units(
    conn: ReadConnectionDep, user: CurrentUser, bbox: BBoxDep, page: PageDep, city: CityQuery = None,
    level: Annotated[str | None, Query(pattern="^(city|district|street|community)$")] = None,
    parent_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    return _collection(conn, "admin_units", bbox, page,
                       {"city_id": _city_id(conn, city, user), "level": level, "parent_id": parent_id}, user)


@router.get("/grids", summary="Grids (网格)", response_class=GeoJSONResponse,
            responses=_doc(GridLayer))
def grids(conn: ReadConnectionDep, user: CurrentUser, bbox: BBoxDep, page: PageDep, city: CityQuery = None,
          community_id: Annotated[int | None, Query(ge=1)] = None) -> Response:
    """Grids with their households (confirmed counts where given, else estimates) and buildings."""
    return _collection(conn, "grids", bbox, page,
                       {"city_id": _city_id(conn, city, user), "community_id": community_id}, user)


@router.get("/buildings", summary="Buildings with estimated and confirmed households", response_class=GeoJSONResponse,
            responses=_doc(BuildingLayer))
def buildings(
    conn: ReadConnectionDep, user: CurrentUser, bbox: BBoxDep, page: PageDep, city: CityQuery = None,
    use: Annotated[str | None, Query(pattern="^(residential|non_residential|unknown)$")] = None,
    grid_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    return _collection(conn, "buildings", bbox, page,
                       {"city_id": _city_id(conn, city, user), "use": use, "grid_id": grid_id}, user)


@router.get("/key-places", summary="Key places: schools, hospitals, markets, police, elderly homes, …",
            response_class=GeoJSONResponse, responses=_doc(KeyPlaceLayer))
def key_places(
    conn: ReadConnectionDep, user: CurrentUser, bbox: BBoxDep, page: PageDep, city: CityQuery = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    return _collection(conn, "key_places", bbox, page, {"city_id": _city_id(conn, city, user), "kind": kind}, user)
