"""A city's official streets (街道/乡镇) and communities (社区/村) from its own files: read, check, repair, report.

The statistical codes are 12 digits: 6 district (GB/T 2260) + 3 street + 3 community. A street is given as its
9 digits or as 12 ending in ``000``; a community as its 12. They are the service's own codes for these units
(a grid adds 3 more), so an official unit keeps its code. A file may also give districts OSM lacks (6 digits, under
the city's code; ``99…`` outside China). :func:`read_features` reads any of the city's polygon files (GeoJSON,
GeoPackage, Shapefile) for the other imports too.

Before anything is stored (:func:`check_units`, on geometry in metres):

* a feature that is no polygon, is empty, or whose code is malformed, repeated, or does not nest (a street under
  a district the city lacks, a community under a street neither in the file nor stored) is **refused**, naming the
  row and what to fix; so is a unit lying more than :data:`OUTSIDE_SHARE` of its area outside its parent;
* an invalid polygon is repaired (``make_valid``) and the reason reported;
* a boundary within ``snap_m`` metres of a street is snapped onto it (``shapely.snap``: vertices move onto the
  street's vertices and segments), and the report lists the units that moved; a border shared with the parent
  follows the parent, and what the snap tears between siblings is mended (:func:`_snap`);
* a sliver outside the parent (under the share above) is clipped off, and reported;
* the siblings under each parent are checked for tiling it: gaps and overlaps above :data:`SLIVER_M2` come back as
  polygons with their areas. They are reported, not refused: official boundaries often have them, and the
  planner decides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyproj.exceptions import CRSError

from gis.errors import InputError
from gis.files import Table, check_size, field_named, read_table, refuse
from gis.geo import coords
from gis.geo.crs import WGS84
from gis.planning.division import to_multipolygon
from gis.planning.editing import check_tiling

SLIVER_M2 = 10.0
"""Gaps and overlaps smaller than this are digitising noise and are not reported."""
OUTSIDE_SHARE = 0.02
"""A unit may reach this share of its area outside its parent (clipped off); more is refused."""
SNAP_M = 5.0

CODE_FIELDS = ("code", "dm", "xzqhdm", "tjdm", "代码", "区划代码", "统计用区划代码", "编码")
NAME_FIELDS = ("name", "mc", "名称", "单位名称")


# ------------------------------------------------------------------------------------------------ units in


@dataclass
class UnitFile:
    """An official units file read into WGS-84: ``code``, ``name``, ``level``, ``geometry``; and what was done."""

    frame: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)


def unit_level(raw: object, *, row: int) -> tuple[str, str]:
    """``(code, level)`` of a statistical code: 6 digits → district, 9 digits or 12 ending 000 → street, other
    12 → community."""
    code = re.sub(r"\s", "", str(raw or ""))
    if code.endswith(".0"):  # a spreadsheet turned the code into a number
        code = code[:-2]
    if not code.isdigit():
        raise InputError(f"row {row}: code {raw!r} is not digits; give the 12-digit statistical code")
    if len(code) == 6:
        return code, "district"
    if len(code) == 9 or (len(code) == 12 and code.endswith("000")):
        return code[:9], "street"
    if len(code) == 12:
        return code, "community"
    raise InputError(f"row {row}: code {code} has {len(code)} digits; a district has 6, a street 9 (or 12 ending "
                     "000), a community 12")


def parent_code(code: str) -> str:
    """The code of the unit above a street (9 digits: its district's 6) or a community (12: its street's 9)."""
    return code[:-3]


def _looks_like_degrees(frame: gpd.GeoDataFrame) -> bool:
    minx, miny, maxx, maxy = frame.total_bounds
    return bool(-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90)


def gcj02_to_wgs84(geometry: shapely.Geometry) -> shapely.Geometry:
    """A geometry drawn on a GCJ-02 map, in WGS-84 (each vertex through :func:`gis.geo.coords.to_wgs84`)."""
    def convert(xy: np.ndarray) -> np.ndarray:
        return np.array([coords.to_wgs84(float(x), float(y), "gcj02") for x, y in xy]).reshape(-1, 2)
    return shapely.transform(geometry, convert)


def read_features(path: str | Path, *, crs: str | None = None) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The features of a GeoJSON, GeoPackage or (zipped) Shapefile in WGS-84, and notes on how they were read.

    ``crs`` is what an undeclared file is in (``gcj02``, or anything pyproj reads, e.g. ``EPSG:4547``); a file
    that declares its CRS is reprojected from it (and ``gcj02`` then says its lon/lat are GCJ-02). A file with no
    CRS whose coordinates are degrees is taken as WGS-84, and the notes say so; one in metres is refused.
    """
    from gis.planning.exchange import format_for

    path = Path(path)
    check_size(path)
    fmt = format_for(path)
    source = f"/vsizip/{path}" if fmt == "shp" and path.suffix.lower() == ".zip" else str(path)
    try:
        frame = pyogrio.read_dataframe(source)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(f"{path.name} could not be read as {fmt}: {exc}") from None
    if frame.empty:
        raise InputError(f"{path.name} holds no features")
    notes: list[str] = []
    gcj = crs is not None and coords.ALIASES.get(crs.strip().lower()) == "gcj02"
    if frame.crs is None:
        if crs is not None and not gcj:
            try:
                frame = frame.set_crs(crs)
            except (CRSError, ValueError) as exc:
                raise InputError(f"--crs {crs!r} is no coordinate system pyproj knows ({exc})") from None
        elif _looks_like_degrees(frame):
            frame = frame.set_crs(WGS84)
            if not gcj:
                notes.append(f"{path.name} states no coordinate system; its coordinates are degrees, so WGS-84 "
                             "was assumed (give --crs gcj02 if they come from a Chinese web map)")
        else:
            x, y = frame.total_bounds[:2]
            raise InputError(f"{path.name} states no coordinate system and its coordinates ({x:.0f}, {y:.0f}) are "
                             "not degrees: save it with its CRS, or give it with --crs (e.g. --crs EPSG:4547)")
    frame = frame.to_crs(WGS84)
    if gcj:
        frame["geometry"] = [gcj02_to_wgs84(g) if g is not None else None for g in frame.geometry]
        notes.append("converted from GCJ-02 to WGS-84")
    return frame, notes


