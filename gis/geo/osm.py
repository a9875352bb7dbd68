"""Read an OpenStreetMap extract into GeoDataFrames: buildings, key places, land use, boundaries, streets.

One reader for every format osmium knows (``.osm``, ``.osm.gz``, ``.osm.bz2``, ``.osm.pbf``): pyosmium assembles
areas (closed ways and multipolygon relations) in C++, so the Python side only sees tagged objects.
Everything is clipped to the file's bounds (see :func:`read_osm`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import osmium
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from gis.errors import OsmFileError
from gis.geo.crs import WGS84

log = logging.getLogger(__name__)

OSM_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2", ".pbf", ".osm.pbf", ".o5m")

# Key places: where a basic patrol stops (DOMAIN.md, "Patrols"). (key, value) -> kind, first match wins.
PLACE_KINDS: tuple[tuple[str, str, str], ...] = (
    ("amenity", "police", "police"),
    ("amenity", "school", "school"),
    ("amenity", "kindergarten", "kindergarten"),
    ("amenity", "university", "university"),
    ("amenity", "college", "university"),
    ("amenity", "hospital", "hospital"),
    ("amenity", "clinic", "clinic"),
    ("amenity", "doctors", "clinic"),
    ("amenity", "marketplace", "market"),
    ("shop", "supermarket", "market"),
    ("shop", "mall", "market"),
    ("amenity", "nursing_home", "elderly_home"),
    ("social_facility", "nursing_home", "elderly_home"),
    ("social_facility", "assisted_living", "elderly_home"),
    ("amenity", "community_centre", "community_centre"),
    ("amenity", "townhall", "townhall"),
    ("amenity", "fire_station", "fire_station"),
    ("landuse", "construction", "construction_site"),
    ("building", "construction", "construction_site"),
)
PLACE_KEYS = frozenset(k for k, _, _ in PLACE_KINDS)

# Administrative levels as Chinese OSM uses them (admin_level 6 district/county, 8 street/township,
# 9 or 10 community/village).
ADMIN_LEVELS: dict[str, str] = {"6": "district", "7": "district", "8": "street", "9": "community", "10": "community"}

# Tags a building keeps for the household estimate and for display; the rest of OSM's tags are not stored.
BUILDING_TAGS = ("building", "building:levels", "height", "name", "shop", "office", "amenity", "tourism",
                 "building:use", "addr:street", "addr:housenumber")


def place_kind(tags: dict[str, str]) -> str | None:
    """The key-place kind of an object with these tags, or ``None``."""
    for key, value, kind in PLACE_KINDS:
        if tags.get(key) == value:
            return kind
    return None


@dataclass
class AdminRelation:
    """An administrative boundary relation whose ways the file holds only in part (an Overpass bbox extract)."""

    osm_id: int
    name: str
    admin_level: str
    way_ids: list[int]
    label_ids: list[int]


@dataclass
class OsmExtract:
    """What gridpatrol takes from one OSM file, in WGS-84, clipped to :attr:`bounds`."""

    path: Path
    bounds: Polygon
    bounds_source: str
    """``"header"`` when the file states its bounds, ``"buildings"`` when their extent had to stand in."""
    buildings: gpd.GeoDataFrame
    places: gpd.GeoDataFrame
    landuse: gpd.GeoDataFrame
    admin_areas: gpd.GeoDataFrame
    """Complete administrative areas (closed ways, complete relations): osm_id, name, admin_level, level."""
    admin_relations: list[AdminRelation]
    """Administrative relations that osmium could not close because the file lacks some of their ways."""
    boundary_lines: dict[int, LineString]
    labels: dict[int, Point]
    street_nodes: dict[int, tuple[float, float]] = field(repr=False)
    street_ways: list[tuple[int, list[int], dict[str, str]]] = field(repr=False)
    """Every ``highway=*`` way touching the bounds: (id, node ids, tags), nodes all located."""


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise OsmFileError(f"{path}: no such file; give the path of an OSM extract ({', '.join(OSM_SUFFIXES)})")
    if not path.is_file():
        raise OsmFileError(f"{path} is not a file")
    if not path.name.lower().endswith(OSM_SUFFIXES):
        raise OsmFileError(f"{path}: not an OSM file name; expected one ending in {', '.join(OSM_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise OsmFileError(f"{path} is empty")


def _header_bounds(path: Path) -> Polygon | None:
    reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    try:
        box_ = reader.header().box()
    finally:
        reader.close()
    if not box_.valid():
        return None
    bl, tr = box_.bottom_left, box_.top_right
    if not (bl.lon < tr.lon and bl.lat < tr.lat):
        return None
    return box(bl.lon, bl.lat, tr.lon, tr.lat)


def _osmium_errors(path: Path, run: Callable[[], None]) -> None:
    """Run a pass over the file, turning osmium's parse errors into one clear :class:`OsmFileError`."""
    try:
        run()
    except (RuntimeError, ValueError, KeyError) as exc:  # osmium reports parse errors as these
        raise OsmFileError(f"{path} is not a readable OSM file (truncated or not OSM?): {exc}") from exc


