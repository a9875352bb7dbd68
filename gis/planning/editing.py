"""Editing grids so that a community stays tiled: validation and the geometry of each change.

A community's grids must cover it with no gap and no overlap (tolerance 1 m², DOMAIN.md "全域覆盖"). Every
operation here takes the community's current grids and returns their new geometries, or raises
:class:`~gis.errors.InputError` saying what to fix. Geometry is in a metric CRS (the caller projects).

* :func:`create` — a planner draws a new grid; the grids it covers give that area up.
* :func:`reshape` — a planner draws a new outline for one grid; neighbours lose what it now covers and gain
  what it gave up (each vacated piece goes to the neighbour it shares the longest border with).
* :func:`split` — a drawn line cuts one grid into two or more.
* :func:`merge` — two grids that share a border become one.
* :func:`remove` — a grid is dissolved into its neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, shape
from shapely.ops import split as split_by_line

from gis.errors import InputError
from gis.planning.division import to_multipolygon

TOLERANCE_M2 = 1.0
MAX_VERTICES = 10_000
MIN_SHARED_M = 1.0
SNAP_M = 0.05


def _coords_ok(geometry: shapely.Geometry) -> None:
    coords = shapely.get_coordinates(geometry)
    if not len(coords):
        raise InputError("the geometry is empty")
    if not all(math.isfinite(v) for v in coords.ravel()):
        raise InputError("coordinates must be finite numbers")
    if (abs(coords[:, 0]) > 180).any() or (abs(coords[:, 1]) > 90).any():
        raise InputError("coordinates must be longitude, latitude in WGS-84 (-180..180, -90..90)")
    if len(coords) > MAX_VERTICES:
        raise InputError(f"the geometry has {len(coords):,} vertices; at most {MAX_VERTICES:,} are accepted")


def parse_polygon(geojson: Mapping[str, Any]) -> Polygon | MultiPolygon:
    """A GeoJSON Polygon/MultiPolygon (WGS-84) as shapely, or :class:`InputError` with the reason."""
    geometry = _parse(geojson, ("Polygon", "MultiPolygon"))
    reason = shapely.is_valid_reason(geometry)
    if reason != "Valid Geometry":
        raise InputError(f"the polygon is not valid: {reason}")
    if geometry.area == 0:
        raise InputError("the polygon has no area")
    assert isinstance(geometry, Polygon | MultiPolygon)
    return geometry


def parse_line(geojson: Mapping[str, Any]) -> LineString:
    geometry = _parse(geojson, ("LineString",))
    assert isinstance(geometry, LineString)
    if geometry.length == 0:
        raise InputError("the line has no length")
    return geometry


def _parse(geojson: Mapping[str, Any], kinds: tuple[str, ...]) -> shapely.Geometry:
    if not isinstance(geojson, Mapping) or geojson.get("type") not in kinds:
        got = geojson.get("type") if isinstance(geojson, Mapping) else type(geojson).__name__
        raise InputError(f"expected a GeoJSON {' or '.join(kinds)}; got {got!r}")
    try:
        with np.errstate(invalid="ignore"):  # NaN coordinates: _coords_ok below refuses them with a reason
            geometry = shape(geojson)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        # GEOS's own refusals (an unclosed ring, a one-point line) included: found by tests/gis/test_properties.py
        raise InputError(f"malformed GeoJSON {geojson.get('type')}: {exc}") from None
    if geometry.is_empty:
        raise InputError("the geometry is empty")
    _coords_ok(geometry)
    return geometry


def _shared(a: shapely.Geometry, b: shapely.Geometry) -> float:
    return float(to_multipolygon(a).boundary.intersection(to_multipolygon(b).boundary).length)


@dataclass
class TilingCheck:
    gaps: list[Polygon] = field(default_factory=list)
    overlaps: list[tuple[str, str, float]] = field(default_factory=list)
    outside: list[tuple[str, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.gaps or self.overlaps or self.outside)

    def problems(self) -> list[str]:
        out = [f"grid {c} reaches {a:,.1f} m² outside its community" for c, a in self.outside]
        out += [f"grids {a} and {b} overlap by {m:,.1f} m²" for a, b, m in self.overlaps]
        out += [f"a gap of {g.area:,.1f} m² is left uncovered" for g in self.gaps]
        return out


def check_tiling(grids: Mapping[str, shapely.Geometry], community: shapely.Geometry, *,
                 changed: Sequence[str] | None = None, scope: shapely.Geometry | None = None) -> TilingCheck:
    """Gaps, overlaps and outside parts above :data:`TOLERANCE_M2`.

    With ``changed`` (the grids an edit touched) and ``scope`` (the area it touched, old and new outlines), only
    what the edit can have broken is checked: overlaps involving a changed grid, parts of changed grids outside
    the community, gaps inside the scope. The rest of the community was tiled before and has not moved.
    """
    check = TilingCheck()
    shapely.prepare(community)
    codes = list(grids)
    geoms = [grids[c] for c in codes]
    mine = set(codes if changed is None else changed)
    for code, geom in zip(codes, geoms, strict=True):
        if code in mine and not community.covers(geom):  # prepared: cheap when, as usual, it does
            outside = geom.difference(community).area
            if outside > TOLERANCE_M2:
                check.outside.append((code, outside))
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a < b and (codes[a] in mine or codes[b] in mine):
            area = geoms[a].intersection(geoms[b]).area
            if area > TOLERANCE_M2:
                check.overlaps.append((codes[a], codes[b], area))
    area = community if scope is None else scope.intersection(community)
    near = [geoms[i] for i in tree.query(area)] if scope is not None else geoms
    rest = area.difference(shapely.union_all(near)) if near else area
    check.gaps = [g for g in to_multipolygon(rest).geoms if g.area > TOLERANCE_M2]
    return check


def _give_away(pieces: shapely.Geometry, owners: dict[str, shapely.Geometry], *, exclude: str) -> None:
    """Hand each piece to the grid (other than ``exclude``) that shares the longest border with it."""
    for piece in to_multipolygon(pieces).geoms:
        if piece.area <= TOLERANCE_M2 / 10:
            continue
        borders = {c: _shared(piece, g) for c, g in owners.items() if c != exclude and not g.is_empty}
        best = max(borders.items(), key=lambda kv: (kv[1], kv[0]), default=(None, 0.0))
        if best[0] is None or best[1] < MIN_SHARED_M:
            raise InputError(f"a piece of {piece.area:,.0f} m² would be left with no neighbouring grid to take it")
        owners[best[0]] = to_multipolygon(shapely.union_all([owners[best[0]], piece]))


def _edges_near(outline: shapely.Geometry, polygons: Sequence[shapely.Geometry]) -> shapely.Geometry:
    """The boundaries of ``polygons`` within a metre of ``outline``'s bounding box: what a snap can reach, without
    the cost of snapping to a whole community's border."""
    minx, miny, maxx, maxy = outline.bounds
    box = (minx - 1, miny - 1, maxx + 1, maxy + 1)
    return shapely.GeometryCollection([shapely.clip_by_rect(p.boundary, *box) for p in polygons])


