"""The offline basemap's content, read from a city's own OpenStreetMap extract: roads by class with their names,
railways, water (areas and rivers), green areas, land use, place names and landmarks. No database here: the rows
go to PostGIS (``gis.planning.store.basemap``), which cuts them into vector tiles that the pages draw with
MapLibre GL (``maps/static/basemap.js``). Buildings are not read again: the basemap draws the city's own.

What shows at which zoom is decided here, once, per feature (``minzoom``): by class for roads, rivers and places;
by size for areas (an area appears once it covers about 4×4 pixels). Names are the local ones first: ``name`` (in
China, the Chinese name), else ``name:zh``; ``name:en`` is kept for the English pages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from gis.errors import OsmFileError
from gis.geo.osm import _area_geometry, _check_readable, _header_bounds, _osmium_errors
from gis.geo.tiles import WORLD_M

LAYERS = ("water", "green", "landuse", "waterways", "roads", "rail", "places", "pois")
"""The basemap's vector layers, bottom to top (buildings come from the city's own table)."""

# highway=* → (kind, minzoom). Links join their road's kind a little later.
ROADS: dict[str, tuple[str, int]] = {
    "motorway": ("motorway", 6), "trunk": ("trunk", 7), "primary": ("primary", 9), "secondary": ("secondary", 10),
    "tertiary": ("tertiary", 11), "motorway_link": ("motorway", 11), "trunk_link": ("trunk", 12),
    "primary_link": ("primary", 12), "secondary_link": ("secondary", 13), "tertiary_link": ("tertiary", 13),
    "residential": ("minor", 13), "unclassified": ("minor", 13), "living_street": ("minor", 13),
    "road": ("minor", 13), "service": ("service", 14), "pedestrian": ("pedestrian", 14), "track": ("path", 14),
    "footway": ("path", 15), "path": ("path", 15), "cycleway": ("path", 15), "steps": ("path", 15),
    "bridleway": ("path", 15),
}
RAIL: dict[str, tuple[str, int]] = {"rail": ("rail", 9), "light_rail": ("light_rail", 11),
                                    "subway": ("subway", 11), "tram": ("tram", 13), "narrow_gauge": ("rail", 11)}
WATERWAYS: dict[str, tuple[str, int]] = {"river": ("river", 8), "canal": ("canal", 10), "stream": ("stream", 13),
                                         "drain": ("drain", 14), "ditch": ("drain", 14)}
# (key, value) → (layer, kind) for areas, first match wins
AREAS: tuple[tuple[str, str | None, str, str], ...] = (
    ("natural", "water", "water", "water"), ("waterway", "riverbank", "water", "water"),
    ("landuse", "reservoir", "water", "water"), ("landuse", "basin", "water", "water"),
    ("leisure", "swimming_pool", "water", "pool"),
    ("leisure", "park", "green", "park"), ("leisure", "garden", "green", "park"),
    ("leisure", "nature_reserve", "green", "forest"), ("leisure", "golf_course", "green", "grass"),
    ("leisure", "pitch", "green", "sport"), ("leisure", "sports_centre", "green", "sport"),
    ("leisure", "playground", "green", "park"), ("landuse", "forest", "green", "forest"),
    ("natural", "wood", "green", "forest"), ("natural", "scrub", "green", "forest"),
    ("landuse", "grass", "green", "grass"), ("landuse", "meadow", "green", "grass"),
    ("natural", "grassland", "green", "grass"), ("natural", "heath", "green", "grass"),
    ("landuse", "recreation_ground", "green", "park"), ("landuse", "village_green", "green", "park"),
    ("landuse", "cemetery", "green", "cemetery"), ("amenity", "grave_yard", "green", "cemetery"),
    ("amenity", "school", "landuse", "education"), ("amenity", "university", "landuse", "education"),
    ("amenity", "college", "landuse", "education"), ("amenity", "kindergarten", "landuse", "education"),
    ("amenity", "hospital", "landuse", "hospital"),
    ("landuse", "residential", "landuse", "residential"), ("landuse", "commercial", "landuse", "commercial"),
    ("landuse", "retail", "landuse", "commercial"), ("landuse", "industrial", "landuse", "industrial"),
    ("landuse", "railway", "landuse", "industrial"), ("landuse", "construction", "landuse", "construction"),
    ("landuse", "farmland", "landuse", "farmland"), ("landuse", "farmyard", "landuse", "farmland"),
    ("landuse", "orchard", "landuse", "farmland"), ("landuse", "vineyard", "landuse", "farmland"),
    ("landuse", "allotments", "landuse", "farmland"), ("landuse", "military", "landuse", "military"),
)
AREA_KEYS = frozenset(k for k, _, _, _ in AREAS)
PLACES: dict[str, int] = {"city": 6, "town": 9, "suburb": 11, "village": 11, "quarter": 13, "hamlet": 13,
                          "neighbourhood": 14, "island": 12, "locality": 15}
# Landmarks whose names help a person find their way: (key, value or None for any) → (kind, minzoom)
POIS: tuple[tuple[str, str | None, str, int], ...] = (
    ("railway", "station", "station", 12), ("public_transport", "station", "station", 13),
    ("station", "subway", "station", 13), ("tourism", "attraction", "attraction", 14),
    ("tourism", "museum", "attraction", 14), ("historic", None, "historic", 15),
    ("amenity", "hospital", "hospital", 14), ("amenity", "university", "education", 14),
    ("amenity", "college", "education", 15), ("amenity", "school", "education", 16),
    ("amenity", "townhall", "government", 15), ("office", "government", "government", 16),
    ("amenity", "place_of_worship", "worship", 16), ("shop", "mall", "shopping", 15),
    ("leisure", "park", "park", 14), ("amenity", "police", "police", 16), ("amenity", "marketplace", "shopping", 16),
)
POI_KEYS = frozenset(k for k, _, _, _ in POIS)
AREA_LABEL_PX = 64
"""A named lake or park gets a label once it covers 16 × this many square pixels (a label is wide)."""


@dataclass
class BasemapFeature:
    layer: str
    kind: str
    name: str | None
    name_en: str | None
    ref: str | None
    minzoom: int
    geometry: BaseGeometry
    """WGS-84."""


@dataclass
class Basemap:
    """The basemap content of one extract, clipped to its bounds."""

    bounds: Polygon
    features: list[BasemapFeature] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(LAYERS, 0)
        for f in self.features:
            out[f.layer] += 1
        return out


_TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)


def area_minzoom(area_m2: float, *, pixels: float = 16.0, floor: int = 8) -> int:
    """The first zoom at which an area of ``area_m2`` (Web Mercator square metres) covers ``pixels`` square
    pixels of a 256-pixel tile; at least ``floor``, at most 16 (everything shows by then)."""
    if area_m2 <= 0:
        return 16
    # pixel side at zoom z: WORLD_M / 2**z / 256; area ≥ pixels · side² ⇔ z ≥ log2(WORLD_M / 256 · sqrt(pixels / a))
    z = math.ceil(math.log2(WORLD_M / 256 * math.sqrt(pixels / area_m2)))
    return max(floor, min(16, z))


def mercator_area(geom: BaseGeometry) -> float:
    return float(shapely.transform(geom, lambda xy: np.column_stack(_TO_MERCATOR.transform(xy[:, 0], xy[:, 1]))).area)


def names(tags: Any) -> tuple[str | None, str | None]:
    """(local name, English name) of an object's tags: in China the local name is the Chinese one."""
    name = tags.get("name") or tags.get("name:zh") or None
    return name, tags.get("name:en") or None