def _first_pass_relations(path: Path) -> dict[int, AdminRelation]:
    relations: dict[int, AdminRelation] = {}

    def run() -> None:
        rel: Any
        for rel in osmium.FileProcessor(str(path), osmium.osm.RELATION):
            tags = rel.tags
            level = tags.get("admin_level")
            if tags.get("boundary") != "administrative" or level not in ADMIN_LEVELS:
                continue
            relations[rel.id] = AdminRelation(
                osm_id=rel.id,
                name=tags.get("name", ""),
                admin_level=level,
                way_ids=[m.ref for m in rel.members if m.type == "w"],
                label_ids=[m.ref for m in rel.members if m.type == "n" and m.role in ("label", "admin_centre")],
            )

    _osmium_errors(path, run)
    return relations


def _area_geometry(wkb_factory: osmium.geom.WKBFactory, area: Any) -> MultiPolygon | None:
    try:
        geom = shapely.from_wkb(wkb_factory.create_multipolygon(area))
    except RuntimeError:  # osmium could not build a valid ring
        return None
    if geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
        polys = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon | MultiPolygon)]
        if not polys:
            return None
        geom = shapely.union_all(polys)
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def _frame(rows: list[dict[str, Any]], columns: Iterable[str]) -> gpd.GeoDataFrame:
    cols = [*columns, "geometry"]
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry="geometry", crs=WGS84)
    return gpd.GeoDataFrame(rows, columns=cols, geometry="geometry", crs=WGS84)


