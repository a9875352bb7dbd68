"""Store a city's existing grids, all communities at once (``gridpatrol import-grids FILE --city NAME``).

The checks are :func:`gis.planning.grid_register.check_grids`'s, against the city's coded communities; this adds
the households each grid would hold (the stored buildings, by the point on their surface) and the buildings no
grid would hold. A dry run reports and stores nothing. Grids that still cross a community border, leave gaps or
overlap (after ``repair``, when asked) are not stored: a community's grids must tile it (DOMAIN.md 全域覆盖).

Storing replaces the grids of every community the file covers, set-based, in the caller's transaction: a grid
whose code is stored keeps it (a new version when its outline changed); a stored grid the file leaves out is
retired (its code is never issued again); a grid without a code gets the next code of its community, numbered in
reading order (west→east, north→south). Buildings are re-assigned and open events re-placed, as after an edit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from psycopg2.extras import execute_values
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.dispatch.store.events import reassign_after_edit
from gis.errors import InputError, NotFoundError
from gis.files import field_named, refuse
from gis.geo.crs import WGS84, metric_crs_for
from gis.planning.division import GRID_BAND, Band, divide_area, reading_order, to_multipolygon
from gis.planning.grid_register import GridCheck, check_grids, grid_code
from gis.planning.official import read_features
from gis.planning.queries import GRID_TOTALS
from gis.planning.store.city import find_city
from gis.planning.store.divisions import issue_codes
from gis.planning.store.load import copy_rows, ewkb_hex


@dataclass
class GridImport:
    city: str
    file: str
    dry_run: bool
    grids: int = 0
    communities: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    coded: int = 0
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    crossing: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    nowhere: list[int] = field(default_factory=list)
    out_of_band: list[dict[str, Any]] = field(default_factory=list)
    band: str = str(GRID_BAND)
    buildings_in_no_grid: int = 0
    buildings_in_no_grid_ids: list[int] = field(default_factory=list)
    events_replaced: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        head = (f"{self.file} for {self.city}: {self.grids} grids in {self.communities} communities "
                f"({self.coded} with their own code)")
        if self.dry_run:
            head += "; dry run: nothing stored"
        else:
            head += (f"; stored {self.new} new, {self.updated} changed, {self.unchanged} unchanged, "
                     f"{self.retired} retired; {self.events_replaced} open event(s) re-placed")
        out = [head + f" ({self.seconds:.1f} s)"]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  repaired invalid geometry: {r}" for r in self.repaired]
        out += [f"  repair: {r}" for r in self.repairs]
        for c in self.crossing:
            sides = ", ".join(f"{code} {area:,.0f} m²" for code, area in c["communities"].items())
            out.append(f"  grid {c['grid']} crosses a community border: {sides}")
        out += [f"  gap of {g['area_m2']:,.0f} m² in community {g['community']} that no grid covers"
                for g in self.gaps]
        out += [f"  grids {' and '.join(o['grids'])} overlap by {o['area_m2']:,.0f} m²" for o in self.overlaps]
        out += [f"  row {r} lies in no community of the city" for r in self.nowhere]
        out += [f"  grid {g['grid']} holds {g['households']:,} households, outside {self.band}"
                for g in self.out_of_band[:50]]
        if len(self.out_of_band) > 50:
            out.append(f"  … and {len(self.out_of_band) - 50} more grids outside {self.band}")
        if self.buildings_in_no_grid:
            out.append(f"  {self.buildings_in_no_grid} building(s) of these communities lie in no grid "
                       f"(ids {', '.join(map(str, self.buildings_in_no_grid_ids[:10]))}…)")
        if not (self.crossing or self.gaps or self.overlaps or self.nowhere):
            out.append("  the grids tile their communities")
        elif self.dry_run:
            out.append("  to store them, fix these in the file, or import with --repair (clips grids to their "
                       "community, gives gaps to the neighbour with the longest shared border)")
        return out


def read_grid_file(path: str | Path, *, crs: str | None = None) -> tuple[gpd.GeoDataFrame, list[str]]:
    """``row``, ``code`` (or ``None``), ``name`` (or ``None``), ``geometry`` in WGS-84, and how it was read."""
    frame, notes = read_features(path, crs=crs)
    columns = list(frame.columns)
    code_field = field_named(columns, ("code", "grid_code", "wgdm", "网格编码", "网格代码", "编码", "代码"))
    name_field = field_named(columns, ("name", "grid_name", "wgmc", "网格名称", "名称"))
    problems: list[str] = []
    codes: list[str | None] = []
    seen: dict[str, int] = {}
    for row, raw in enumerate(frame[code_field] if code_field else [None] * len(frame), start=1):
        try:
            code = grid_code(raw, row=row)
        except InputError as exc:
            problems.append(str(exc))
            code = None
        if code is not None and code in seen:
            problems.append(f"row {row}: code {code} repeats row {seen[code]}")
        elif code is not None:
            seen[code] = row
        codes.append(code)
    refuse(problems, Path(path).name)
    names = [str(n).strip() if isinstance(n, str) and n.strip() else None
             for n in (frame[name_field] if name_field else [None] * len(frame))]
    # object dtype: pandas 3 would infer its string dtype and turn a missing code into a float NaN
    out = gpd.GeoDataFrame({"row": range(1, len(frame) + 1), "code": pd.Series(codes, dtype=object),
                            "name": pd.Series(names, dtype=object)}, geometry=list(frame.geometry), crs=WGS84)
    return out, notes


STEPS = ("read the file", "assign and check", "count households", "store")


def import_city_grids(conn: Connection, path: str | Path, *, city: str, author: str, reason: str,
                      crs: str | None = None, band: Band = GRID_BAND, repair: bool = False,
                      dry_run: bool = False, progress: Callable[[str], None] | None = None) -> GridImport:
    """Check and (unless ``dry_run``) store a city's grids file; see the module docstring. ``progress`` is told
    each of :data:`STEPS` as it starts."""
    step = progress or (lambda _name: None)
    started = time.perf_counter()
    if not author.strip() or not reason.strip():
        raise InputError("every change needs an author and a reason")
    row = find_city(conn, city)
    step(STEPS[0])
    grids, notes = read_grid_file(path, crs=crs)
    metric = metric_crs_for(grids)
    stored = gpd.read_postgis(text(
        "SELECT id, code, geom FROM admin_units WHERE city_id = :c AND level = 'community' AND code IS NOT NULL"),
        conn, geom_col="geom", params={"c": row.id}, crs=WGS84)
    if stored.empty:
        raise InputError(f"{row.name} has no coded communities yet: import its official units first "
                         "(gridpatrol import-units)")
    community_ids = dict(zip(stored["code"], stored["id"].astype(int), strict=True))
    communities = dict(zip(stored["code"], stored.to_crs(metric).geometry, strict=True))
    step(STEPS[1])
    check = check_grids(grids.to_crs(metric), communities, repair=repair)
    report = GridImport(city=row.name_en or row.name, file=Path(path).name, dry_run=dry_run, grids=len(grids),
                        communities=len({c for c in check.grids["community"] if c}),
                        coded=int(grids["code"].notna().sum()), notes=notes, repaired=check.repaired,
                        repairs=check.repairs, crossing=check.crossing, nowhere=check.nowhere, band=str(band))
    step(STEPS[2])
    _figures(conn, report, check, row.id, community_ids, metric, band)
    for key in ("gaps", "overlaps"):
        found = getattr(check, key)
        shapes = gpd.GeoSeries([f["geometry"] for f in found], crs=metric).to_crs(WGS84)
        setattr(report, key, [{**f, "geometry": json.loads(shapely.to_geojson(g))}
                              for f, g in zip(found, shapes, strict=True)])
    if dry_run:
        report.seconds = time.perf_counter() - started
        return report
    if not check.tiled:
        raise InputError(f"{Path(path).name}: nothing stored; {len(check.crossing)} grid(s) cross a community "
                         f"border, {len(check.gaps)} gap(s), {len(check.overlaps)} overlap(s), "
                         f"{len(check.nowhere)} grid(s) in no community: see --dry-run, fix the file or import "
                         "with --repair")
    step(STEPS[3])
    _store(conn, report, check, community_ids, author=author, reason=reason)
    report.seconds = time.perf_counter() - started
    return report


def _figures(conn: Connection, report: GridImport, check: GridCheck, city_id: int, community_ids: dict[str, int],
             metric: Any, band: Band) -> None:
    """Households per grid and buildings in no grid, from the stored buildings of the communities covered."""
    covered = [community_ids[c] for c in {c for c in check.grids["community"] if c}]
    buildings = gpd.read_postgis(text("""
        SELECT b.id, b.households, ST_PointOnSurface(b.geom) AS geom FROM buildings b
        JOIN admin_units c ON c.id = ANY(:ids) AND ST_Intersects(c.geom, ST_PointOnSurface(b.geom))
        WHERE b.city_id = :city"""), conn, geom_col="geom", params={"ids": covered, "city": city_id}, crs=WGS84)
    points = buildings.to_crs(metric).geometry.to_numpy()
    geoms = check.grids.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    building_i, grid_i = tree.query(points, predicate="within") if len(points) else (np.array([]), np.array([]))
    first = dict(zip(building_i.tolist()[::-1], grid_i.tolist()[::-1], strict=True))
    households = np.zeros(len(geoms))
    for b, g in first.items():
        households[g] += buildings["households"].iloc[b]
    labels = [c or f"row {r}" for c, r in zip(check.grids["code"], check.grids["row"], strict=True)]
    report.out_of_band = [{"grid": label, "households": int(h)} for label, h in zip(labels, households, strict=True)
                          if not band.holds(h)]
    lost = [int(buildings["id"].iloc[b]) for b in range(len(points)) if b not in first]
    report.buildings_in_no_grid, report.buildings_in_no_grid_ids = len(lost), lost[:100]


def _store(conn: Connection, report: GridImport, check: GridCheck, community_ids: dict[str, int], *,
           author: str, reason: str) -> None:
    grids = check.grids.to_crs(WGS84)
    grids["geometry"] = [to_multipolygon(g if g.is_valid else shapely.make_valid(g)) for g in grids.geometry]
    touched = sorted({community_ids[c] for c in grids["community"]})
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        cur.execute("CREATE TEMP TABLE stage_grids (code text, name text, community_id int, community text, "
                    "seq int, geom geometry) ON COMMIT DROP")
        seq = np.zeros(len(grids), dtype=int)  # reading order (west→east, north→south) inside each community
        metric = check.grids.geometry
        for community in set(grids["community"]):
            mine = np.flatnonzero((grids["community"] == community).to_numpy())
            for rank, position in enumerate(reading_order(metric.iloc[mine])):
                seq[mine[position]] = rank
        copy_rows(cur, "stage_grids", ("code", "name", "community_id", "community", "seq", "geom"),
                  zip(grids["code"], grids["name"], [community_ids[c] for c in grids["community"]],
                      grids["community"], seq.tolist(), ewkb_hex(grids.geometry), strict=True))
        # the file's own codes first, so that the codes issued next come after them
        cur.execute("""
            INSERT INTO unit_codes (code, level, parent_code, seq)
            SELECT code, 'grid', left(code, 12), greatest(right(code, 3)::int, 1) FROM stage_grids
            WHERE code IS NOT NULL ON CONFLICT (code) DO NOTHING""")
        # codes for the grids that have none, in reading order inside each community
        cur.execute("SELECT ctid, community FROM stage_grids WHERE code IS NULL ORDER BY community, seq")
        pending = cur.fetchall()
        by_community: dict[str, list[Any]] = {}
        for ctid, community in pending:
            by_community.setdefault(community, []).append(ctid)
        issued = [(str(ctid), code) for community, ctids in by_community.items()
                  for ctid, code in zip(ctids, issue_codes(cur, "grid", community, range(1, len(ctids) + 1)),
                                        strict=True)]
        execute_values(cur, "UPDATE stage_grids s SET code = v.code FROM (VALUES %s) AS v (ctid, code) "
                            "WHERE s.ctid = v.ctid::tid", issued)
        # retired: the covered communities' grids the file leaves out
        cur.execute("""
            CREATE TEMP TABLE gone ON COMMIT DROP AS
            SELECT g.id, g.code FROM grids g WHERE g.community_id = ANY(%(t)s)
              AND NOT EXISTS (SELECT 1 FROM stage_grids s WHERE s.code = g.code)""", {"t": touched})
        cur.execute("UPDATE grid_versions SET valid_to = now() WHERE valid_to IS NULL "
                    "AND grid_id IN (SELECT id FROM gone)")
        cur.execute("UPDATE unit_codes SET retired_at = now(), retired_why = %s WHERE retired_at IS NULL "
                    "AND code IN (SELECT code FROM gone)", (f"import: {reason}",))
        cur.execute("DELETE FROM grids WHERE id IN (SELECT id FROM gone)")
        report.retired = cur.rowcount
        # changed: same code, another outline (by over 1 m², the tiling tolerance: a file's rounding is no
        # change), name or community
        cur.execute("""
            UPDATE grids g SET geom = s.geom, name = coalesce(s.name, g.name), community_id = s.community_id,
                   version = g.version + 1, updated_at = now()
            FROM stage_grids s WHERE s.code = g.code
              AND (NOT ST_OrderingEquals(g.geom, s.geom) AND ST_Area(ST_SymDifference(g.geom, s.geom)::geography) > 1
                   OR g.community_id <> s.community_id
                   OR s.name IS DISTINCT FROM g.name AND s.name IS NOT NULL)
            RETURNING g.id""")
        changed = [r[0] for r in cur.fetchall()]
        report.updated = len(changed)
        cur.execute("UPDATE grid_versions SET valid_to = now() WHERE valid_to IS NULL AND grid_id = ANY(%s)",
                    (changed,))
        cur.execute("""
            INSERT INTO grids (code, name, community_id, geom, source)
            SELECT s.code, coalesce(s.name, '网格 ' || right(s.code, 9)), s.community_id, s.geom, 'imported'
            FROM stage_grids s WHERE NOT EXISTS (SELECT 1 FROM grids g WHERE g.code = s.code)
            RETURNING id""")
        created = [r[0] for r in cur.fetchall()]
        report.new = len(created)
        report.unchanged = len(grids) - report.new - report.updated
        cur.execute("""
            INSERT INTO grid_versions (grid_id, code, version, community_id, geom, change, author, reason)
            SELECT id, code, version, community_id, geom, 'import', %s, %s FROM grids WHERE id = ANY(%s)""",
                    (author, reason, changed + created))
        cur.execute("""
            UPDATE buildings b SET grid_id = n.id
            FROM admin_units c, buildings x CROSS JOIN LATERAL (
                SELECT g.id FROM grids g WHERE g.community_id = ANY(%(t)s)
                AND ST_Intersects(g.geom, ST_PointOnSurface(x.geom)) ORDER BY g.code LIMIT 1) n
            WHERE c.id = ANY(%(t)s) AND x.city_id = c.city_id AND ST_Intersects(c.geom, ST_PointOnSurface(x.geom))
              AND b.id = x.id AND b.grid_id IS DISTINCT FROM n.id""", {"t": touched})
        cur.execute("""
            UPDATE buildings b SET grid_id = NULL WHERE b.grid_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM grids g WHERE g.id = b.grid_id)""")
        for community_id in touched:
            report.events_replaced += len(reassign_after_edit(cur, community_id, author=author, reason=reason))
    finally:
        cur.close()


WHOLE = Band(1, 10**9)
"""A band every total fits: dividing one community makes only grids, its community and street stay as they are."""


def divide_community(conn: Connection, code: str, *, author: str, reason: str, grid_band: Band = GRID_BAND,
                     dry_run: bool = True) -> dict[str, Any]:
    """Propose grids for one community (the automatic division, inside its official boundary) and, unless
    ``dry_run``, replace its grids by them, as importing them would (new codes, versions, buildings, events).

    The answer holds the proposal and the current grids side by side (GeoJSON), and the summary."""
    from gis.planning.store.divisions import load_inputs

    started = time.perf_counter()
    row = conn.execute(text("SELECT id, name, city_id FROM admin_units WHERE code = :c AND level = 'community'"),
                       {"c": code}).first()
    if row is None:
        raise NotFoundError(f"no community {code}")
    area, buildings, streets = load_inputs(conn, row.id)
    division = divide_area(area, buildings, streets, grid_band=grid_band, community_band=WHOLE, street_band=WHOLE)
    proposal = division.grids
    # back in WGS-84 a ring may touch itself at a vertex: valid outlines, which a planner can take one by one
    proposal["geometry"] = [g if g.is_valid else to_multipolygon(shapely.make_valid(g)) for g in proposal.geometry]
    order = reading_order(proposal.to_crs(metric_crs_for(proposal)).geometry)
    proposal = proposal.iloc[order].reset_index(drop=True)
    proposal["n"] = range(1, len(proposal) + 1)
    current = gpd.read_postgis(text(f"""
        SELECT g.code, g.name, {GRID_TOTALS}, g.geom FROM grids g WHERE g.community_id = :c ORDER BY g.code"""),
        conn, geom_col="geom", params={"c": row.id}, crs=WGS84)
    summary = {"community": code, "name": row.name, "grids": len(proposal),
               "grids_in_band": int(proposal["in_band"].sum()),
               "households": round(float(proposal["households"].sum())), "band": str(grid_band),
               "current_grids": len(current), "stored": not dry_run}
    answer: dict[str, Any] = {
        "summary": summary,
        "proposal": json.loads(proposal[["n", "households", "buildings", "in_band", "note", "geometry"]]
                               .to_json(drop_id=True)),
        "current": json.loads(current.to_json(drop_id=True)),
    }
    if not dry_run:
        metric = metric_crs_for(proposal)
        check = GridCheck(grids=gpd.GeoDataFrame(
            {"row": proposal["n"], "code": pd.Series([None] * len(proposal), dtype=object),
             "name": pd.Series([None] * len(proposal), dtype=object), "community": code},
            geometry=list(proposal.to_crs(metric).geometry), crs=metric))
        report = GridImport(city=str(row.city_id), file=f"division of {code}", dry_run=False, grids=len(proposal))
        _store(conn, report, check, {code: int(row.id)}, author=author, reason=reason)
        summary.update(retired=report.retired, new=report.new, events_replaced=report.events_replaced)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return answer
