"""Run the automatic division over stored data, and store its hierarchy with codes (``gridpatrol divide``).

Codes follow ``../shared/DOMAIN.md``: 6-digit district + 3 street + 3 community + 3 grid = 15 digits, numbered in
reading order (west→east, north→south) inside the parent. Every code ever issued is kept in ``unit_codes``;
dividing a unit again retires the codes of its earlier generated units and issues new numbers after the highest
ever issued under the same parent, so a retired code is never reused. A district without a GB/T 2260 code
(data outside China) gets a synthetic one starting with 99, a prefix no Chinese province uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import shapely
from psycopg2.extras import execute_values
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from gis.errors import ConflictError, InputError, NotFoundError
from gis.geo.crs import WGS84, metric_crs_for
from gis.planning.division import (
    COMMUNITY_BAND,
    GRID_BAND,
    STREET_BAND,
    Band,
    Division,
    divide_area,
    reading_order,
    to_multipolygon,
)
from gis.planning.store.load import close_removed_unit_versions, copy_rows, ewkb_hex, record_unit_versions

SYNTHETIC_PREFIX = "99"


@dataclass
class DivisionSummary:
    unit_id: int
    unit: str
    code: str
    division_id: int | None
    streets: int
    communities: int
    grids: int
    grids_in_band: int
    single_building_grids: int
    households: int
    band: str
    seconds: float
    out_of_band: list[dict[str, Any]] = field(default_factory=list)
    division: Division | None = field(default=None, repr=False)

    @property
    def share_in_band(self) -> float:
        """Grids in the band among those that can be (single buildings above it excepted)."""
        eligible = self.grids - self.single_building_grids
        return self.grids_in_band / eligible if eligible else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit_id": self.unit_id, "unit": self.unit, "code": self.code, "division_id": self.division_id,
            "streets": self.streets, "communities": self.communities, "grids": self.grids,
            "grids_in_band": self.grids_in_band, "single_building_grids": self.single_building_grids,
            "share_in_band": round(self.share_in_band, 4), "households": self.households, "band": self.band,
            "seconds": round(self.seconds, 2), "out_of_band": self.out_of_band,
        }

    def lines(self) -> list[str]:
        out = [f"{self.unit} ({self.code}): {self.streets} street(s), {self.communities} communities, "
               f"{self.grids} grids; {self.grids_in_band} of {self.grids - self.single_building_grids} grids in "
               f"{self.band} households ({self.share_in_band:.0%}), {self.households:,} households, "
               f"{self.seconds:.1f} s"]
        out.extend(f"  {g['code'] or 'grid'} {g['households']:>6,} households: {g['note']}" for g in self.out_of_band)
        return out


@dataclass(frozen=True)
class Parent:
    id: int
    name: str
    code: str | None
    city_code: str | None


def parents_to_divide(conn: Connection, city_id: int, *, district: str | None = None) -> list[Parent]:
    """The districts of a city (or the one named). A city whose data has no district gets one generated over
    its whole extent, so that everything below has a parent."""
    city_code = conn.execute(text("SELECT code FROM admin_units WHERE id = :c"), {"c": city_id}).scalar()
    rows = conn.execute(text(
        "SELECT id, name, code FROM admin_units WHERE city_id = :c AND level = 'district' ORDER BY code, id"
    ), {"c": city_id}).all()
    if district:
        wanted = district.strip().casefold()
        rows = [r for r in rows if wanted in {r.name.casefold(), (r.code or "")}]
        if not rows:
            raise NotFoundError(f"no district {district!r} in this city")
    if not rows:
        row = conn.execute(text(
            "INSERT INTO admin_units (city_id, parent_id, level, name, source, geom) "
            "SELECT id, id, 'district', name || ' (whole area)', 'generated', geom FROM admin_units WHERE id = :c "
            "RETURNING id, name, code"), {"c": city_id}).one()
        rows = [row]
    return [Parent(r.id, r.name, r.code, city_code) for r in rows]


def load_inputs(conn: Connection, unit_id: int) -> tuple[shapely.Geometry, gpd.GeoDataFrame, gpd.GeoSeries]:
    """A unit's polygon, the buildings whose point on surface lies in it, and the drive streets crossing it."""
    area_wkb = conn.execute(text("SELECT ST_AsBinary(geom) FROM admin_units WHERE id = :u"), {"u": unit_id}).scalar()
    if area_wkb is None:
        raise InputError("this unit has no polygon to divide")
    area = shapely.union_all(list(getattr(shapely.from_wkb(bytes(area_wkb)), "geoms", [])) or
                             [shapely.from_wkb(bytes(area_wkb))])
    buildings = gpd.read_postgis(text("""
        SELECT b.id, b.households, b.geom FROM buildings b JOIN admin_units u ON u.id = :u
        WHERE b.city_id = u.city_id AND ST_Intersects(u.geom, ST_PointOnSurface(b.geom)) ORDER BY b.id
    """), conn, geom_col="geom", params={"u": unit_id}, crs=WGS84, index_col="id")
    streets = gpd.read_postgis(text("""
        SELECT e.geom FROM road_edges e JOIN admin_units u ON u.id = :u
        WHERE e.city_id = u.city_id AND e.network = 'drive' AND ST_Intersects(e.geom, u.geom)
        ORDER BY e.id
    """), conn, geom_col="geom", params={"u": unit_id}, crs=WGS84)
    return area, buildings.rename_geometry("geometry"), streets.geometry


