"""Vector tiles (Mapbox Vector Tile 2.1, the XYZ scheme in Web Mercator) of the city model and the open cases,
built in PostGIS, and a TileJSON 3.0.0 document per layer: what a Leaflet or MapLibre page, QGIS or GDAL's MVT
driver reads. Every tile holds only the caller's jurisdiction (a tile outside it is empty, not an error); each
answer carries an ETag of its bytes, so an unchanged tile costs the client a 304 and no download."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from api.consistency import ReadConnectionDep
from api.tokens import CurrentUser
from gis.access.scope import User
from gis.dispatch.store.tiles import event_tile
from gis.errors import BadRequestError
from gis.geo.basemap import LAYERS as BASEMAP_LAYERS
from gis.geo.tiles import TILE_LAYERS, check_tile, tile_layer
from gis.planning.store.basemap import TILE_SIZES, basemap_tile
from gis.planning.store.tiles import city_tile

router = APIRouter(tags=["layers"])
MVT = "application/vnd.mapbox-vector-tile"
BASEMAP = "basemap"
"""The offline basemap's tileset: one tile, a layer per theme (``gis.planning.store.basemap``)."""
BASEMAP_FIELDS = {"kind": "class (primary, minor, path; park, forest; residential, …)", "name": "local name",
                  "name_en": "English name", "ref": "road number"}


def tile_bytes(conn: Any, user: User, layer: str, z: int, x: int, y: int, *, tile_size: int = 256) -> bytes:
    """One layer's tile as the user may see it (the basemap's is everyone's)."""
    if layer == BASEMAP:
        check_tile(z, x, y)
        if tile_size not in TILE_SIZES:
            raise BadRequestError(f"tile_size {tile_size} is not one of {', '.join(map(str, TILE_SIZES))}")
        return basemap_tile(conn, z, x, y, tile_size=tile_size)
    tile_layer(layer)
    check_tile(z, x, y)
    if layer == "events":
        return event_tile(conn, z, x, y, scope=user.scope,
                          department=user.department_desk)
    return city_tile(conn, layer, z, x, y, scope=user.scope)


@router.get("/tiles/{layer}/{z}/{x}/{y}.mvt", summary="A vector tile of a layer (Mapbox Vector Tile)",
            response_class=Response,
            responses={200: {"content": {MVT: {}}, "description": "the tile (empty: nothing there for you)"},
                       304: {"description": "unchanged since the ETag sent in If-None-Match"},
                       400: {"description": "z/x/y out of range"}, 404: {"description": "no such layer"}})
def tile(layer: str, z: int, x: int, y: int, conn: ReadConnectionDep, user: CurrentUser,
         if_none_match: Annotated[str | None, Header()] = None,
         tile_size: Annotated[int, Query(
             description="(basemap) the pixels the client draws a tile at: 256, or 512 for MapLibre GL")] = 256,
         ) -> Response:
    """Layers: ``basemap`` (the offline basemap: water, green, landuse, waterways, rail, buildings, roads, places,
    pois), ``admin_units``, ``grids`` (with households, buildings, open and open-overdue cases), ``buildings``
    (zoom 14+), ``streets`` (with names; main roads below zoom 13), ``key_places``, ``events`` (clusters with
    counts below zoom 13, then one point per case)."""
    started = time.perf_counter()
    body = tile_bytes(conn, user, layer, z, x, y, tile_size=tile_size)
    spent = (time.perf_counter() - started) * 1000
    etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    # the basemap changes only when rebuilt: a browser keeps its tiles an hour; the rest is asked again each time
    cache = "private, max-age=3600" if layer == BASEMAP else "private, no-cache"
    headers = {"ETag": etag, "Cache-Control": cache, "Vary": "Authorization, Cookie",
               "Server-Timing": f"tile;dur={spent:.2f}"}  # the tile's making, what the benchmark reads
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT, headers=headers)


@router.get("/tiles/{layer}/tilejson.json", summary="A layer's TileJSON 3.0.0 document", response_model=None,
            responses={404: {"description": "no such layer"}})
def tilejson(layer: str, request: Request, _: CurrentUser) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    if layer == BASEMAP:
        return {
            "tilejson": "3.0.0", "name": BASEMAP,
            "description": "底图 The offline basemap, from the city's OSM extract", "scheme": "xyz",
            "tiles": [f"{base}/tiles/{BASEMAP}/{{z}}/{{x}}/{{y}}.mvt"], "minzoom": 0, "maxzoom": 22,
            "bounds": [-180, -85.0511, 180, 85.0511], "attribution": "© OpenStreetMap contributors (ODbL)",
            "vector_layers": [{"id": name, "fields": BASEMAP_FIELDS, "minzoom": 14 if name == "buildings" else 0,
                               "maxzoom": 22} for name in (*BASEMAP_LAYERS, "buildings")],
        }
    found = tile_layer(layer)
    return {
        "tilejson": "3.0.0", "name": found.name, "description": found.title, "scheme": "xyz",
        "tiles": [f"{base}/tiles/{found.name}/{{z}}/{{x}}/{{y}}.mvt"], "minzoom": 0, "maxzoom": found.maxzoom,
        "bounds": [-180, -85.0511, 180, 85.0511], "attribution": "© OpenStreetMap contributors (ODbL)",
        "vector_layers": [{"id": found.name, "description": found.title, "minzoom": found.minzoom,
                           "maxzoom": found.maxzoom, "fields": found.fields}],
    }


@router.get("/tiles", summary="The tile layers", response_model=None)
def layers(request: Request, _: CurrentUser) -> list[dict[str, Any]]:
    base = str(request.base_url).rstrip("/")
    basemap = {"name": BASEMAP, "title": "底图 Basemap", "minzoom": 0, "maxzoom": 22, "geometry": "mixed",
               "tilejson": f"{base}/tiles/{BASEMAP}/tilejson.json"}
    return [basemap] + [{"name": t.name, "title": t.title, "minzoom": t.minzoom, "maxzoom": t.maxzoom,
                         "geometry": t.geometry, "tilejson": f"{base}/tiles/{t.name}/tilejson.json"}
                        for t in TILE_LAYERS.values()]