def _first(tags: Any, table: tuple[tuple[str, str | None, str, Any], ...]) -> tuple[str, Any] | None:
    for key, value, a, b in table:
        found = tags.get(key)
        if found is not None and (value is None or found == value):
            return a, b
    return None


def read_basemap(path: str | Path, *, bounds: Polygon | None = None,
                 progress: Callable[[str], None] | None = None) -> Basemap:
    """Read the basemap content of an OSM file (any format osmium reads), clipped to ``bounds`` (default: the
    file's own, else the extent of what it holds).

    Raises
    ------
    OsmFileError
        The file is missing, empty, truncated or not OSM, or holds no road at all.
    """
    path = Path(path)
    _check_readable(path)
    note = progress or (lambda _msg: None)
    if bounds is None:
        try:
            bounds = _header_bounds(path)
        except RuntimeError as exc:
            raise OsmFileError(f"{path} is not a readable OSM file: {exc}") from exc
    out: list[BasemapFeature] = []
    wkb = osmium.geom.WKBFactory()

    def line(way: Any) -> LineString | None:
        coords = [(nd.location.lon, nd.location.lat) for nd in way.nodes if nd.location.valid()]
        return LineString(coords) if len(coords) >= 2 else None

    def run() -> None:
        processor = osmium.FileProcessor(str(path)).with_locations().with_areas()
        obj: Any
        for obj in processor:
            tags = obj.tags
            if obj.is_node():
                if not tags:
                    continue
                _node(obj, tags, out)
            elif obj.is_way():
                if "highway" in tags or "railway" in tags or "waterway" in tags:
                    _way(obj, tags, line, out)
            elif obj.is_area() and (any(k in tags for k in AREA_KEYS) or any(k in tags for k in POI_KEYS)):
                _area(obj, tags, wkb, out)

    note("reading the basemap: roads, water, green areas, land use, places")
    _osmium_errors(path, run)
    if not any(f.layer == "roads" for f in out):
        raise OsmFileError(f"{path} holds no roads (highway=*): a basemap needs at least its streets")
    if bounds is None:
        bounds = box(*shapely.total_bounds([f.geometry for f in out if f.layer == "roads"]))
    kept = _clip(out, bounds)
    if not any(f.layer == "roads" for f in kept):
        w, s, e, n = (round(v, 4) for v in bounds.bounds)
        raise OsmFileError(f"no road of {path.name} lies inside the city's extent ({w}, {s}, {e}, {n}): "
                           "is it this city's extract?")
    return Basemap(bounds=bounds, features=kept)