def reshape(grids: Mapping[str, shapely.Geometry], code: str, outline: shapely.Geometry,
            community: shapely.Geometry) -> dict[str, shapely.Geometry]:
    """Give grid ``code`` the new ``outline``; neighbours are adjusted so that the community stays tiled."""
    if code not in grids:
        raise InputError(f"grid {code} is not in this community")
    outside = outline.difference(community).area
    if outside > TOLERANCE_M2:
        raise InputError(f"the new outline reaches {outside:,.0f} m² outside the grid's community; "
                         "grids never cross their community's border")
    # Only grids the new outline reaches (or that border the grid now) can change; the others stay as they are.
    reach = outline.buffer(MIN_SHARED_M).union(grids[code])
    near = [c for c, g in grids.items() if c == code or g.intersects(reach)]
    # A drawn outline repeats the unchanged edges only to the precision of the map it was drawn on (GeoJSON at
    # 7 decimals is ~1 cm): snap it to the existing vertices so those edges do not turn into slivers.
    outline = shapely.snap(outline, _edges_near(outline, [grids[c] for c in near] + [community]), SNAP_M)
    target = outline.intersection(community)
    # overlays can leave stray lines or points beside the polygons (GeometryCollections): keep the polygons
    touched = {c: grids[c] if c == code else to_multipolygon(grids[c].difference(target)) for c in near}
    swallowed = [c for c, g in touched.items() if c != code and g.area <= TOLERANCE_M2]
    if swallowed:
        raise InputError(f"the new outline would swallow grid(s) {', '.join(swallowed)} whole; merge them instead")
    vacated = to_multipolygon(grids[code].difference(target))
    touched[code] = to_multipolygon(target)
    _give_away(vacated, touched, exclude=code)
    new = dict(grids)
    new.update({c: to_multipolygon(g) for c, g in touched.items()})
    return new


