"""A city's existing grids, all communities at once: assign each to its community, check, and offer the repair.

A grid goes to the community holding the largest part of its area (by location, whatever its code says). A grid
code is 15 digits, its community's 12 plus 3 (DOMAIN.md); a grid without one gets a new code when stored. Before
anything is stored (:func:`check_grids`, on geometry in metres) the report lists

* grids that cross a community border, with the area on each side;
* gaps (a community's area no grid covers) and overlaps between grids, as polygons with their areas;
* grids lying in no community.

Refused outright, naming the row: a code that is not 15 digits, repeats, or does not nest under the community the
grid lies in; a feature that is no polygon.

The repair a planner would accept (``repair``): each grid is clipped to its community; a gap goes to the grid of
the community sharing the longest border with it; an overlap stays with the grid of the lower code (the placement
tie-break) and leaves the other. The households per grid (for the band) and the buildings in no grid need the
stored buildings, so the store adds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import shapely

from gis.errors import InputError
from gis.files import refuse
from gis.planning.division import to_multipolygon
from gis.planning.editing import check_tiling
from gis.planning.official import SLIVER_M2


@dataclass
class GridCheck:
    """The grids as they would be stored (``row``, ``code``, ``name``, ``community``, metric ``geometry``), and
    what the report says."""

    grids: gpd.GeoDataFrame
    crossing: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    nowhere: list[int] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    @property
    def tiled(self) -> bool:
        return not (self.crossing or self.gaps or self.overlaps or self.nowhere)


def grid_code(raw: object, *, row: int) -> str | None:
    """A 15-digit grid code, or ``None`` when the feature has none (it gets one when stored)."""
    if raw is None or (isinstance(raw, float) and raw != raw):
        return None
    code = str(raw).strip()
    if code.endswith(".0"):
        code = code[:-2]
    if not code:
        return None
    if not (code.isdigit() and len(code) == 15):
        raise InputError(f"row {row}: grid code {raw!r} is not 15 digits (community's 12 + 3)")
    return code


def _label(row: int, code: str | None) -> str:
    return code or f"row {row}"


def check_grids(grids: gpd.GeoDataFrame, communities: dict[str, Any], *, repair: bool = False) -> GridCheck:
    """Assign and check ``grids`` (``row``, ``code``, ``name``, metric ``geometry``) against ``communities`` (code →
    metric geometry); see the module docstring. Raises :class:`InputError` listing every refused feature."""
    problems: list[str] = []
    frame = grids.copy()
    check = GridCheck(grids=frame)
    fixed: list[Any] = []
    for row, geom in zip(frame["row"], frame.geometry, strict=True):
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(f"row {row}: {'empty' if geom is None or geom.is_empty else geom.geom_type}, "
                            "not a polygon")
            fixed.append(None)
        elif not geom.is_valid:
            check.repaired.append(f"row {row}: {shapely.is_valid_reason(geom)}")
            fixed.append(to_multipolygon(shapely.make_valid(geom)))
        else:
            fixed.append(to_multipolygon(geom))
    refuse(problems, "grids")
    frame["geometry"] = fixed
    codes = list(communities)
    shapes = [communities[c] for c in codes]
    tree = shapely.STRtree(shapes)
    owner: list[str | None] = []
    for row, code, geom in zip(frame["row"], frame["code"], frame.geometry, strict=True):
        parts = {codes[i]: geom.intersection(shapes[i]).area for i in tree.query(geom, predicate="intersects")}
        parts = {c: a for c, a in parts.items() if a > SLIVER_M2}
        if not parts:
            check.nowhere.append(int(row))
            owner.append(None)
            continue
        main = max(parts, key=lambda c: (parts[c], c))
        owner.append(main)
        if len(parts) > 1:
            check.crossing.append({"grid": _label(row, code), "communities": {c: round(a, 1) for c, a in
                                                                               sorted(parts.items())}})
        if code is not None and code[:12] != main:
            problems.append(f"row {row}: grid {code} lies in community {main}, but its code says community "
                            f"{code[:12]}: give it a code under {main}, or none (a new one is issued)")
    refuse(problems, "grids")
    frame["community"] = owner
    if repair:
        _repair(check, communities)
    _tiling(check, communities)
    return check


def _repair(check: GridCheck, communities: dict[str, Any]) -> None:
    frame = check.grids
    clipped = 0
    column = frame.columns.get_loc("geometry")
    for i, (community, geom) in enumerate(zip(frame["community"], frame.geometry, strict=True)):
        if community is None:
            continue
        inside = to_multipolygon(geom.intersection(communities[community]))
        if inside.symmetric_difference(geom).area > SLIVER_M2 / 10:
            frame.iloc[i, column] = inside
            clipped += 1
    if clipped:
        check.repairs.append(f"clipped {clipped} grid(s) to their community")
    rank = {i: (frame["code"].iloc[i] or "~", int(frame["row"].iloc[i])) for i in range(len(frame))}
    trimmed = 0
    for community in communities:  # overlaps: the lower code keeps them
        mine = [i for i, c in enumerate(frame["community"]) if c == community]
        tree = shapely.STRtree([frame.geometry.iloc[i] for i in mine])
        left, right = tree.query([frame.geometry.iloc[i] for i in mine], predicate="intersects")
        for a, b in sorted({tuple(sorted((mine[x], mine[y]), key=rank.__getitem__)) for x, y in
                            zip(left.tolist(), right.tolist(), strict=True) if x != y}):
            keep, lose = frame.geometry.iloc[a], frame.geometry.iloc[b]
            if keep.intersection(lose).area > SLIVER_M2 / 10:
                frame.iloc[b, column] = to_multipolygon(lose.difference(keep))
                trimmed += 1
    if trimmed:
        check.repairs.append(f"removed {trimmed} overlap(s) from the grid of the higher code")
    filled = 0
    for community, shape in communities.items():
        mine = [i for i, c in enumerate(frame["community"]) if c == community]
        if not mine:
            continue
        rest = to_multipolygon(shape.difference(shapely.union_all([frame.geometry.iloc[i] for i in mine])))
        for piece in rest.geoms:
            if piece.area <= SLIVER_M2 / 10:
                continue
            edge = piece.boundary
            borders = {i: edge.intersection(frame.geometry.iloc[i].buffer(0.01)).length for i in mine}
            best = max(borders, key=lambda i: borders[i])
            if borders[best] > 0:
                frame.iloc[best, column] = to_multipolygon(shapely.union_all([frame.geometry.iloc[best], piece]))
                filled += 1
    if filled:
        check.repairs.append(f"gave {filled} gap(s) to the neighbouring grid with the longest shared border")
    check.crossing = []


def _tiling(check: GridCheck, communities: dict[str, Any]) -> None:
    frame = check.grids
    for community in sorted({c for c in frame["community"] if c is not None}):
        mine = {_label(int(r), c): g for r, c, g, owner in zip(frame["row"], frame["code"], frame.geometry,
                                                                frame["community"], strict=True)
                if owner == community}
        tiling = check_tiling(mine, communities[community])
        check.gaps += [{"community": community, "area_m2": round(g.area, 1), "geometry": g}
                       for g in tiling.gaps if g.area > SLIVER_M2]
        check.overlaps += [{"grids": [a, b], "area_m2": round(area, 1),
                            "geometry": to_multipolygon(mine[a].intersection(mine[b]))}
                           for a, b, area in tiling.overlaps if area > SLIVER_M2]
