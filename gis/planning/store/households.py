"""The city's own building data: household counts from its register, and footprints OSM lacks.

``import-households`` (:func:`apply_households`): each row of the register (:mod:`gis.planning.households`) finds
its building by OSM id, by the city's building id, or by point (the building it lies in, else the nearest within
20 m, measured on the spheroid); counts of the same building add up and replace the estimate
(``households_override``). Unmatched rows are reported with their numbers.

``import-buildings`` (:func:`import_buildings`): footprints from the city's file, each with its own id (``ref``),
stored as buildings of ``osm_type`` ``city`` (an OSM re-import leaves them alone), their households from the file
or else estimated as homes of the city's default storeys; each goes to the grid holding its point on surface.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from psycopg2.extras import execute_values
from sqlalchemy.engine import Connection

from gis.errors import InputError
from gis.files import field_named, read_table, refuse
from gis.geo.households import estimate_households
from gis.planning.division import to_multipolygon
from gis.planning.households import RADIUS_M, check_households
from gis.planning.official import read_features
from gis.planning.store.city import find_city, load_city
from gis.planning.store.load import ewkb_hex


@dataclass
class HouseholdImport:
    city: str
    file: str
    rows: int = 0
    by_osm_id: int = 0
    by_ref: int = 0
    inside: int = 0
    nearest: int = 0
    unmatched: list[int] = field(default_factory=list)
    buildings: int = 0
    summed: int = 0
    households: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.file} for {self.city}: {self.rows:,} rows; {self.buildings:,} buildings now hold "
               f"{self.households:,} confirmed households",
               f"  matched by OSM id {self.by_osm_id:,}, by building id {self.by_ref:,}, by point inside a building "
               f"{self.inside:,}, by point to the nearest within {RADIUS_M:g} m {self.nearest:,}"]
        if self.summed:
            out.append(f"  {self.summed:,} building(s) got counts from several rows: added up")
        if self.unmatched:
            shown = ", ".join(map(str, self.unmatched[:20])) + (" …" if len(self.unmatched) > 20 else "")
            out.append(f"  {len(self.unmatched):,} row(s) match no building and were left out: rows {shown}")
        out += [f"  note: {n}" for n in self.notes]
        return out


def apply_households(conn: Connection, path: str | Path, *, city: str, crs: str | None = None,
                     radius_m: float = RADIUS_M) -> HouseholdImport:
    """Match and apply a household register; see the module docstring."""
    row = find_city(conn, city)
    table = read_table(path)
    rows = check_households(table, crs=crs)
    report = HouseholdImport(city=row.name_en or row.name, file=Path(path).name, rows=len(rows))
    if table.note:
        report.notes.append(table.note)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        cur.execute("CREATE TEMP TABLE stage_households (n int, households int, residents int, osm_type text, "
                    "osm_id bigint, ref text, lon float8, lat float8, building_id int, how text) ON COMMIT DROP")
        execute_values(cur, "INSERT INTO stage_households (n, households, residents, osm_type, osm_id, ref, lon, lat) "
                            "VALUES %s", [(r.row, r.households, r.residents, r.osm_type, r.osm_id, r.ref, r.lon, r.lat)
                                          for r in rows], page_size=5000)
        params = {"c": row.id, "r": radius_m}
        cur.execute("""
            UPDATE stage_households s SET building_id = b.id, how = 'osm' FROM buildings b
            WHERE s.osm_id IS NOT NULL AND b.city_id = %(c)s AND b.osm_type = s.osm_type AND b.osm_id = s.osm_id;
            UPDATE stage_households s SET building_id = b.id, how = 'ref' FROM buildings b
            WHERE s.ref IS NOT NULL AND b.city_id = %(c)s AND b.ref = s.ref;
            UPDATE stage_households s SET building_id = m.id, how = 'inside' FROM (
                SELECT s2.n, (SELECT b.id FROM buildings b WHERE b.city_id = %(c)s
                              AND ST_Intersects(b.geom, ST_SetSRID(ST_MakePoint(s2.lon, s2.lat), 4326))
                              ORDER BY b.id LIMIT 1) AS id
                FROM stage_households s2 WHERE s2.lon IS NOT NULL) m
            WHERE m.n = s.n AND m.id IS NOT NULL;
            UPDATE stage_households s SET building_id = m.id, how = 'nearest' FROM (
                SELECT s2.n, (SELECT b.id FROM buildings b WHERE b.city_id = %(c)s
                              AND ST_DWithin(b.geom::geography, ST_SetSRID(ST_MakePoint(s2.lon, s2.lat),
                                             4326)::geography, %(r)s)
                              ORDER BY b.geom::geography <-> ST_SetSRID(ST_MakePoint(s2.lon, s2.lat),
                                                                         4326)::geography, b.id LIMIT 1) AS id
                FROM stage_households s2 WHERE s2.lon IS NOT NULL AND s2.building_id IS NULL) m
            WHERE m.n = s.n AND m.id IS NOT NULL""", params)
        cur.execute("SELECT how, count(*) FROM stage_households GROUP BY how")
        counts = dict(cur.fetchall())
        report.by_osm_id, report.by_ref = counts.get("osm", 0), counts.get("ref", 0)
        report.inside, report.nearest = counts.get("inside", 0), counts.get("nearest", 0)
        cur.execute("SELECT n FROM stage_households WHERE building_id IS NULL ORDER BY n")
        report.unmatched = [int(r[0]) for r in cur.fetchall()]
        cur.execute("""
            WITH per AS (SELECT building_id, sum(households) AS h, sum(residents) AS r, count(*) AS rows
                         FROM stage_households WHERE building_id IS NOT NULL GROUP BY building_id),
                 up AS (UPDATE buildings b SET households_override = per.h,
                                               residents = coalesce(per.r::int, b.residents)
                        FROM per WHERE b.id = per.building_id RETURNING per.rows, per.h)
            SELECT count(*), count(*) FILTER (WHERE rows > 1), coalesce(sum(h), 0) FROM up""")
        totals = cur.fetchone()
        assert totals is not None  # an aggregate returns one row
        buildings, summed, households = totals
        report.buildings, report.summed, report.households = int(buildings), int(summed), int(households)
    finally:
        cur.close()
    return report


@dataclass
class BuildingImport:
    city: str
    file: str
    new: int = 0
    updated: int = 0
    with_households: int = 0
    estimated: int = 0
    in_no_grid: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.file} for {self.city}: {self.new:,} new and {self.updated:,} updated building(s); "
               f"{self.with_households:,} with the file's household count, {self.estimated:,} estimated",
               f"  {self.in_no_grid:,} lie in no grid (outside every grid of the city)"]
        return out + [f"  note: {n}" for n in self.notes]


REF_FIELDS = ("ref", "building_id", "id", "楼栋编码", "编码")


def ref_osm_id(ref: str) -> int:
    """A stable 56-bit number for the city's own building id: the key OSM ids have, for buildings OSM lacks."""
    return int.from_bytes(hashlib.sha256(ref.encode()).digest()[:7], "big")


