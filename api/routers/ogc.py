"""OGC API — Features (Part 1: Core, GeoJSON, OpenAPI 3.0; Part 2: Coordinate Reference Systems by Reference) under
``/ogc``: what QGIS and GDAL's OAPIF driver open. Collections: grids, admin units, buildings, key places and events
(the caller's jurisdiction only; events without what a reporter wrote, showed or left as contact). Errors are the
OGC exception document (``{"code", "description"}``), 400 for a parameter that does not parse.

OGC API — Tiles (Part 1: core, tileset, tilesets list, geodata tilesets, MVT) for the same collections, in
WebMercatorQuad: ``/ogc/collections/{id}/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``, the same tiles as
``/tiles/{layer}/{z}/{x}/{y}.mvt``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from api.consistency import ReadConnectionDep
from api.routers.tiles import tile_bytes
from api.tokens import CurrentUser
from gis.access.scope import User
from gis.db.features import feature_one, feature_page
from gis.dispatch.store.tiles import EVENT_FIELDS, event_rows
from gis.errors import BadRequestError, ForbiddenError, GridpatrolError, NotFoundError
from gis.geo.ogc import CRS84, CRSES, output_crs, parse_bbox, parse_datetime
from gis.geo.tiles import MAX_ZOOM, tile_layer
from gis.planning.store.tiles import COLLECTION_FIELDS, collection_rows

router = APIRouter(prefix="/ogc", tags=["OGC API"])
GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
]
WEB_MERCATOR_QUAD = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MVT = "application/vnd.mapbox-vector-tile"
COLLECTIONS = {
    "grids": ("网格 Grids", "the grids with their households and buildings; datetime: their current version's time"),
    "admin_units": ("行政区划 Administrative units", "city, districts, streets and communities"),
    "buildings": ("建筑 Buildings", "buildings from OpenStreetMap with their estimated households"),
    "key_places": ("重点场所 Key places", "schools, markets, clinics, elderly homes, construction sites"),
    "events": ("事件 Events", "reported cases and where they stand; datetime: when reported; no personal data"),
}
MAX_LIMIT = 10_000


def _error(exc: GridpatrolError) -> JSONResponse:
    """An OGC exception document: 404 for what does not exist, 403 for what is not the caller's, else 400."""
    status, code = ((404, "NotFound") if isinstance(exc, NotFoundError) else
                    (403, "Forbidden") if isinstance(exc, ForbiddenError) else (400, "InvalidParameterValue"))
    return JSONResponse({"code": code, "description": str(exc)}, status_code=status)


def ogc(fn: Callable[[], Response | dict[str, Any]]) -> Response:
    """The route's answer, or its refusal as an OGC exception document."""
    try:
        out = fn()
    except GridpatrolError as exc:
        return _error(exc)
    return out if isinstance(out, Response) else JSONResponse(out)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _collection(base: str, cid: str) -> dict[str, Any]:
    title, description = COLLECTIONS[cid]
    return {
        "id": cid, "title": title, "description": description, "itemType": "feature",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]], "crs": CRS84}},
        "crs": list(CRSES), "storageCrs": CRS84,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/collections/{cid}"},
            {"rel": "items", "type": GEOJSON, "title": "the features", "href": f"{base}/collections/{cid}/items"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": "application/json",
             "title": "vector tiles (OGC API — Tiles)", "href": f"{base}/collections/{cid}/tiles"},
            {"rel": "describedby", "type": "application/json", "title": "vector tiles (TileJSON)",
             "href": f"{base.removesuffix('/ogc')}/tiles/{cid}/tilejson.json"},
        ],
    }


@router.get("", include_in_schema=False)
@router.get("/", summary="OGC API landing page")
def landing(request: Request, _: CurrentUser) -> dict[str, Any]:
    base = _base(request)
    root = base.removesuffix("/ogc")
    return {"title": "gridpatrol", "description": "网格化管理 grids, units, buildings, key places and events",
            "links": [
                {"rel": "self", "type": "application/json", "href": f"{base}/"},
                {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
                 "href": f"{root}/openapi.json"},
                {"rel": "service-doc", "type": "text/html", "href": f"{root}/docs"},
                {"rel": "conformance", "type": "application/json", "href": f"{base}/conformance"},
                {"rel": "data", "type": "application/json", "href": f"{base}/collections"},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", "type": "application/json",
                 "href": f"{base}/tileMatrixSets"},
            ]}


@router.get("/conformance", summary="The OGC conformance classes the service implements")
def conformance(_: CurrentUser) -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", summary="The feature collections")
def collections(request: Request, _: CurrentUser) -> dict[str, Any]:
    base = _base(request)
    return {"links": [{"rel": "self", "type": "application/json", "href": f"{base}/collections"}],
            "collections": [_collection(base, cid) for cid in COLLECTIONS]}