def read_units(path: str | Path, *, crs: str | None = None, codes: str | Path | None = None) -> UnitFile:
    """Official units (``row``, ``code``, ``level``, ``name``, ``geometry``) from a file :func:`read_features`
    reads. ``codes``: a CSV or XLSX of ``code,name`` giving names (and the codes to expect) to a geometry file
    that has only codes."""
    path = Path(path)
    frame, notes = read_features(path, crs=crs)
    code_field = field_named(list(frame.columns), CODE_FIELDS)
    if code_field is None:
        raise InputError(f"{path.name} has no code field; name the field of the 12-digit codes 'code' "
                         f"(columns: {', '.join(c for c in frame.columns if c != 'geometry')})")
    name_field = field_named(list(frame.columns), NAME_FIELDS)
    names = frame[name_field].astype(object).tolist() if name_field else [None] * len(frame)
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for i, (raw, name, geom) in enumerate(zip(frame[code_field], names, frame.geometry, strict=True), start=1):
        try:
            code, level = unit_level(raw, row=i)
        except InputError as exc:
            problems.append(str(exc))
            continue
        if code in seen:
            problems.append(f"row {i}: code {code} repeats row {seen[code]}")
            continue
        seen[code] = i
        out.append({"row": i, "code": code, "level": level,
                    "name": str(name).strip() if isinstance(name, str) and name.strip() else None,
                    "geometry": geom})
    if codes is not None:
        _names_from_table(out, read_table(codes), problems, notes)
    refuse(problems, path.name)
    result = gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)
    return UnitFile(frame=result, notes=notes)


def _names_from_table(units: list[dict[str, Any]], table: Table, problems: list[str], notes: list[str]) -> None:
    code_col = field_named(table.columns, CODE_FIELDS)
    name_col = field_named(table.columns, NAME_FIELDS)
    if code_col is None or name_col is None:
        raise InputError(f"the codes table needs a code and a name column (has {', '.join(table.columns)})")
    if table.note:
        notes.append(f"codes table {table.note}")
    names: dict[str, str] = {}
    for i, row in enumerate(table.rows, start=2):
        try:
            code, _ = unit_level(row[code_col], row=i)
        except InputError as exc:
            problems.append(f"codes table {exc}")
            continue
        if code in names:
            problems.append(f"codes table row {i}: code {code} appears twice")
        names[code] = row[name_col]
    for unit in units:
        unit["name"] = unit["name"] or names.pop(unit["code"], None)
        names.pop(unit["code"], None)
    if names:
        shown = ", ".join(sorted(names)[:10])
        notes.append(f"{len(names)} code(s) of the codes table have no geometry in the file: {shown}")


# ------------------------------------------------------------------------------------------------ checks