def issue_codes(cur: Any, level: str, parent_code: str, seqs: Sequence[int]) -> list[str]:
    """Issue codes under ``parent_code`` for units numbered ``seqs`` (1-based, in reading order): numbering goes
    on after the highest sequence ever issued under that parent, so a retired code is never issued again."""
    cur.execute("SELECT coalesce(max(seq), 0) FROM unit_codes WHERE parent_code = %s", (parent_code,))
    offset = int(cur.fetchone()[0])
    numbers = [offset + int(s) for s in seqs]
    if numbers and max(numbers) > 999:
        raise InputError(f"codes under {parent_code} would pass 999 (three digits); "
                         "the parent holds too many units for the coding rule")
    codes = [f"{parent_code}{n:03d}" for n in numbers]
    execute_values(cur, "INSERT INTO unit_codes (code, level, parent_code, seq) VALUES %s",
                   [(c, level, parent_code, n) for c, n in zip(codes, numbers, strict=True)])
    return codes


def _district_code(cur: Any, parent: Parent) -> str:
    if parent.code:
        return parent.code
    cur.execute("SELECT coalesce(max(seq), 0) FROM unit_codes WHERE level = 'district' AND parent_code = %s",
                (SYNTHETIC_PREFIX,))
    seq = int(cur.fetchone()[0]) + 1
    code = f"{SYNTHETIC_PREFIX}{seq:04d}"
    cur.execute("INSERT INTO unit_codes (code, level, parent_code, seq) VALUES (%s, 'district', %s, %s)",
                (code, SYNTHETIC_PREFIX, min(seq, 999)))
    cur.execute("UPDATE admin_units SET code = %s WHERE id = %s", (code, parent.id))
    return code


def _retire_generated(cur: Any, unit_id: int, why: str) -> None:
    cur.execute("""
        CREATE TEMP TABLE old_units ON COMMIT DROP AS
        WITH RECURSIVE below AS (
            SELECT id, code FROM admin_units WHERE parent_id = %(u)s AND source = 'generated' AND id <> %(u)s
            UNION ALL
            SELECT a.id, a.code FROM admin_units a JOIN below ON a.parent_id = below.id WHERE a.source = 'generated'
        ) SELECT id, code FROM below
    """, {"u": unit_id})
    cur.execute("""
        UPDATE unit_codes SET retired_at = now(), retired_why = %s
        WHERE retired_at IS NULL AND code IN (
            SELECT code FROM old_units UNION ALL
            SELECT g.code FROM grids g WHERE g.community_id IN (SELECT id FROM old_units))
    """, (why,))
    cur.execute("UPDATE grid_versions SET valid_to = now() WHERE valid_to IS NULL "
                "AND grid_id IN (SELECT id FROM grids WHERE community_id IN (SELECT id FROM old_units))")
    cur.execute("DELETE FROM grids WHERE community_id IN (SELECT id FROM old_units)")
    cur.execute("DELETE FROM admin_units WHERE id IN (SELECT id FROM old_units)")
    cur.execute("DROP TABLE old_units")
    close_removed_unit_versions(cur)


def _insert_units(cur: Any, frame: gpd.GeoDataFrame, *, city_id: int, parents: list[int], level: str,
                  codes: list[str], division_id: int, names: list[str]) -> list[int]:
    rows = [(city_id, parent, level, code, name, "generated", geom, division_id)
            for parent, code, name, geom in zip(parents, codes, names,
                                                 ewkb_hex(to_multipolygon(g) for g in frame.geometry), strict=True)]
    ids = execute_values(cur, "INSERT INTO admin_units (city_id, parent_id, level, code, name, source, geom, "
                              "division_id) VALUES %s RETURNING id", rows,
                         template="(%s, %s, %s, %s, %s, %s, %s::geometry, %s)", fetch=True)
    return [int(r[0]) for r in ids]


