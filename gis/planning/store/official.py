"""Store a city's official streets and communities (``gridpatrol import-units``), checked first, versioned.

The checks are :func:`gis.planning.official.check_units`'s, against the city's stored districts and units and its
drive streets (for snapping). A dry run reports everything and stores nothing. Otherwise each unit is inserted,
or updated in place when its code is stored (a new version when its outline or name changed), under its parent by
code, in the caller's transaction; its code is recorded among the codes ever issued, so a later automatic
division never issues it again.

A district divided automatically holds generated streets and communities whose codes would collide with the
official ones: the import refuses it unless asked to replace them (``replace_generated``), which retires them and
their grids as dividing again does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from psycopg2.extras import execute_values
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.errors import ConflictError
from gis.geo import gb2260
from gis.geo.crs import WGS84, metric_crs_for
from gis.planning.division import to_multipolygon
from gis.planning.official import SNAP_M, UnitCheck, check_units, parent_code, read_units
from gis.planning.store.city import find_city
from gis.planning.store.divisions import SYNTHETIC_PREFIX, _retire_generated
from gis.planning.store.load import ewkb_hex, record_unit_versions


@dataclass
class UnitImport:
    city: str
    file: str
    dry_run: bool
    districts: int = 0
    streets: int = 0
    communities: int = 0
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    snapped: list[str] = field(default_factory=list)
    clipped: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    replaced: int = 0
    replaced_grids: int = 0
    snap_m: float = SNAP_M

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    def lines(self) -> list[str]:
        verb = "would store" if self.dry_run else "stored"
        given = f"{self.districts} district(s), " if self.districts else ""
        out = [f"{self.file} for {self.city}: {given}{self.streets} street(s), {self.communities} communities; {verb} "
               f"{len(self.new)} new, {len(self.changed)} changed, {self.unchanged} unchanged"
               + (" (dry run: nothing stored)" if self.dry_run else "")]
        out += [f"  note: {n}" for n in self.notes]
        if self.replaced:
            out.append(f"  replaced {self.replaced} generated unit(s) of the automatic division and their "
                       f"{self.replaced_grids} grid(s)")
        out += [f"  repaired invalid geometry: {r}" for r in self.repaired]
        if self.snapped:
            shown = ", ".join(self.snapped[:10]) + (" …" if len(self.snapped) > 10 else "")
            out.append(f"  snapped onto streets within {self.snap_m:g} m: {len(self.snapped)} unit(s) ({shown})")
        out += [f"  clipped to its parent: {c['code']} lost {c['area_m2']:,.1f} m² outside it" for c in self.clipped]
        out += [f"  gap of {g['area_m2']:,.0f} m² in {g['parent']} that no unit covers" for g in self.gaps]
        out += [f"  overlap of {o['area_m2']:,.0f} m² between {' and '.join(o['codes'])}" for o in self.overlaps]
        if not (self.gaps or self.overlaps):
            out.append("  the units tile their parents: no gap or overlap above 10 m²")
        return out


def _geojson(geoms: list[Any], metric: Any) -> list[dict[str, Any]]:
    series = gpd.GeoSeries(geoms, crs=metric).to_crs(WGS84)
    return [json.loads(shapely.to_geojson(g)) for g in series]


def _coded(conn: Connection, city_id: int, levels: tuple[str, ...], metric: Any) -> dict[str, Any]:
    frame = gpd.read_postgis(text(
        "SELECT code, geom FROM admin_units WHERE city_id = :c AND level = ANY(:levels) AND code IS NOT NULL"),
        conn, geom_col="geom", params={"c": city_id, "levels": list(levels)}, crs=WGS84)
    return dict(zip(frame["code"], frame.to_crs(metric).geometry, strict=True))


def import_units(conn: Connection, path: str | Path, *, city: str, crs: str | None = None,
                 codes: str | Path | None = None, snap_m: float = SNAP_M, author: str, reason: str,
                 dry_run: bool = False, replace_generated: bool = False) -> UnitImport:
    """Check and (unless ``dry_run``) store the official units of ``path``; see the module docstring."""
    row = find_city(conn, city)
    unit_file = read_units(path, crs=crs, codes=codes)
    metric = metric_crs_for(unit_file.frame)
    units = unit_file.frame.to_crs(metric)
    districts = _coded(conn, row.id, ("district",), metric)
    stored = _coded(conn, row.id, ("street", "community"), metric)
    minx, miny, maxx, maxy = (float(v) for v in unit_file.frame.total_bounds)
    streets = gpd.read_postgis(text(
        "SELECT geom FROM road_edges WHERE city_id = :c AND network = 'drive' "
        "AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"), conn, geom_col="geom",
        params={"c": row.id, "x0": minx - 0.001, "y0": miny - 0.001, "x1": maxx + 0.001, "y1": maxy + 0.001},
        crs=WGS84).to_crs(metric).geometry
    # the units the file gives children to: where an automatic division's units would lie beside official ones
    parents = sorted({parent_code(c) for c, lv in zip(units["code"], units["level"], strict=True)
                      if lv != "district"})
    generated = conn.execute(text("""
        SELECT p.id, p.code, count(u.id),
               (SELECT count(*) FROM grids g WHERE g.source = 'generated' AND g.code LIKE p.code || '%')
        FROM admin_units p JOIN admin_units u ON u.parent_id = p.id AND u.source = 'generated'
        WHERE p.city_id = :c AND p.code = ANY(:codes)
        GROUP BY p.id, p.code ORDER BY p.code"""), {"c": row.id, "codes": parents}).all()
    if generated and not replace_generated:
        listed = ", ".join(f"{code} ({n} units, {g} grids)" for _, code, n, g in generated)
        raise ConflictError(f"the automatic division already made units in {listed}, where the file's units go: "
                            "import with --replace-generated to retire them and their grids, or leave those "
                            "units out of the file")
    going = _generated_codes(conn, row.id, [code for _, code, _, _ in generated])
    stored = {c: g for c, g in stored.items() if c not in going}  # the generated units are going
    osm_held = sorted(conn.execute(text(
        "SELECT code FROM admin_units WHERE city_id = :c AND level = 'district' AND source = 'osm' "
        "AND code = ANY(:codes)"), {"c": row.id, "codes": list(units["code"])}).scalars())
    if osm_held:
        raise ConflictError(f"district(s) {', '.join(osm_held)} come from the OSM extract, with their boundary: leave "
                            "them out of the file (its streets and communities are checked against them)")
    found = gb2260.division(row.code) if row.code else None
    prefix = found.prefix if found else (row.code[:4] if row.code else SYNTHETIC_PREFIX)
    check = check_units(units, districts=districts, stored=stored, streets=streets, snap_m=snap_m,
                        district_prefix=prefix)
    report = _report(row.name_en or row.name, Path(path).name, dry_run, check, unit_file.notes, metric, snap_m)
    existing: dict[str, int] = {r.code: r.city_id for r in conn.execute(text(
        "SELECT code, city_id FROM admin_units WHERE code = ANY(:codes)"), {"codes": list(check.units["code"])})
        if r.code not in going}
    elsewhere = sorted(c for c, city_id in existing.items() if city_id != row.id)
    if elsewhere:
        raise ConflictError(f"code(s) {', '.join(elsewhere[:10])} belong to another city's units: is this the "
                            f"file of {row.name}?")
    report.new = [c for c in check.units["code"] if c not in existing]
    if dry_run:  # what would change: an outline moved by more than 1 m² (as the versions count it)
        before = {**districts, **stored}
        report.changed = sorted(c for c, g in zip(check.units["code"], check.units.geometry, strict=True)
                                if c in before and before[c].symmetric_difference(g).area > 1.0)
        report.unchanged = len(check.units) - len(report.new) - len(report.changed)
        return report
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        for unit_id, _, units_count, grids_count in generated:
            _retire_generated(cur, unit_id, "replaced by the official units")
            report.replaced += int(units_count)
            report.replaced_grids += int(grids_count)
        _write(cur, row.id, check)
        record_unit_versions(cur, row.id, change="official", author=author, reason=reason)
    finally:
        cur.close()
    report.changed = sorted(_changed_codes(conn, list(existing)))
    report.unchanged = len(check.units) - len(report.new) - len(report.changed)
    return report


def _generated_codes(conn: Connection, city_id: int, parents: list[str]) -> set[str]:
    """The codes of the generated units below ``parents`` (what ``replace_generated`` retires)."""
    if not parents:
        return set()
    return set(conn.execute(text(
        "SELECT u.code FROM admin_units u WHERE u.city_id = :c AND u.source = 'generated' AND u.code IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM unnest(CAST(:p AS text[])) p WHERE u.code LIKE p || '%' AND u.code <> p)"),
        {"c": city_id, "p": parents}).scalars())


def _changed_codes(conn: Connection, codes: list[str]) -> list[str]:
    """Of ``codes``, those whose newest version is from this transaction (``now()`` is the transaction's)."""
    return list(conn.execute(text(
        "SELECT code FROM unit_versions WHERE code = ANY(:codes) AND version > 1 AND valid_from = now()"),
        {"codes": codes}).scalars())


def _report(city: str, file: str, dry_run: bool, check: UnitCheck, notes: list[str], metric: Any,
            snap_m: float) -> UnitImport:
    units = check.units
    report = UnitImport(city=city, file=file, dry_run=dry_run, notes=list(notes), repaired=check.repaired,
                        snapped=check.snapped, snap_m=snap_m,
                        districts=int((units["level"] == "district").sum()),
                        streets=int((units["level"] == "street").sum()),
                        communities=int((units["level"] == "community").sum()),
                        clipped=[{"code": c, "area_m2": round(a, 1)} for c, a in check.clipped])
    for key in ("gaps", "overlaps"):
        found = getattr(check, key)
        shapes = _geojson([f["geometry"] for f in found], metric)
        setattr(report, key, [{**f, "geometry": g} for f, g in zip(found, shapes, strict=True)])
    return report


def _write(cur: Any, city_id: int, check: UnitCheck) -> None:
    """Streets first (communities name them as parents), each inserted or updated by code."""
    wgs = check.units.to_crs(WGS84)
    # reprojection can leave a polygon that was valid in metres touching itself by a rounding: mend it
    wgs["geometry"] = [to_multipolygon(g if g.is_valid else shapely.make_valid(g)) for g in wgs.geometry]
    districts = wgs[wgs["level"] == "district"]
    if not districts.empty:  # directly under the city
        execute_values(cur, """
            INSERT INTO admin_units (city_id, parent_id, level, code, name, source, geom)
            SELECT v.city_id, v.city_id, 'district', v.code, v.name, 'official', v.geom::geometry
            FROM (VALUES %s) AS v (city_id, code, name, geom)
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom, source = 'official'
            """, [(city_id, c, n or c, g) for c, n, g in zip(districts["code"], districts["name"],
                                                             ewkb_hex(districts.geometry), strict=True)])
        execute_values(cur, "INSERT INTO unit_codes (code, level, parent_code, seq) VALUES %s ON CONFLICT (code) "
                            "DO NOTHING", [(c, "district", c[:2] if c.startswith(SYNTHETIC_PREFIX) else c[:4],
                                            min(max(1, int(c[-4:] if c.startswith(SYNTHETIC_PREFIX) else c[-2:])),
                                                999)) for c in districts["code"]])
    for level in ("street", "community"):
        part = wgs[wgs["level"] == level]
        if part.empty:
            continue
        rows = [(city_id, level, code, name or code, geom, parent_code(code))
                for code, name, geom in zip(part["code"], part["name"], ewkb_hex(part.geometry), strict=True)]
        execute_values(cur, """
            INSERT INTO admin_units (city_id, parent_id, level, code, name, source, geom)
            SELECT v.city_id, p.id, v.level, v.code, v.name, 'official', v.geom::geometry
            FROM (VALUES %s) AS v (city_id, level, code, name, geom, parent_code)
            JOIN admin_units p ON p.city_id = v.city_id AND p.code = v.parent_code
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom,
                parent_id = EXCLUDED.parent_id, source = 'official'
            """, rows, template="(%s, %s, %s, %s, %s, %s)")
        execute_values(cur, """
            INSERT INTO unit_codes (code, level, parent_code, seq) VALUES %s ON CONFLICT (code) DO NOTHING
            """, [(code, level, parent_code(code), max(1, int(code[-3:]))) for code in part["code"]])