@dataclass
class UnitCheck:
    """The units as they would be stored (metric geometry), and everything the report says about them."""

    units: gpd.GeoDataFrame
    repaired: list[str] = field(default_factory=list)
    snapped: list[str] = field(default_factory=list)
    clipped: list[tuple[str, float]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)


def _repair(geom: Any, *, row: int, code: str, problems: list[str], repaired: list[str]) -> Any:
    if geom is None or geom.is_empty:
        problems.append(f"row {row} ({code}): empty geometry")
        return None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        problems.append(f"row {row} ({code}): a {geom.geom_type}, not a polygon")
        return None
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        fixed = to_multipolygon(shapely.make_valid(geom))
        if fixed.is_empty:
            problems.append(f"row {row} ({code}): invalid ({reason}) and nothing polygonal is left after repair")
            return None
        repaired.append(f"{code}: {reason}")
        return fixed
    return to_multipolygon(geom)


def check_units(units: gpd.GeoDataFrame, *, districts: Mapping[str, Any], stored: Mapping[str, Any],
                streets: gpd.GeoSeries | None = None, snap_m: float = SNAP_M,
                district_prefix: str | None = None) -> UnitCheck:
    """Check official units (``code``, ``name``, ``level``, ``row``, metric ``geometry``) against the city's
    districts and stored units (code → metric geometry); see the module docstring. Raises :class:`InputError`
    listing every refused feature; returns the repaired, snapped and clipped units and the report.

    A district in the file (6 digits: where OSM has none) must begin with ``district_prefix``: the city's GB/T 2260
    prefix (``3201``), or ``99`` for a place outside China; it is checked against nothing above it (the city's
    outline is only the extent of its data)."""
    problems: list[str] = []
    check = UnitCheck(units=units.copy())
    frame = check.units
    frame["geometry"] = [_repair(g, row=r, code=c, problems=problems, repaired=check.repaired)
                         for g, r, c in zip(frame.geometry, frame["row"], frame["code"], strict=True)]
    in_file = {c: g for c, g in zip(frame["code"], frame.geometry, strict=True) if g is not None}
    districts = {**districts, **{c: g for c, g, lv in zip(frame["code"], frame.geometry, frame["level"],
                                                          strict=True) if lv == "district" and g is not None}}
    for row, code, level in zip(frame["row"], frame["code"], frame["level"], strict=True):
        parent = parent_code(code)
        if level == "district":
            if district_prefix is None or not code.startswith(district_prefix) or code == district_prefix + "00":
                problems.append(f"row {row}: district {code} is not a district of this city (its districts' codes "
                                f"begin with {district_prefix or 'nothing: give its districts from OSM'})")
        elif level == "street" and parent not in districts:
            known = ", ".join(sorted(districts)) or "none"
            problems.append(f"row {row}: street {code} lies in district {parent}, which this city does not have "
                            f"(its districts with codes: {known})")
        elif level == "community" and parent not in in_file and parent not in stored:
            problems.append(f"row {row}: community {code} lies in street {parent}, which is neither in the file "
                            "nor stored: add the street")
    refuse(problems, "official units")

    if streets is not None and snap_m > 0 and len(streets):
        check.snapped = _snap(frame, streets, districts=districts, stored=stored, snap_m=snap_m)

    parents = {**districts, **stored, **{c: g for c, g in zip(frame["code"], frame.geometry, strict=True)}}
    for i, (row, code, level, geom) in enumerate(zip(frame["row"], frame["code"], frame["level"], frame.geometry,
                                                     strict=True)):
        if level == "district":
            continue
        parent = parents[parent_code(code)]
        if parent.covers(geom):
            continue
        outside = geom.difference(parent).area
        if outside <= SLIVER_M2 / 10:
            continue
        if outside > OUTSIDE_SHARE * geom.area:
            above = f"{'district' if level == 'street' else 'street'} {parent_code(code)}"
            problems.append(f"row {row}: {level} {code} lies {outside:,.0f} m² ({outside / geom.area:.0%}) outside "
                            f"its {above}")
            continue
        frame.iloc[i, frame.columns.get_loc("geometry")] = to_multipolygon(geom.intersection(parent))
        check.clipped.append((code, outside))
    refuse(problems, "official units")

    frame["geometry"] = [g if g.is_valid else to_multipolygon(shapely.make_valid(g)) for g in frame.geometry]
    _tiling(check, parents, stored)
    return check