def _store_grids(cur: Any, division: Division, communities: dict[tuple[int, int], tuple[int, str]], *,
                 city_id: int, division_id: int) -> list[str]:
    """The division's grids under their stored communities (``(street seq, community seq)`` → id and code): codes,
    versions, the units' versions, and every building in its grid. Returns the grid codes in the grids' order."""
    grids = division.grids
    grid_codes: list[str] = [""] * len(grids)
    for (street_seq, comm_seq), group in grids.groupby(["street_seq", "community_seq"], sort=True):
        _, comm_code = communities[(int(street_seq), int(comm_seq))]
        codes = issue_codes(cur, "grid", comm_code, group["seq"].tolist())
        for pos, code in zip(group.index, codes, strict=True):
            grid_codes[grids.index.get_loc(pos)] = code
    rows = [
        (code, f"网格 {code[-9:]}", communities[(int(st), int(cs))][0], geom, division_id, "generated",
         note or None)
        for code, st, cs, geom, note in zip(grid_codes, grids["street_seq"], grids["community_seq"],
                                            ewkb_hex(to_multipolygon(g) for g in grids.geometry),
                                            grids["note"], strict=True)
    ]
    grid_ids = [int(r[0]) for r in execute_values(
        cur, "INSERT INTO grids (code, name, community_id, geom, division_id, source, note) VALUES %s "
             "RETURNING id", rows, template="(%s, %s, %s, %s::geometry, %s, %s, %s)", fetch=True)]

    cur.execute(
        "INSERT INTO grid_versions (grid_id, code, version, community_id, geom, change, author, reason) "
        "SELECT id, code, 1, community_id, geom, 'division', 'gridpatrol', 'automatic division' "
        "FROM grids WHERE id = ANY(%s)", (grid_ids,))
    record_unit_versions(cur, city_id, change="division", author="gridpatrol", reason="automatic division")

    assigned = division.building_grid.dropna()
    cur.execute("CREATE TEMP TABLE stage_assign (building_id int, grid_id int) ON COMMIT DROP")
    copy_rows(cur, "stage_assign", ("building_id", "grid_id"),
              ((int(b), grid_ids[int(g)]) for b, g in zip(assigned.index, assigned.to_numpy(), strict=True)))
    cur.execute("UPDATE buildings b SET grid_id = s.grid_id FROM stage_assign s WHERE b.id = s.building_id")
    cur.execute("DROP TABLE stage_assign")
    return grid_codes


def divide_and_store(
    engine: Engine,
    city_id: int,
    *,
    district: str | None = None,
    grid_band: Band = GRID_BAND,
    community_band: Band = COMMUNITY_BAND,
    street_band: Band = STREET_BAND,
    dry_run: bool = False,
    progress: Any = None,
) -> list[DivisionSummary]:
    """Divide each district of a city (or the one named) and, unless ``dry_run``, store the result.

    All districts are written in one transaction: a failure leaves the earlier division in place.
    """
    summaries: list[DivisionSummary] = []
    with engine.begin() as conn:
        parents = parents_to_divide(conn, city_id, district=district)
        for parent in parents:
            if progress:
                progress(parent.name)
            started = time.perf_counter()
            area, buildings, streets = load_inputs(conn, parent.id)
            division = divide_area(area, buildings, streets, grid_band=grid_band, community_band=community_band,
                                   street_band=street_band)
            summary = _summarise(parent, division, time.perf_counter() - started)
            if not dry_run:
                _store(conn, city_id, parent, division, summary)
            summaries.append(summary)
        if dry_run:
            conn.rollback()  # parents_to_divide may have generated a whole-area district
    return summaries


def _summarise(parent: Parent, division: Division, seconds: float) -> DivisionSummary:
    grids = division.grids
    single = grids["note"].str.startswith("one building")
    return DivisionSummary(
        unit_id=parent.id, unit=parent.name, code=parent.code or "", division_id=None,
        streets=len(division.streets), communities=len(division.communities), grids=len(grids),
        grids_in_band=int(grids["in_band"].sum()), single_building_grids=int(single.sum()),
        households=round(grids["households"].sum()), band=str(division.band), seconds=seconds,
        out_of_band=_out_of_band(grids, [None] * len(grids)),
        division=division,
    )


def _out_of_band(grids: gpd.GeoDataFrame, codes: list[str] | list[None]) -> list[dict[str, Any]]:
    return [{"code": code, "households": round(h), "note": note}
            for code, h, note, ok in zip(codes, grids["households"], grids["note"], grids["in_band"], strict=True)
            if not ok]