def _known(cid: str) -> None:
    if cid not in COLLECTIONS:
        raise NotFoundError(f"no collection {cid!r}: use one of {', '.join(COLLECTIONS)}")


@router.get("/collections/{cid}", summary="A feature collection", response_model=None)
def collection(cid: str, request: Request, _: CurrentUser) -> Response:
    def answer() -> dict[str, Any]:
        _known(cid)
        return _collection(_base(request), cid)
    return ogc(answer)


def _rows(cid: str, user: User, bbox: Any, interval: Any) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    if cid == "events":
        sql, params = event_rows(bbox=bbox, interval=interval, scope=user.scope,
                                 department=user.department_desk)
        return sql, params, EVENT_FIELDS
    sql, params = collection_rows(cid, bbox=bbox, interval=interval, scope=user.scope)
    return sql, params, COLLECTION_FIELDS[cid]


@router.get("/collections/{cid}/items", summary="The features of a collection (GeoJSON), a page at a time",
            response_model=None, responses={200: {"content": {GEOJSON: {}}},
                                            400: {"description": "a parameter that does not parse (OGC exception)"},
                                            404: {"description": "no such collection"}})
def items(cid: str, request: Request, conn: ReadConnectionDep, user: CurrentUser,
          bbox: str | None = None,
          bbox_crs: Annotated[str | None, Query(alias="bbox-crs")] = None,
          datetime: str | None = None,
          crs: str | None = None,
          limit: str | None = None,
          offset: str | None = None) -> Response:
    """``bbox`` (in ``bbox-crs``, default CRS84), ``datetime`` (an instant or ``start/end``, either open with
    ``..``), ``crs`` (the output CRS: CRS84, EPSG:4326, EPSG:4490, EPSG:3857), ``limit`` (1–10,000, default 100),
    ``offset``; the ``next`` link pages on."""
    def answer() -> Response:
        _known(cid)
        size = _integer("limit", limit, 100, 1, MAX_LIMIT)
        start = _integer("offset", offset, 0, 0, 10**9)
        out = output_crs(crs)
        sql, params, fields = _rows(cid, user, parse_bbox(bbox, bbox_crs), parse_datetime(datetime))
        features, more = feature_page(conn, sql, params, fields=fields, limit=size, offset=start, srid=out.srid,
                                      lat_first=out.lat_first, decimals=out.decimals)
        base = f"{_base(request)}/collections/{cid}/items"
        query = dict(request.query_params)
        links = [{"rel": "self", "type": GEOJSON, "href": str(request.url)}]
        if more:
            query.update(offset=str(start + size), limit=str(size))
            links.append({"rel": "next", "type": GEOJSON,
                          "href": f"{base}?" + "&".join(f"{k}={_quote(v)}" for k, v in query.items())})
        body = ('{"type": "FeatureCollection", "numberReturned": ' + str(len(features)) + ', "links": '
                + json.dumps(links) + ', "features": [' + ",".join(features) + "]}")
        return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{out.uri}>"})
    return ogc(answer)


@router.get("/collections/{cid}/items/{fid}", summary="One feature", response_model=None,
            responses={200: {"content": {GEOJSON: {}}}, 404: {"description": "no such feature for you"}})
def item(cid: str, fid: str, request: Request, conn: ReadConnectionDep, user: CurrentUser,
         crs: str | None = None) -> Response:
    def answer() -> Response:
        _known(cid)
        if not fid.isdigit() or len(fid) > 18:
            raise NotFoundError(f"no feature {fid!r} in {cid}")
        out = output_crs(crs)
        sql, params, fields = _rows(cid, user, None, None)
        found = feature_one(conn, sql, params, int(fid), fields=fields, srid=out.srid, lat_first=out.lat_first,
                            decimals=out.decimals)
        if found is None:
            raise NotFoundError(f"no feature {fid} in {cid}")
        feature = json.loads(found)
        feature["links"] = [{"rel": "self", "type": GEOJSON, "href": str(request.url)},
                            {"rel": "collection", "type": "application/json",
                             "href": f"{_base(request)}/collections/{cid}"}]
        return Response(json.dumps(feature, ensure_ascii=False), media_type=GEOJSON,
                        headers={"Content-Crs": f"<{out.uri}>"})
    return ogc(answer)


def _integer(name: str, value: str | None, default: int, low: int, high: int) -> int:
    """A whole number of at least ``low``; above ``high`` it is ``high`` (OGC API Features: a limit larger than
    the server's is no error, the server's applies)."""
    if value is None or value == "":
        return default
    if not value.isdigit() or int(value) < low:
        raise BadRequestError(f"{name} must be a whole number of at least {low}; not {value!r}")
    return min(int(value), high)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe=",:/.")