def _node(obj: Any, tags: Any, out: list[BasemapFeature]) -> None:
    name, name_en = names(tags)
    if not name and not name_en:
        return
    point = Point(obj.location.lon, obj.location.lat)
    place = tags.get("place")
    if place in PLACES:
        out.append(BasemapFeature("places", place, name, name_en, None, PLACES[place], point))
        return
    found = _first(tags, POIS)
    if found:
        out.append(BasemapFeature("pois", found[0], name, name_en, None, found[1], point))


def _way(obj: Any, tags: Any, line: Callable[[Any], LineString | None], out: list[BasemapFeature]) -> None:
    highway, railway, waterway = tags.get("highway"), tags.get("railway"), tags.get("waterway")
    name, name_en = names(tags)
    if highway in ROADS and tags.get("area") != "yes":
        kind, minzoom = ROADS[highway]
        geom = line(obj)
        if geom is not None:
            out.append(BasemapFeature("roads", kind, name, name_en, tags.get("ref"), minzoom, geom))
    elif railway in RAIL and tags.get("tunnel") not in ("yes", "building_passage") and tags.get("service") is None:
        kind, minzoom = RAIL[railway]
        geom = line(obj)
        if geom is not None:
            out.append(BasemapFeature("rail", kind, name, name_en, None, minzoom, geom))
    elif waterway in WATERWAYS and tags.get("tunnel") != "culvert":
        kind, minzoom = WATERWAYS[waterway]
        geom = line(obj)
        if geom is not None:
            out.append(BasemapFeature("waterways", kind, name, name_en, None, minzoom, geom))


def _area(obj: Any, tags: Any, wkb: osmium.geom.WKBFactory, out: list[BasemapFeature]) -> None:
    if "building" in tags and not any(k in tags for k in ("amenity", "leisure", "tourism", "railway")):
        return  # the basemap draws the city's own buildings table
    found = _first(tags, AREAS)
    poi = _first(tags, POIS)
    if not found and not poi:
        return
    geom = _area_geometry(wkb, obj)
    if geom is None:
        return
    name, name_en = names(tags)
    area = mercator_area(geom)
    if found:
        layer, kind = found
        out.append(BasemapFeature(layer, kind, name, name_en, None, area_minzoom(area), geom))
    if not (name or name_en):
        return
    if poi:  # a landmark: labelled at its kind's zoom
        out.append(BasemapFeature("pois", poi[0], name, name_en, None, poi[1], geom.representative_point()))
    elif found and found[0] in ("water", "green"):  # a named lake or park: labelled once it is big enough
        minzoom = area_minzoom(area, pixels=AREA_LABEL_PX * 16, floor=10)
        out.append(BasemapFeature("pois", found[1], name, name_en, None, minzoom, geom.representative_point()))


def _clip(features: list[BasemapFeature], bounds: Polygon) -> list[BasemapFeature]:
    """Cut every feature to ``bounds``; points outside are dropped, areas that only touch become nothing."""
    minx, miny, maxx, maxy = bounds.bounds
    geoms = shapely.clip_by_rect([f.geometry for f in features], minx, miny, maxx, maxy)
    kept: list[BasemapFeature] = []
    for f, g in zip(features, geoms, strict=True):
        if g is None or g.is_empty:
            continue
        if isinstance(f.geometry, Polygon | MultiPolygon):
            g = _polygonal(g)
            if g is None:
                continue
        elif isinstance(f.geometry, LineString) and (g.geom_type not in ("LineString", "MultiLineString")
                                                     or g.length == 0):
            continue
        f.geometry = g
        kept.append(f)
    return kept


def _polygonal(geom: BaseGeometry) -> MultiPolygon | None:
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon) and not g.is_empty]
    nested = [p for g in getattr(geom, "geoms", [geom]) if isinstance(g, MultiPolygon) for p in g.geoms]
    parts += nested
    return MultiPolygon(parts) if parts else None