def _store(conn: Connection, city_id: int, parent: Parent, division: Division, summary: DivisionSummary) -> None:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        _retire_generated(cur, parent.id, "the unit was divided again")
        district_code = _district_code(cur, parent)
        summary.code = district_code
        cur.execute("INSERT INTO divisions (unit_id, grid_low, grid_high, report) VALUES (%s, %s, %s, '{}') "
                    "RETURNING id", (parent.id, division.band.low, division.band.high))
        (division_id,) = cur.fetchone() or (None,)
        assert division_id is not None

        streets = division.streets
        street_codes = issue_codes(cur, "street", district_code, streets["seq"].tolist())
        street_ids = _insert_units(cur, streets, city_id=city_id, parents=[parent.id] * len(streets),
                                   level="street", codes=street_codes, division_id=division_id,
                                   names=[f"街道 {c[-3:]}" for c in street_codes])
        street_by_seq = {int(seq): (sid, code) for seq, sid, code in zip(streets["seq"], street_ids, street_codes,
                                                                          strict=True)}

        comms = division.communities
        comm_codes: list[str] = [""] * len(comms)
        for street_seq, group in comms.groupby("street_seq", sort=True):
            _, street_code = street_by_seq[int(street_seq)]
            codes = issue_codes(cur, "community", street_code, group["seq"].tolist())
            for pos, code in zip(group.index, codes, strict=True):
                comm_codes[comms.index.get_loc(pos)] = code
        comm_ids = _insert_units(cur, comms, city_id=city_id,
                                 parents=[street_by_seq[int(s)][0] for s in comms["street_seq"]],
                                 level="community", codes=comm_codes, division_id=division_id,
                                 names=[f"社区 {c[-6:]}" for c in comm_codes])
        comm_by_key = {(int(st), int(sq)): (cid, code) for st, sq, cid, code in
                       zip(comms["street_seq"], comms["seq"], comm_ids, comm_codes, strict=True)}

        grid_codes = _store_grids(cur, division, comm_by_key, city_id=city_id, division_id=division_id)
        summary.division_id = division_id
        summary.out_of_band = _out_of_band(division.grids, grid_codes)
        cur.execute("UPDATE divisions SET report = %s::jsonb WHERE id = %s",
                    (json.dumps(summary.as_dict(), ensure_ascii=False), division_id))
    finally:
        cur.close()


def divide_street(conn: Connection, code: str, *, grid_band: Band = GRID_BAND, community_band: Band = COMMUNITY_BAND,
                  dry_run: bool = True) -> DivisionSummary:
    """Divide one street into communities and their grids, inside its boundary; the street (and its district) stay.

    A street with official communities is refused (they are the city's: divide their grids one community at a
    time); communities an earlier division generated are retired with their grids, their codes never issued
    again. The new ones are numbered in reading order under the street's code."""
    row = conn.execute(text("SELECT id, name, city_id FROM admin_units WHERE code = :c AND level = 'street'"),
                       {"c": code}).first()
    if row is None:
        raise NotFoundError(f"no street {code}")
    official = conn.execute(text("SELECT count(*) FROM admin_units WHERE parent_id = :s AND level = 'community' "
                                 "AND source <> 'generated'"), {"s": row.id}).scalar_one()
    if official:
        raise ConflictError(f"street {code} has {official} communities of its own: divide their grids one at a time "
                            "(gridpatrol divide --community CODE)")
    started = time.perf_counter()
    area, buildings, streets = load_inputs(conn, row.id)
    whole = Band(1, 10**9)
    division = divide_area(area, buildings, streets, grid_band=grid_band, community_band=community_band,
                           street_band=whole)
    parent = Parent(row.id, row.name, code, None)
    summary = _summarise(parent, division, time.perf_counter() - started)
    summary.streets = 0
    if dry_run:
        return summary
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        _retire_generated(cur, row.id, "the street was divided again")
        cur.execute("INSERT INTO divisions (unit_id, grid_low, grid_high, report) VALUES (%s, %s, %s, '{}') "
                    "RETURNING id", (row.id, division.band.low, division.band.high))
        (division_id,) = cur.fetchone() or (None,)
        assert division_id is not None
        comms = division.communities
        order = reading_order(comms.to_crs(metric_crs_for(comms)).geometry)
        seqs = [0] * len(comms)
        for rank, position in enumerate(order, start=1):
            seqs[position] = rank
        comm_codes = issue_codes(cur, "community", code, seqs)
        comm_ids = _insert_units(cur, comms, city_id=row.city_id, parents=[row.id] * len(comms), level="community",
                                 codes=comm_codes, division_id=division_id,
                                 names=[f"社区 {c[-6:]}" for c in comm_codes])
        # (street, community) sequence of the division → the community stored; a whole band makes one street
        by_key = {(int(st), int(sq)): (cid, c) for st, sq, cid, c in
                  zip(comms["street_seq"], comms["seq"], comm_ids, comm_codes, strict=True)}
        grid_codes = _store_grids(cur, division, by_key, city_id=row.city_id, division_id=division_id)
        summary.division_id = division_id
        summary.code = code
        summary.out_of_band = _out_of_band(division.grids, grid_codes)
    finally:
        cur.close()
    return summary