def _snap(frame: gpd.GeoDataFrame, streets: gpd.GeoSeries, *, districts: Mapping[str, Any],
          stored: Mapping[str, Any], snap_m: float) -> list[str]:
    """Snap each unit's boundary onto the streets within ``snap_m``, streets before communities; the codes that
    moved.

    Snapping one polygon at a time can tear what was whole: a boundary shared with the parent may move off it, and
    two siblings may snap a shared border a little differently. So the parent's edge is in the reference (and the
    streets along it are not), and afterwards, per parent, what the siblings covered before snapping and no
    sibling covers after it goes to the sibling sharing the longest border with it, and what snapping pushed
    outside the parent is trimmed. Gaps and overlaps that were in the file stay, and are reported.
    """
    tree = shapely.STRtree(streets.to_numpy())
    parents = {**districts, **stored}
    originals = dict(parents)
    moved: list[str] = []
    column = frame.columns.get_loc("geometry")
    for level in ("street", "community"):
        families: dict[str, list[int]] = {}
        for i in np.flatnonzero((frame["level"] == level).to_numpy()).tolist():
            code = frame["code"].iloc[i]
            families.setdefault(parent_code(code), []).append(i)
        for family, rows in families.items():
            parent = parents.get(family)
            before = {i: frame.geometry.iloc[i] for i in rows}
            after = {i: _snap_one(g, tree, streets, parent, snap_m) for i, g in before.items()}
            if parent is not None:
                _mend(before, after, parent, originals[family])
            for i in rows:
                if not after[i].equals_exact(before[i], 1e-6):
                    frame.iloc[i, column] = after[i]
                    moved.append(frame["code"].iloc[i])
                if level == "street":
                    parents[frame["code"].iloc[i]] = after[i]
                    originals[frame["code"].iloc[i]] = before[i]
    return moved


def _snap_one(geom: Any, tree: shapely.STRtree, streets: gpd.GeoSeries, parent: Any, snap_m: float) -> Any:
    near = tree.query(geom.boundary, predicate="dwithin", distance=snap_m)
    reference = shapely.union_all(streets.iloc[near].to_numpy()) if len(near) else None
    if parent is not None:  # the parent's edge wins over the streets along it
        edge = parent.boundary
        reference = edge if reference is None else shapely.union(reference.difference(edge.buffer(2 * snap_m)),
                                                                 edge)
    if reference is None or reference.is_empty:
        return geom
    snapped = shapely.snap(geom, reference, snap_m)
    snapped = to_multipolygon(snapped if snapped.is_valid else shapely.make_valid(snapped))
    return geom if snapped.is_empty else snapped


def _mend(before: dict[int, Any], after: dict[int, Any], parent: Any, parent_before: Any) -> None:
    """Give the siblings what snapping left uncovered in the parent (and was covered, or was the parent's growth),
    and trim what it pushed outside the parent."""
    for i in after:  # outside the parent now, but not in the file: the snap (of it or of the parent) put it there
        pushed = after[i].difference(parent).difference(before[i].difference(parent_before))
        if pushed.area > 0:
            after[i] = to_multipolygon(after[i].difference(pushed))
    gaps_before = parent_before.difference(shapely.union_all(list(before.values())))
    lost = parent.difference(shapely.union_all(list(after.values()))).difference(gaps_before)
    for piece in to_multipolygon(lost).geoms:
        edge = piece.boundary  # the border it shares with each sibling, to a centimetre (overlays are not exact)
        borders = {i: edge.intersection(g.buffer(0.01)).length for i, g in after.items()}
        best = max(borders, key=lambda i: borders[i], default=None)
        if best is not None and borders[best] > 0:
            after[best] = to_multipolygon(shapely.union_all([after[best], piece]))


def _tiling(check: UnitCheck, parents: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
    frame = check.units
    children: dict[str, dict[str, Any]] = {}
    for code, geom in list(stored.items()) + list(zip(frame["code"], frame.geometry, strict=True)):
        if len(code) in (9, 12):
            children.setdefault(parent_code(code), {})[code] = geom
    for parent in sorted({parent_code(c) for c, lv in zip(frame["code"], frame["level"], strict=True)
                          if lv != "district"}):
        siblings = children.get(parent, {})
        tiling = check_tiling(siblings, parents[parent])
        for gap in tiling.gaps:
            if gap.area > SLIVER_M2:
                check.gaps.append({"parent": parent, "area_m2": round(gap.area, 1), "geometry": gap})
        for a, b, area in tiling.overlaps:
            if area > SLIVER_M2:
                check.overlaps.append({"parent": parent, "codes": [a, b], "area_m2": round(area, 1),
                                       "geometry": to_multipolygon(siblings[a].intersection(siblings[b]))})