def create(grids: Mapping[str, shapely.Geometry], outline: shapely.Geometry,
           community: shapely.Geometry) -> tuple[dict[str, shapely.Geometry], Polygon | MultiPolygon]:
    """A new grid with the drawn ``outline``: the grids it covers give that area up. Returns the existing grids'
    new geometries and the new grid's."""
    outside = outline.difference(community).area
    if outside > TOLERANCE_M2:
        raise InputError(f"the new grid reaches {outside:,.0f} m² outside its community; "
                         "grids never cross their community's border")
    near = [c for c, g in grids.items() if g.intersects(outline)]
    edges = _edges_near(outline, [grids[c] for c in near] + [community])
    target = to_multipolygon(shapely.snap(outline, edges, SNAP_M).intersection(community))
    if target.area <= TOLERANCE_M2:
        raise InputError("the new grid has no area inside its community")
    new = dict(grids)
    for c in near:
        new[c] = to_multipolygon(grids[c].difference(target))
    swallowed = [c for c in near if new[c].area <= TOLERANCE_M2]
    if swallowed:
        raise InputError(f"the new grid would swallow grid(s) {', '.join(swallowed)} whole; reshape or merge "
                         "them instead")
    return new, target


def split(grid: shapely.Geometry, line: LineString) -> list[Polygon]:
    """The pieces a drawn line cuts a grid into (largest first), or :class:`InputError`."""
    polygon = grid if isinstance(grid, Polygon) else None
    if polygon is None:
        parts = list(to_multipolygon(grid).geoms)
        if len(parts) != 1:
            raise InputError("only a grid of one piece can be split by a line")
        polygon = parts[0]
    pieces = [p for p in split_by_line(polygon, line).geoms if isinstance(p, Polygon) and p.area > TOLERANCE_M2]
    if len(pieces) < 2:
        raise InputError("the line does not cut the grid in two: draw it across the grid, from edge to edge")
    return sorted(pieces, key=lambda p: -p.area)


def merge(a: shapely.Geometry, b: shapely.Geometry) -> Polygon:
    if _shared(a, b) < MIN_SHARED_M:
        raise InputError("only grids that share a border can be merged")
    merged = shapely.union_all([a, b])
    parts = list(to_multipolygon(merged).geoms)
    if len(parts) != 1:
        raise InputError("the two grids do not form one contiguous area")
    return parts[0]


def remove(grids: Mapping[str, shapely.Geometry], code: str) -> dict[str, shapely.Geometry]:
    """Dissolve grid ``code`` into its neighbours; returns the remaining grids."""
    if len(grids) < 2:
        raise InputError("the last grid of a community cannot be deleted: the community must stay covered")
    rest = {c: g for c, g in grids.items() if c != code}
    _give_away(grids[code], rest, exclude=code)
    return {c: to_multipolygon(g) for c, g in rest.items()}