# ---------------------------------------------------------------- OGC API — Tiles (Part 1), WebMercatorQuad only

def _tile_matrix_set() -> dict[str, Any]:
    """WebMercatorQuad as the OGC Two Dimensional Tile Matrix Set standard (2.0) writes it."""
    origin = 20037508.3427892
    return {
        "id": "WebMercatorQuad", "title": "Google Maps Compatible for the World", "uri": WEB_MERCATOR_QUAD,
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857", "orderedAxes": ["E", "N"],
        "tileMatrices": [{"id": str(z), "scaleDenominator": 559082264.0287178 / 2 ** z,
                          "cellSize": 156543.03392804097 / 2 ** z, "cornerOfOrigin": "topLeft",
                          "pointOfOrigin": [-origin, origin], "tileWidth": 256, "tileHeight": 256,
                          "matrixWidth": 2 ** z, "matrixHeight": 2 ** z} for z in range(MAX_ZOOM + 1)],
    }


@router.get("/tileMatrixSets", summary="The tiling schemes (WebMercatorQuad)")
def tile_matrix_sets(request: Request, _: CurrentUser) -> dict[str, Any]:
    base = _base(request)
    return {"tileMatrixSets": [{"id": "WebMercatorQuad", "title": "Google Maps Compatible for the World",
                                "uri": WEB_MERCATOR_QUAD, "links": [
                                    {"rel": "self", "type": "application/json",
                                     "href": f"{base}/tileMatrixSets/WebMercatorQuad"}]}]}


@router.get("/tileMatrixSets/{tms}", summary="A tiling scheme", response_model=None)
def tile_matrix_set(tms: str, _: CurrentUser) -> Response:
    def answer() -> dict[str, Any]:
        _web_mercator(tms)
        return _tile_matrix_set()
    return ogc(answer)


def _web_mercator(tms: str) -> None:
    if tms != "WebMercatorQuad":
        raise NotFoundError(f"no tile matrix set {tms!r}: WebMercatorQuad only")


def _tileset(base: str, cid: str) -> dict[str, Any]:
    _known(cid)
    layer = tile_layer(cid)
    return {
        "title": f"{COLLECTIONS[cid][0]} (vector tiles)", "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857", "tileMatrixSetURI": WEB_MERCATOR_QUAD,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/collections/{cid}/tiles/WebMercatorQuad"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
             "href": f"{base}/tileMatrixSets/WebMercatorQuad"},
            {"rel": "item", "type": MVT, "templated": True,
             "href": f"{base}/collections/{cid}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"},
        ],
        "layers": [{"id": layer.name, "dataType": layer.geometry, "minTileMatrix": str(layer.minzoom),
                    "maxTileMatrix": str(layer.maxzoom), "propertiesSchema": {
                        "type": "object", "properties": {k: {"description": v} for k, v in layer.fields.items()}}}],
    }


@router.get("/collections/{cid}/tiles", summary="A collection's vector tilesets", response_model=None)
def tilesets(cid: str, request: Request, _: CurrentUser) -> Response:
    def answer() -> dict[str, Any]:
        tileset = _tileset(_base(request), cid)
        return {"links": [{"rel": "self", "type": "application/json",
                           "href": f"{_base(request)}/collections/{cid}/tiles"}],
                "tilesets": [{key: tileset[key] for key in ("title", "dataType", "crs", "tileMatrixSetURI", "links")}]}
    return ogc(answer)


@router.get("/collections/{cid}/tiles/{tms}", summary="A collection's vector tileset", response_model=None)
def tileset(cid: str, tms: str, request: Request, _: CurrentUser) -> Response:
    def answer() -> dict[str, Any]:
        _web_mercator(tms)
        return _tileset(_base(request), cid)
    return ogc(answer)


@router.get("/collections/{cid}/tiles/{tms}/{z}/{row}/{col}", summary="A vector tile (Mapbox Vector Tile)",
            response_model=None, responses={200: {"content": {MVT: {}}}})
def ogc_tile(cid: str, tms: str, z: str, row: str, col: str, conn: ReadConnectionDep, user: CurrentUser) -> Response:
    def answer() -> Response:
        _web_mercator(tms)
        if not (z.isdigit() and row.isdigit() and col.isdigit()):
            raise BadRequestError(f"tile {z}/{row}/{col}: tileMatrix, tileRow and tileCol are whole numbers")
        _known(cid)
        body = tile_bytes(conn, user, cid, int(z), int(col), int(row))
        return Response(body, media_type=MVT)
    return ogc(answer)
