"""Close administrative boundaries that an extract holds only in part.

A bbox extract (Overpass, a Geofabrik clip) carries an administrative relation but only those of its ways that
cross the box, so osmium cannot build its ring. Inside the box, though, those ways cut the extent into faces,
and each face lies in at most one unit. Which one follows from the ways that bound it:

* a face lies in every relation that owns *all* of the relation ways on its border (a way between districts A
  and B is a member of both; the face is A or B). When a face is bounded by ways of two different sets, say
  {A, B} and {A, C}, it is A;
* a relation's ``label``/``admin_centre`` node inside a face decides that face;
* across a way owned by the set S, a face in R has a neighbour in S − {R} (or outside every unit, when S = {R}).

These rules are applied until nothing changes. A relation none of whose faces gets decided is returned in
``unresolved`` and is not guessed: the caller reports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import polygonize, unary_union

from gis.geo.crs import WGS84
from gis.geo.osm import ADMIN_LEVELS, AdminRelation

# Degrees; ~1 cm. Linework in the faces comes from the same OSM coordinates, so this only absorbs rounding.
_SNAP = 1e-7


@dataclass
class ClosedBoundaries:
    areas: gpd.GeoDataFrame
    """osm_type, osm_id, name, admin_level, level, geometry: one row per relation that could be closed."""
    unresolved: list[AdminRelation]


def _shared_ratio(line: shapely.Geometry, zone: shapely.Geometry) -> float:
    if line.length == 0:
        return 0.0
    return float(line.intersection(zone).length / line.length)


def close_admin_relations(
    relations: Iterable[AdminRelation],
    lines: dict[int, LineString],
    labels: dict[int, Point],
    *,
    extent: Polygon,
) -> ClosedBoundaries:
    """Build the part of each incomplete administrative relation that lies inside ``extent``."""
    relations = list(relations)
    rel_lines: dict[int, shapely.Geometry] = {}
    for rel in relations:
        parts = [lines[w].intersection(extent) for w in rel.way_ids if w in lines]
        parts = [p for p in parts if not p.is_empty and p.length > 0]
        if parts:
            rel_lines[rel.osm_id] = unary_union(parts)
    by_id = {rel.osm_id: rel for rel in relations}
    if not rel_lines:
        return ClosedBoundaries(_empty(), relations)

    zones = {rid: geom.buffer(_SNAP) for rid, geom in rel_lines.items()}
    all_zone = unary_union(list(zones.values()))
    faces: list[Polygon] = list(polygonize(unary_union([*rel_lines.values(), extent.exterior])))
    faces = [f for f in faces if f.area > 0 and f.representative_point().within(extent)]

    candidates: list[set[int] | None] = []  # None: not yet constrained beyond "any"
    decided: dict[int, int | None] = {}  # face index -> relation id, or None for "outside every relation"
    for i, face in enumerate(faces):
        border = face.exterior
        rel_part = border.intersection(all_zone).length
        touching = {rid: border.intersection(z).length for rid, z in zones.items()}
        touching = {rid: length for rid, length in touching.items() if length > _SNAP * 10}
        if rel_part == 0 or not touching:
            candidates.append(None)
            continue
        covering = {rid for rid, length in touching.items() if length >= rel_part * 0.98}
        candidates.append(covering)
        partial = any(length < rel_part * 0.98 for length in touching.values())
        if len(covering) == 1 and partial:
            decided[i] = next(iter(covering))
    for rid in rel_lines:
        for label_id in by_id[rid].label_ids:
            point = labels.get(label_id)
            if point is None:
                continue
            for i, face in enumerate(faces):
                if face.contains(point):
                    decided[i] = rid

    neighbours: list[list[tuple[int, set[int]]]] = [[] for _ in faces]
    for i, a in enumerate(faces):
        for j in range(i + 1, len(faces)):
            b = faces[j]
            if not a.touches(b) and not a.intersects(b):
                continue
            shared = a.boundary.intersection(b.boundary)
            if shared.length == 0:
                continue
            owners = {rid for rid, z in zones.items() if _shared_ratio(shared, z) > 0.5}
            neighbours[i].append((j, owners))
            neighbours[j].append((i, owners))

    changed = True
    while changed:
        changed = False
        for i, owner in list(decided.items()):
            for j, owners in neighbours[i]:
                if j in decided:
                    continue
                allowed = owners - {owner} if owner is not None else owners
                cand = candidates[j]
                cand = allowed if cand is None else cand & allowed
                candidates[j] = cand
                if len(cand) <= 1:
                    decided[j] = next(iter(cand)) if cand else None
                    changed = True

    rows = []
    closed: set[int] = set()
    for rid in rel_lines:
        mine = [faces[i] for i, owner in decided.items() if owner == rid]
        if not mine:
            continue
        rel = by_id[rid]
        geom = unary_union(mine)
        geom = geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])
        rows.append({"osm_type": "relation", "osm_id": rid, "name": rel.name, "admin_level": rel.admin_level,
                     "level": ADMIN_LEVELS[rel.admin_level], "geometry": geom})
        closed.add(rid)
    areas = gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84) if rows else _empty()
    return ClosedBoundaries(areas, [rel for rel in relations if rel.osm_id not in closed])


def _empty() -> gpd.GeoDataFrame:
    cols = ["osm_type", "osm_id", "name", "admin_level", "level"]
    return gpd.GeoDataFrame({c: [] for c in [*cols, "geometry"]}, geometry="geometry", crs=WGS84)