def read_osm(path: str | Path, *, progress: Callable[[str], None] | None = None) -> OsmExtract:
    """Read an OSM file and clip what gridpatrol needs to its bounds.

    The bounds are the file's own (``<bounds>`` in XML, the header box in PBF). Overpass extracts state none;
    then the extent of the buildings stands in, because a bbox query returns whole ways and those reach far
    outside the box that was asked for. Buildings and key places are kept when their representative point
    lies inside the bounds (a footprint is never cut); streets are kept when they touch the bounds and are
    trimmed later by the network builder.

    Raises
    ------
    OsmFileError
        The file is missing, empty, truncated, not OSM, or holds no buildings.
    """
    path = Path(path)
    _check_readable(path)
    note = progress or (lambda _msg: None)
    try:
        bounds = _header_bounds(path)
    except RuntimeError as exc:
        raise OsmFileError(f"{path} is not a readable OSM file: {exc}") from exc

    note("reading boundary relations")
    relations = _first_pass_relations(path)
    boundary_way_ids = {w for rel in relations.values() for w in rel.way_ids}
    label_ids = {n for rel in relations.values() for n in rel.label_ids}

    buildings: list[dict[str, Any]] = []
    places: list[dict[str, Any]] = []
    landuse: list[dict[str, Any]] = []
    admin_areas: list[dict[str, Any]] = []
    complete_relations: set[int] = set()
    boundary_lines: dict[int, LineString] = {}
    labels: dict[int, Point] = {}
    street_nodes: dict[int, tuple[float, float]] = {}
    street_ways: list[tuple[int, list[int], dict[str, str]]] = []
    wkb = osmium.geom.WKBFactory()

    def run() -> None:
        # Untagged nodes only matter for their locations, which the location handler has already stored.
        # Untagged ways stay: boundary relations are made of them.
        untagged_nodes = osmium.filter.EmptyTagFilter()
        untagged_nodes.enable_for(osmium.osm.NODE)
        processor = osmium.FileProcessor(str(path)).with_locations().with_areas().with_filter(untagged_nodes)
        obj: Any
        for obj in processor:
            tags = obj.tags
            if obj.is_node():
                if obj.id in label_ids:
                    labels[obj.id] = Point(obj.location.lon, obj.location.lat)
                kind = place_kind(dict(tags)) if any(k in tags for k in PLACE_KEYS) else None
                if kind:
                    places.append({"osm_type": "node", "osm_id": obj.id, "kind": kind, "name": tags.get("name"),
                                   "geometry": Point(obj.location.lon, obj.location.lat)})
            elif obj.is_way():
                if "highway" in tags:
                    refs, located = [], True
                    for nd in obj.nodes:
                        loc = nd.location
                        if not loc.valid():
                            located = False
                            break
                        refs.append(nd.ref)
                        street_nodes[nd.ref] = (loc.lon, loc.lat)
                    if located and len(refs) >= 2:
                        street_ways.append((obj.id, refs, dict(tags)))
                if obj.id in boundary_way_ids:
                    coords = [(nd.location.lon, nd.location.lat) for nd in obj.nodes if nd.location.valid()]
                    if len(coords) >= 2:
                        boundary_lines[obj.id] = LineString(coords)
            elif obj.is_area():
                _collect_area(obj, dict(tags), wkb, buildings, places, landuse, admin_areas, complete_relations)

    note("reading buildings, places and streets")
    _osmium_errors(path, run)

    if not buildings:
        raise OsmFileError(f"{path} holds no buildings (building=*); gridpatrol needs buildings to count households")
    buildings_gdf = _frame(buildings, ["osm_type", "osm_id", *(t.replace(":", "_") for t in BUILDING_TAGS)])
    bounds_source = "header"
    if bounds is None:
        bounds, bounds_source = box(*buildings_gdf.total_bounds), "buildings"

    inside = buildings_gdf.representative_point().within(bounds)
    buildings_gdf = buildings_gdf[inside].reset_index(drop=True)
    if buildings_gdf.empty:
        raise OsmFileError(f"{path} holds no buildings inside its bounds")
    places_gdf = _frame(places, ["osm_type", "osm_id", "kind", "name"])
    places_gdf = places_gdf[places_gdf.within(bounds)].reset_index(drop=True)
    landuse_gdf = _frame(landuse, ["landuse"])
    landuse_gdf = landuse_gdf[landuse_gdf.intersects(bounds)].reset_index(drop=True)
    admin_gdf = _frame(admin_areas, ["osm_type", "osm_id", "name", "admin_level", "level"])
    admin_gdf = admin_gdf[admin_gdf.intersects(bounds)].reset_index(drop=True)

    minx, miny, maxx, maxy = bounds.bounds
    kept_ways = [
        (wid, refs, tags) for wid, refs, tags in street_ways
        if any(minx <= street_nodes[r][0] <= maxx and miny <= street_nodes[r][1] <= maxy for r in refs)
    ]
    if not kept_ways:
        raise OsmFileError(
            f"{path} holds no streets (highway=*) inside its bounds; patrol routes need a street network"
        )
    kept_nodes = {r: street_nodes[r] for _, refs, _ in kept_ways for r in refs}

    return OsmExtract(
        path=path,
        bounds=bounds,
        bounds_source=bounds_source,
        buildings=buildings_gdf,
        places=places_gdf,
        landuse=landuse_gdf,
        admin_areas=admin_gdf,
        admin_relations=[rel for rid, rel in relations.items() if rid not in complete_relations],
        boundary_lines=boundary_lines,
        labels=labels,
        street_nodes=kept_nodes,
        street_ways=kept_ways,
    )


def _collect_area(
    area: Any,
    tags: dict[str, str],
    wkb: osmium.geom.WKBFactory,
    buildings: list[dict[str, Any]],
    places: list[dict[str, Any]],
    landuse: list[dict[str, Any]],
    admin_areas: list[dict[str, Any]],
    complete_relations: set[int],
) -> None:
    wanted_building = "building" in tags and tags["building"] != "no"
    kind = place_kind(tags) if any(k in tags for k in PLACE_KEYS) else None
    level = tags.get("admin_level")
    is_admin = tags.get("boundary") == "administrative" and level in ADMIN_LEVELS
    if not (wanted_building or kind or "landuse" in tags or is_admin):
        return
    geom = _area_geometry(wkb, area)
    if geom is None:
        return
    osm_type = "way" if area.from_way() else "relation"
    osm_id = area.orig_id()
    if wanted_building:
        row = {t.replace(":", "_"): tags.get(t) for t in BUILDING_TAGS}
        buildings.append({"osm_type": osm_type, "osm_id": osm_id, **row, "geometry": geom})
    if kind:
        places.append({"osm_type": osm_type, "osm_id": osm_id, "kind": kind, "name": tags.get("name"),
                       "geometry": geom.representative_point()})
    if "landuse" in tags:
        landuse.append({"landuse": tags["landuse"], "geometry": geom})
    if is_admin:
        assert level is not None
        if osm_type == "relation":
            complete_relations.add(osm_id)
        admin_areas.append({"osm_type": osm_type, "osm_id": osm_id, "name": tags.get("name", ""),
                            "admin_level": level, "level": ADMIN_LEVELS[level], "geometry": geom})
