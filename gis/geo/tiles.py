"""Web map tiles with no database: the XYZ scheme (Web Mercator, EPSG:3857, the OGC WebMercatorQuad tile matrix
set), a tile's bounds, and what each vector-tile layer holds at which zoom.

The tiles themselves are built in PostGIS (``ST_AsMVT``): see ``gis.planning.store.tiles`` and
``gis.dispatch.store.tiles``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gis.errors import BadRequestError, NotFoundError

MAX_ZOOM = 22
EXTENT = 4096
"""A tile's coordinate grid (Mapbox Vector Tile's default)."""
BUFFER = 64
"""Pixels of geometry kept beyond a tile's edge, so that lines and outlines join across tiles."""
WORLD_M = 2 * math.pi * 6378137.0
"""The width of the Web Mercator world in metres."""


@dataclass(frozen=True)
class TileLayer:
    name: str
    title: str
    minzoom: int
    maxzoom: int
    fields: dict[str, str]
    """Attribute → what it holds (TileJSON's ``vector_layers``)."""
    geometry: str = "polygon"


TILE_LAYERS: dict[str, TileLayer] = {layer.name: layer for layer in (
    TileLayer("admin_units", "行政区划 Districts, streets and communities", 6, MAX_ZOOM,
              {"code": "GB/T 2260-style code", "name": "name", "name_en": "English name",
               "level": "city, district, street or community"}),
    TileLayer("grids", "网格 Grids", 8, MAX_ZOOM,  # a 300 m grid is 2 px at zoom 10: below 12, one point per grid
              {"code": "15-digit grid code (zoom 12+)", "name": "name (zoom 12+)",
               "households": "households (the register's or estimated)",
               "buildings": "buildings (zoom 12+)", "open": "open cases",
               "open_overdue": "open cases past their deadline"}),
    TileLayer("buildings", "建筑 Buildings", 14, MAX_ZOOM,
              {"name": "name", "building_type": "OSM building type", "households": "households",
               "levels": "storeys"}),
    TileLayer("streets", "道路 Streets", 11, MAX_ZOOM,
              {"name": "street name (Chinese first, as OSM has it)", "highway": "OSM road class"}, "line"),
    TileLayer("key_places", "重点场所 Key places", 12, MAX_ZOOM, {"kind": "school, market, clinic, …",
                                                              "name": "name"}, "point"),
    TileLayer("events", "事件 Open cases", 6, MAX_ZOOM,
              {"count": "cases at this point (aggregated below zoom 13)", "category": "category code (zoom 13+)",
               "state": "state (zoom 13+)", "overdue": "past its deadline", "id": "case id (zoom 13+)"}, "point"),
)}


GRID_OUTLINES_FROM = 12
"""The zoom from which the grids layer holds outlines; below it each grid is one point (its centroid, stored in
Web Mercator) with the figures a map colours by (households, open, open_overdue) and no code, name or buildings: a
province's 50,000 grids colour a map in about a megabyte of tiles."""


def check_tile(z: int, x: int, y: int) -> None:
    """A tile of the XYZ scheme, or a BadRequestError saying which coordinate is out of range."""
    if not 0 <= z <= MAX_ZOOM:
        raise BadRequestError(f"zoom {z} is out of range: 0 to {MAX_ZOOM}")
    top = 2 ** z - 1
    if not 0 <= x <= top or not 0 <= y <= top:
        raise BadRequestError(f"tile {z}/{x}/{y} does not exist: at zoom {z}, x and y run from 0 to {top}")


def tile_layer(name: str) -> TileLayer:
    layer = TILE_LAYERS.get(name)
    if layer is None:
        raise NotFoundError(f"no tile layer {name!r}: use one of {', '.join(TILE_LAYERS)}")
    return layer


def tile_bounds(z: int, x: int, y: int, *, buffer: float = 0.0) -> tuple[float, float, float, float]:
    """A tile's (west, south, east, north) in WGS-84 degrees, grown by ``buffer`` of its width on every side."""
    n = 2 ** z

    def lon(tx: float) -> float:
        return tx / n * 360.0 - 180.0

    def lat(ty: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ty / n))))

    return (lon(x - buffer), max(lat(y + 1 + buffer), -85.0511287798), lon(x + 1 + buffer),
            min(lat(y - buffer), 85.0511287798))


def search_box(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The WGS-84 box a tile's rows are read from: the tile and the buffer its geometry keeps beyond its edges."""
    return tile_bounds(z, x, y, buffer=BUFFER / EXTENT)


def tolerance_m(z: int) -> float:
    """Half a tile pixel at zoom ``z``, in Web Mercator metres: what simplifying an outline before encoding may
    drop without any visible change (the encoder snaps to the pixel grid anyway)."""
    return WORLD_M / 2 ** z / EXTENT / 2


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The tile holding a point at zoom ``z``."""
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(max(min(lat, 85.0511287798), -85.0511287798))
    y = int((1 - math.asinh(math.tan(lat_r)) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)
