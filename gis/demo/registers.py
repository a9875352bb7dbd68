"""Synthetic official registers made from OSM data, for the tests and the onboarding walk-through.

A real city brings its own files; the suite has none, so it makes files of the same shape from what an OSM extract
holds: each district cut into vertical strips (its streets, codes ``DDDDDD001``…), each street into horizontal
strips (its communities, ``DDDDDD001001``…). The names are synthetic (``第1街道``). Nothing here is real
administrative data; it only has the form of it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.geo.crs import WGS84, metric_crs_for
from gis.planning.division import to_multipolygon
from gis.planning.store.city import find_city


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


def write_example_registers(engine: Engine, city: str, out: Path, *, grid_households: int = 400,
                            community_households: int = 5_000, street_households: int = 40_000) -> dict[str, Path]:
    """A city's files as it would bring them, made from its imported OSM data, into ``out``: ``units.geojson``
    (districts where OSM has none, streets, communities), ``grids.geojson``, ``staff.csv`` (GBK, as many offices
    save it) and ``households.csv`` (counts by point). Sizes follow the households the import estimated. Everything
    in them is synthetic: the geometry is cut in strips, the names, numbers and counts are made up."""
    out.mkdir(parents=True, exist_ok=True)
    with engine.connect() as conn:
        row = find_city(conn, city)
        districts = gpd.read_postgis(text(
            "SELECT code, geom FROM admin_units WHERE city_id = :c AND level = 'district' AND code IS NOT NULL "
            "ORDER BY code"), conn, geom_col="geom", params={"c": row.id}, crs=WGS84).rename_geometry("geometry")
        given = districts.empty
        if given:  # no district in OSM: one over the data's extent (outside China with a synthetic code)
            districts = gpd.read_postgis(text("SELECT geom FROM admin_units WHERE id = :c"), conn, geom_col="geom",
                                         params={"c": row.id}, crs=WGS84).rename_geometry("geometry")
            districts["code"] = f"{row.code[:4]}01" if row.code else "990001"
        homes = gpd.read_postgis(text(
            "SELECT id, households, ST_PointOnSurface(geom) AS geom FROM buildings WHERE city_id = :c"), conn,
            geom_col="geom", params={"c": row.id}, crs=WGS84)
    total = max(1, int(homes["households"].sum()))
    streets = max(1, round(total / len(districts) / street_households))
    communities = max(1, round(total / len(districts) / streets / community_households))
    units = official_units_from_districts(districts, streets=streets, communities=communities)
    if not given:
        units = units[units["level"] != "district"]
    else:
        units = gpd.GeoDataFrame(pd.concat([districts.assign(name="合成区", level="district"), units],
                                           ignore_index=True), geometry="geometry", crs=WGS84)
    comms = units[units["level"] == "community"]
    per = max(1, round(total / max(1, len(comms)) / grid_households))
    grids = grids_from_communities(comms[["code", "geometry"]], per_community=per)
    paths = {"units": out / "units.geojson", "grids": out / "grids.geojson", "staff": out / "staff.csv",
             "households": out / "households.csv"}
    for key in ("units", "grids"):
        paths[key].unlink(missing_ok=True)
    pyogrio.write_dataframe(units[["code", "name", "geometry"]], paths["units"])
    pyogrio.write_dataframe(grids, paths["grids"])
    staff = ["姓名,电话,岗位,网格编码,职责,用户名,值班日,值班时间"]
    for i, code in enumerate(grids["code"]):
        staff.append(f"网格长{i:04d},139{i:08d},网格长,{code},,,,")
        staff.append(f"网格员{i:04d},138{i:08d},网格员,{code},,member{i:04d},1-5,08:30-17:30")
    paths["staff"].write_bytes(("\n".join(staff) + "\n").encode("gbk"))
    sample = homes[homes["households"] > 0].iloc[::10]
    lines = ["lon,lat,households,residents"] + [
        f"{p.x:.7f},{p.y:.7f},{int(h) + 1},{(int(h) + 1) * 2}" for p, h in zip(sample.geometry, sample["households"],
                                                                              strict=True)]
    paths["households"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
