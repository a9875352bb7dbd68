"""Synthetic official registers made from OSM data, for the tests and the onboarding walk-through.

A real city brings its own files; the suite has none, so it makes files of the same shape from what an OSM extract
holds: each district cut into vertical strips (its streets, codes ``DDDDDD001``…), each street into horizontal
strips (its communities, ``DDDDDD001001``…). The names are synthetic (``第1街道``). Nothing here is real
administrative data; it only has the form of it.
"""

from __future__ import annotations

import itertools

import geopandas as gpd
import shapely
from shapely.geometry import box

from gis.geo.crs import WGS84, metric_crs_for
from gis.planning.division import to_multipolygon


def _strips(geom: shapely.Geometry, count: int, *, vertical: bool) -> list[shapely.Geometry]:
    """``geom`` cut into ``count`` strips of equal width (west→east) or height (north→south)."""
    minx, miny, maxx, maxy = geom.bounds
    low, high = (minx, maxx) if vertical else (miny, maxy)
    edges = [low - 1] + [low + (high - low) * i / count for i in range(1, count)] + [high + 1]
    if not vertical:
        edges.reverse()
    out = []
    for a, b in itertools.pairwise(edges):
        cut = box(a, miny - 1, b, maxy + 1) if vertical else box(minx - 1, b, maxx + 1, a)
        part = to_multipolygon(geom.intersection(cut))
        if not part.is_empty:
            out.append(part)
    return out


def official_units_from_districts(districts: gpd.GeoDataFrame, *, streets: int = 2,
                                  communities: int = 2) -> gpd.GeoDataFrame:
    """Streets and communities tiling each district (``code``, ``geometry`` in WGS-84): ``code``, ``name``,
    ``level``, ``geometry`` in WGS-84, with 12-digit statistical codes (a street's ends in ``000``)."""
    metric = metric_crs_for(districts)
    rows = []
    for code, geom in zip(districts["code"], districts.to_crs(metric).geometry, strict=True):
        for s, street in enumerate(_strips(geom, streets, vertical=True), start=1):
            street_code = f"{code}{s:03d}"
            rows.append({"code": f"{street_code}000", "name": f"第{s}街道", "level": "street", "geometry": street})
            for c, community in enumerate(_strips(street, communities, vertical=False), start=1):
                rows.append({"code": f"{street_code}{c:03d}", "name": f"第{s}街道第{c}社区", "level": "community",
                             "geometry": community})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=metric).to_crs(WGS84)


def grids_from_communities(communities: gpd.GeoDataFrame, *, per_community: int = 3,
                           coded: bool = True) -> gpd.GeoDataFrame:
    """A grids file as a city keeps one: each community (``code``, ``geometry`` in WGS-84) cut into vertical
    strips, coded ``<community>001``… west→east when ``coded``; ``code``, ``name``, ``geometry`` in WGS-84."""
    metric = metric_crs_for(communities)
    rows = []
    for code, geom in zip(communities["code"], communities.to_crs(metric).geometry, strict=True):
        for i, strip in enumerate(_strips(geom, per_community, vertical=True), start=1):
            rows.append({"code": f"{code}{i:03d}" if coded else None, "name": f"第{i}网格", "geometry": strip})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=metric).to_crs(WGS84)