def import_buildings(conn: Connection, path: str | Path, *, city: str, crs: str | None = None) -> BuildingImport:
    """Footprints from the city's file; see the module docstring."""
    settings = load_city(conn, city)
    row = find_city(conn, city)
    frame, notes = read_features(path, crs=crs)
    columns = list(frame.columns)
    ref_col = field_named(columns, REF_FIELDS)
    if ref_col is None:
        raise InputError(f"{Path(path).name} needs the city's building id in a field named ref or building_id "
                         f"(楼栋编码); has {', '.join(c for c in columns if c != 'geometry')}")
    name_col = field_named(columns, ("name", "名称"))
    hh_col = field_named(columns, ("households", "户数"))
    levels_col = field_named(columns, ("levels", "building_levels", "层数"))
    problems: list[str] = []
    refs: list[str] = []
    seen: dict[str, int] = {}
    for n, (ref, geom) in enumerate(zip(frame[ref_col], frame.geometry, strict=True), start=1):
        text = str(ref).strip().removesuffix(".0") if ref is not None and ref == ref else ""
        if not text:
            problems.append(f"feature {n}: no building id")
        elif text in seen:
            problems.append(f"feature {n}: building id {text} repeats feature {seen[text]}")
        seen.setdefault(text, n)
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(f"feature {n}: not a polygon")
        refs.append(text)
    refuse(problems, Path(path).name)
    frame["geometry"] = [to_multipolygon(g if g.is_valid else shapely.make_valid(g)) for g in frame.geometry]
    levels = [str(int(float(v))) if v is not None and str(v).strip() not in ("", "nan") else None
              for v in (frame[levels_col] if levels_col else [None] * len(frame))]
    blank = [None] * len(frame)
    shaped = gpd.GeoDataFrame({"building": ["residential"] * len(frame), "building_levels": levels, "height": blank,
                               "shop": blank, "office": blank, "amenity": blank, "tourism": blank},
                              geometry=list(frame.geometry), crs=frame.crs, index=frame.index)
    estimate = estimate_households(shaped, gpd.GeoDataFrame(geometry=[], crs=frame.crs),
                                   default_levels=settings.default_storeys, m2_per_household=settings.m2_per_household)
    given = pd.to_numeric(frame[hh_col], errors="coerce") if hh_col else pd.Series([None] * len(frame))
    report = BuildingImport(city=row.name_en or row.name, file=Path(path).name, notes=notes)
    report.with_households = int(given.notna().sum())
    report.estimated = len(frame) - report.with_households
    report.notes.append(f"estimated counts take the footprints as homes of {settings.default_storeys} storeys (or "
                        f"the file's levels) and {settings.m2_per_household:g} m² per household")
    values: list[Any] = [
        (row.id, "city", ref_osm_id(ref), ref, str(name) if isinstance(name, str) and name.strip() else None,
         "residential", "residential", int(lv), src, float(area), int(est),
         int(g) if g is not None and g == g else None, geom)
        for ref, name, lv, src, area, est, g, geom in zip(
            refs, frame[name_col] if name_col else [None] * len(frame), estimate["levels"],
            estimate["levels_source"], estimate["area_m2"], estimate["households_est"], given,
            ewkb_hex(frame.geometry), strict=True)]
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        result = execute_values(cur, """
            INSERT INTO buildings (city_id, osm_type, osm_id, ref, name, building_type, use, levels, levels_source,
                                   area_m2, households_est, households_override, geom)
            SELECT v.city_id, v.osm_type, v.osm_id, v.ref, v.name, v.building_type, v.use, v.levels,
                   v.levels_source, v.area_m2, v.households_est, v.households_override, v.geom::geometry
            FROM (VALUES %s) AS v (city_id, osm_type, osm_id, ref, name, building_type, use, levels, levels_source,
                                   area_m2, households_est, households_override, geom)
            ON CONFLICT (city_id, osm_type, osm_id) DO UPDATE SET name = EXCLUDED.name, levels = EXCLUDED.levels,
                levels_source = EXCLUDED.levels_source, area_m2 = EXCLUDED.area_m2,
                households_est = EXCLUDED.households_est,
                households_override = coalesce(EXCLUDED.households_override, buildings.households_override),
                geom = EXCLUDED.geom
            RETURNING (xmax = 0), id""", values, fetch=True, page_size=2000)
        ids = [int(i) for _, i in result]
        report.new = sum(1 for inserted, _ in result if inserted)
        report.updated = len(result) - report.new
        cur.execute("""
            UPDATE buildings b SET grid_id = (
                SELECT g.id FROM grids g JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = b.city_id
                AND ST_Intersects(g.geom, ST_PointOnSurface(b.geom)) ORDER BY g.code LIMIT 1)
            WHERE b.id = ANY(%s) RETURNING grid_id""", (ids,))
        report.in_no_grid = sum(1 for (g,) in cur.fetchall() if g is None)
    finally:
        cur.close()
    return report
