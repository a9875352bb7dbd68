"""Apply a planner's grid change: validate, preview its impact, and save it as new versions.

Every change is made under a lock on the community's grids and against the versions the planner edited: a save
against a stale version is a :class:`~gis.errors.ConflictError` (HTTP 409), never a silent overwrite. A change
that would leave a gap, an overlap or a grid outside its community is refused with the reason (and the gap
polygons). A dry run returns the impact (buildings, households and staff that change grid) and stores nothing.
Split, merge and delete retire the old codes and issue new ones; reshaping keeps the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy.engine import Connection

from gis.dispatch.rules import OPEN_STATES
from gis.dispatch.store.events import reassign_after_edit
from gis.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from gis.geo.crs import WGS84, utm_crs_for
from gis.planning import editing
from gis.planning.division import GRID_BAND, to_multipolygon, to_wgs84
from gis.planning.queries import GRID_TOTALS
from gis.planning.store.divisions import issue_codes
from gis.planning.store.load import ewkb_hex

MAX_LISTED_MOVES = 500


class TilingError(InputError):
    """The change would leave the community with a gap, an overlap or a grid outside it."""

    def __init__(self, problems: list[str], gaps: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.gaps = gaps


@dataclass
class ChangeResult:
    change: str
    dry_run: bool
    grids: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    buildings_moved: int = 0
    households_moved: int = 0
    moves: list[dict[str, Any]] = field(default_factory=list)
    staff: list[dict[str, Any]] = field(default_factory=list)
    events_reassigned: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("change", "dry_run", "grids", "created", "retired",
                                              "buildings_moved", "households_moved", "moves", "staff",
                                              "events_reassigned", "events", "warnings")}


def edit_grids(
    conn: Connection,
    change: str,
    *,
    codes: Sequence[str],
    versions: Sequence[int],
    author: str,
    reason: str,
    geometry: Any | None = None,
    line: Any | None = None,
    dry_run: bool = False,
    label: str | None = None,
    community: str | None = None,
    may_change: Callable[[str], bool] | None = None,
) -> ChangeResult:
    """Apply ``change`` (``reshape``, ``split``, ``merge``, ``delete``, ``import`` or ``create``) to the grids
    ``codes`` at ``versions``.

    ``create`` names the ``community`` instead; its ``codes``/``versions`` (optional) are the grids the planner saw
    under the new outline, checked like any other for staleness. ``label`` names the change in the history when it
    differs from the operation (``revert`` is a reshape).
    """
    if len(codes) != len(versions):
        raise InputError("give one version for each grid")
    if not author.strip() or not reason.strip():
        raise InputError("every change needs an author and a reason")
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    cur.execute("SELECT DISTINCT community_id FROM grids WHERE code = ANY(%s)", (list(codes),))
    communities = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT count(*) FROM grids WHERE code = ANY(%s)", (list(codes),))
    if _one(cur)[0] != len(set(codes)):
        raise NotFoundError(f"no grid with code(s) {', '.join(codes)}")
    if community is not None:
        cur.execute("SELECT id FROM admin_units WHERE code = %s AND level = 'community'", (community,))
        row = cur.fetchone()
        if row is None:
            raise NotFoundError(f"no community with code {community}")
        if communities and communities != [row[0]]:
            raise InputError(f"the grids named are not all in community {community}")
        communities = [row[0]]
    if len(communities) != 1:
        raise InputError("the grids of one change must lie in the same community")
    community_id = communities[0]
    cur.execute("SELECT id, code, version, ST_AsBinary(geom) FROM grids WHERE community_id = %s "
                "ORDER BY code FOR UPDATE", (community_id,))
    rows = cur.fetchall()
    current = {code: (gid, ver) for gid, code, ver, _ in rows}
    for code, version in zip(codes, versions, strict=True):
        if current[code][1] != version:
            raise ConflictError(f"grid {code} is at version {current[code][1]}, your change was made on version "
                                f"{version}: reload the grid and make your change again")
    cur.execute("SELECT code, ST_AsBinary(geom) FROM admin_units WHERE id = %s", (community_id,))
    community_code, community_wkb = _one(cur)
    community_wgs = shapely.from_wkb(bytes(community_wkb))
    centre = community_wgs.centroid
    metric = utm_crs_for(centre.x, centre.y)

    def to_m(geoms: list[Any]) -> list[Any]:
        return list(gpd.GeoSeries(geoms, crs=WGS84).to_crs(metric))

    grid_codes = [code for _, code, _, _ in rows]
    grid_m = dict(zip(grid_codes, to_m([shapely.from_wkb(bytes(w)) for *_, w in rows]), strict=True))
    community = to_m([community_wgs])[0]

    new, created_pieces, retired = _apply(change, grid_m, codes, community, geometry, line, to_m)
    everything = {**new, **{f"new {i + 1}": g for i, g in enumerate(created_pieces)}}
    # Changed means more than the tiling tolerance: noise along shared edges leaves a grid's stored shape.
    changed = [c for c in new if new[c] is not grid_m[c]
               and new[c].symmetric_difference(grid_m[c]).area > editing.TOLERANCE_M2]
    touched = [*changed, *(f"new {i + 1}" for i in range(len(created_pieces)))]
    if may_change is not None:  # the editor's jurisdiction: every grid the change moves, and new grids' community
        beyond = [c for c in (*changed, *retired) if not may_change(c)]
        beyond += [community_code] if created_pieces and not may_change(community_code) else []
        if beyond:
            raise ForbiddenError(f"this change would alter {', '.join(beyond)}, outside your jurisdiction: "
                                 "ask a planner of the community")
    scope = shapely.union_all([grid_m[c] for c in (*changed, *retired)] + [everything[c] for c in touched])
    check = editing.check_tiling(everything, community, changed=touched, scope=scope)
    if not check.ok:
        gaps = json.loads(gpd.GeoSeries(check.gaps, crs=metric).to_crs(WGS84).to_json())["features"]
        raise TilingError(check.problems(), [f["geometry"] for f in gaps])

    result = ChangeResult(change=label or change, dry_run=dry_run, retired=list(retired))
    _impact(cur, result, community_id, everything, metric, retired, scope, set(touched))
    if dry_run:  # nothing is written before this point
        return result

    wgs = dict(zip(list(everything), to_wgs84(gpd.GeoSeries(list(everything.values()), crs=metric)),
                   strict=True))
    for code in changed:
        gid, version = current[code]
        _new_version(cur, gid, code, version + 1, community_id, wgs[code], result.change, author, reason,
                     update=True)
    for code in retired:
        cur.execute("UPDATE grid_versions SET valid_to = now() WHERE grid_id = %s AND valid_to IS NULL",
                    (current[code][0],))
        cur.execute("UPDATE unit_codes SET retired_at = now(), retired_why = %s WHERE code = %s",
                    (f"{change}: {reason}", code))
        cur.execute("DELETE FROM grids WHERE id = %s", (current[code][0],))
    if created_pieces:
        new_codes = issue_codes(cur, "grid", community_code, range(1, len(created_pieces) + 1))
        for i, code in enumerate(new_codes):
            (geom,) = ewkb_hex([to_multipolygon(wgs[f"new {i + 1}"])])
            cur.execute("INSERT INTO grids (code, name, community_id, geom, source) "
                        "VALUES (%s, %s, %s, %s::geometry, 'drawn') RETURNING id",
                        (code, f"网格 {code[-9:]}", community_id, geom))
            gid = int(_one(cur)[0])
            _new_version(cur, gid, code, 1, community_id, wgs[f"new {i + 1}"], result.change, author, reason,
                         update=False)
        result.created = new_codes
        _name_new_grids(result, new_codes)
    cur.execute("""
        UPDATE buildings b SET grid_id = (
            SELECT g.id FROM grids g WHERE g.community_id = %(c)s
            AND ST_Intersects(g.geom, ST_PointOnSurface(b.geom)) ORDER BY g.code LIMIT 1)
        WHERE b.grid_id IN (SELECT id FROM grids WHERE community_id = %(c)s) OR b.grid_id IS NULL
          AND ST_Intersects((SELECT geom FROM admin_units WHERE id = %(c)s), ST_PointOnSurface(b.geom))
    """, {"c": community_id})
    cur.execute("UPDATE grids SET note = NULL WHERE community_id = %s AND source = 'drawn'", (community_id,))
    result.events = reassign_after_edit(cur, community_id, author=author, reason=reason)
    result.events_reassigned = len(result.events)
    cur.execute(f"SELECT g.code, g.version, {GRID_TOTALS} FROM grids g WHERE g.code = ANY(%s) ORDER BY g.code",
                ([*changed, *result.created],))
    result.grids = [{"code": c, "version": v, "households": h, "buildings": n, "in_band": GRID_BAND.holds(h)}
                    for c, v, h, n in cur.fetchall()]
    cur.close()
    return result


def _name_new_grids(result: ChangeResult, codes: list[str]) -> None:
    """Once stored, the new grids are called by their codes, not "new 1", "new 2", … (the preview's labels)."""
    names = {f"new {i + 1}": code for i, code in enumerate(codes)}

    def rename(text: str | None) -> str | None:
        for label in sorted(names, key=len, reverse=True):
            text = text.replace(f"grid {label} ", f"grid {names[label]} ") if text else text
        return names.get(text or "", text)

    result.warnings = [rename(w) or w for w in result.warnings]
    for item in (*result.moves, *result.events):
        for key in ("from", "to"):
            item[key] = rename(item[key])


def _one(cur: Any) -> Any:
    row = cur.fetchone()
    assert row is not None
    return row


def _apply(change: str, grid_m: dict[str, Any], codes: Sequence[str], community: Any, geometry: Any,
           line: Any, to_m: Any) -> tuple[dict[str, Any], list[Any], list[str]]:
    """New geometries of the surviving grids, the pieces to create, and the codes retired."""
    if change == "reshape":
        (code,) = codes
        outline = to_m([editing.parse_polygon(geometry)])[0]
        return editing.reshape(grid_m, code, outline, community), [], []
    if change == "split":
        (code,) = codes
        drawn = to_m([editing.parse_line(line)])[0]
        pieces = editing.split(grid_m[code], drawn)
        return {c: g for c, g in grid_m.items() if c != code}, pieces, [code]
    if change == "merge":
        if len(codes) != 2 or codes[0] == codes[1]:
            raise InputError("merge takes two different grids")
        merged = editing.merge(grid_m[codes[0]], grid_m[codes[1]])
        return {c: g for c, g in grid_m.items() if c not in codes}, [merged], list(codes)
    if change == "delete":
        (code,) = codes
        return editing.remove(grid_m, code), [], [code]
    if change == "create":
        outline = to_m([editing.parse_polygon(geometry)])[0]
        rest, piece = editing.create(grid_m, outline, community)
        return rest, [piece], []
    if change == "import":
        # geometry: (code or None, GeoJSON polygon) pairs replacing every grid of the community
        incoming = list(geometry or [])
        unknown = [c for c, _ in incoming if c and c not in grid_m]
        if unknown:
            raise InputError(f"code(s) {', '.join(unknown)} are not grids of this community; leave the code empty "
                             "for a new grid")
        shapes = to_m([editing.parse_polygon(g) for _, g in incoming])
        kept = {c: s for (c, _), s in zip(incoming, shapes, strict=True) if c}
        new = {c: kept.get(c, g) for c, g in grid_m.items() if c in kept}
        created = [s for (c, _), s in zip(incoming, shapes, strict=True) if not c]
        return new, created, [c for c in grid_m if c not in kept]
    raise InputError(f"unknown change {change!r}")


def _impact(cur: Any, result: ChangeResult, community_id: int, everything: dict[str, Any], metric: Any,
            retired: list[str], scope: Any, touched: set[str]) -> None:
    """Buildings and households that change grid (only those in the touched ``scope`` can), band warnings for
    the grids they land in, and staff whose grid is retired."""
    # The community's buildings through the grid index; any not yet in a grid through the geometry index.
    cur.execute("""
        WITH p AS (SELECT b.id, b.households, g.code, ST_PointOnSurface(b.geom) AS pt
                   FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.community_id = %(c)s
                   UNION ALL
                   SELECT b.id, b.households, NULL, ST_PointOnSurface(b.geom)
                   FROM buildings b JOIN admin_units c ON c.id = %(c)s
                   WHERE b.grid_id IS NULL AND b.geom && c.geom AND ST_Intersects(c.geom, ST_PointOnSurface(b.geom)))
        SELECT id, households, code, ST_X(pt), ST_Y(pt) FROM p ORDER BY id""", {"c": community_id})
    rows = cur.fetchall()
    shapely.prepare(scope)
    tree = (list(everything), shapely.STRtree(list(everything.values())))
    if rows:
        frame = pd.DataFrame(rows, columns=["id", "households", "before", "x", "y"])
        frame["after"] = _grids_after(frame["x"], frame["y"], frame["before"].astype(object).tolist(), tree, metric,
                                     scope)
        moved = frame[frame["before"] != frame["after"]]
        result.buildings_moved = len(moved)
        result.households_moved = int(moved["households"].sum())
        result.moves = [{"building_id": int(r.id), "from": r.before, "to": r.after, "households": int(r.households)}
                        for r in moved.head(MAX_LISTED_MOVES).itertuples()]
        totals = frame.groupby("after")["households"].sum()
        for label, households in totals.items():
            if label in touched and not GRID_BAND.holds(households):
                result.warnings.append(f"grid {label} would hold {int(households):,} households, outside the band "
                                       f"{GRID_BAND}")
    _event_impact(cur, result, community_id, tree, metric, scope)
    if retired:
        cur.execute("""
            SELECT s.id, s.name, s.role, g.code, sg.duty FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id
            JOIN grids g ON g.id = sg.grid_id WHERE g.code = ANY(%s) ORDER BY s.id""", (retired,))
        result.staff = [{"staff_id": i, "name": n, "role": r, "grid": c, "duty": d,
                         "what": "their grid is retired: assign them to a new grid"}
                        for i, n, r, c, d in cur.fetchall()]


def _grids_after(lons: Any, lats: Any, before: list[str | None], tree: tuple[list[str], Any], metric: Any,
                 scope: Any) -> list[str | None]:
    """The grid each point (WGS-84) lies in after the change: only points in the touched ``scope`` can move; on
    a shared edge the lowest code wins (the documented tie-break). ``tree`` is (labels, STRtree of the new grids)."""
    labels, index = tree
    points = gpd.GeoSeries(gpd.points_from_xy(lons, lats), crs=WGS84).to_crs(metric).values
    inside = np.flatnonzero(shapely.intersects(scope, points))
    after = list(before)
    found: dict[int, str] = {}
    hit_point, hit_grid = index.query(points[inside], predicate="intersects")
    for p, g in zip(hit_point.tolist(), hit_grid.tolist(), strict=True):
        found[p] = min(found.get(p, labels[g]), labels[g])
    for p, i in enumerate(inside.tolist()):
        after[i] = found.get(p)
    return after


def _event_impact(cur: Any, result: ChangeResult, community_id: int, tree: tuple[list[str], Any], metric: Any,
                  scope: Any) -> None:
    """Open events whose point the change moves to another grid (labels of new grids are "new 1", …)."""
    cur.execute("SELECT id, grid_code, ST_X(geom), ST_Y(geom) FROM events WHERE community_id = %s "
                "AND state = ANY(%s) ORDER BY id", (community_id, list(OPEN_STATES)))
    rows = cur.fetchall()
    if not rows:
        return
    before = [r[1] for r in rows]
    after = _grids_after([r[2] for r in rows], [r[3] for r in rows], before, tree, metric, scope)
    result.events = [{"event_id": r[0], "from": b, "to": a} for r, b, a in zip(rows, before, after, strict=True)
                     if a != b]
    result.events_reassigned = len(result.events)


def _new_version(cur: Any, grid_id: int, code: str, version: int, community_id: int, geom_wgs: Any, change: str,
                 author: str, reason: str, *, update: bool) -> None:
    (geom,) = ewkb_hex([to_multipolygon(geom_wgs)])
    if update:
        cur.execute("UPDATE grids SET geom = %s::geometry, version = %s, updated_at = now() WHERE id = %s",
                    (geom, version, grid_id))
        cur.execute("UPDATE grid_versions SET valid_to = now() WHERE grid_id = %s AND valid_to IS NULL", (grid_id,))
    cur.execute("INSERT INTO grid_versions (grid_id, code, version, community_id, geom, change, author, reason) "
                "VALUES (%s, %s, %s, %s, %s::geometry, %s, %s, %s)",
                (grid_id, code, version, community_id, geom, change, author, reason))


def revert(conn: Connection, code: str, *, to_version: int, version: int, author: str, reason: str,
           dry_run: bool = False, may_change: Callable[[str], bool] | None = None) -> ChangeResult:
    """Give a grid back the outline it had at ``to_version``; its neighbours follow, as in a reshape. The revert
    is itself a new version: history is never rewritten."""
    outline = conn.exec_driver_sql(
        "SELECT ST_AsGeoJSON(geom) FROM grid_versions WHERE code = %(c)s AND version = %(v)s",
        {"c": code, "v": to_version}).scalar()
    if outline is None:
        raise NotFoundError(f"grid {code} has no version {to_version}")
    return edit_grids(conn, "reshape", codes=[code], versions=[version], geometry=json.loads(outline),
                      author=author, reason=reason, dry_run=dry_run, label="revert", may_change=may_change)


VERSIONED = {"grid": "grid_versions", "unit": "unit_versions"}
"""What keeps versions, and where: grids and (coded) administrative units have the same history, diff and lookup."""


def diff(conn: Connection, code: str, from_version: int, to_version: int, *, kind: str = "grid") -> dict[str, Any]:
    """What a grid (or unit) gained and lost between two versions: areas (m²), outlines, and the buildings in them."""
    table = VERSIONED[kind]
    row = conn.exec_driver_sql(f"""
        WITH a AS (SELECT geom FROM {table} WHERE code = %(c)s AND version = %(f)s),
             b AS (SELECT geom FROM {table} WHERE code = %(c)s AND version = %(t)s),
             d AS (SELECT ST_Difference(b.geom, a.geom) AS gained, ST_Difference(a.geom, b.geom) AS lost
                   FROM a, b)
        SELECT ST_Area(gained::geography), ST_Area(lost::geography), ST_AsGeoJSON(gained, 7),
               ST_AsGeoJSON(lost, 7),
               (SELECT count(*) FROM buildings x WHERE x.geom && d.gained
                  AND ST_Intersects(d.gained, ST_PointOnSurface(x.geom))),
               (SELECT count(*) FROM buildings x WHERE x.geom && d.lost
                  AND ST_Intersects(d.lost, ST_PointOnSurface(x.geom)))
        FROM d""", {"c": code, "f": from_version, "t": to_version}).first()
    if row is None:
        raise NotFoundError(f"{kind} {code} does not have both versions {from_version} and {to_version}")
    return {"code": code, "from_version": from_version, "to_version": to_version,
            "gained_m2": round(row[0], 1), "lost_m2": round(row[1], 1),
            "gained": json.loads(row[2]), "lost": json.loads(row[3]),
            "buildings_gained": row[4], "buildings_lost": row[5]}


def history(conn: Connection, code: str, *, kind: str = "grid") -> list[dict[str, Any]]:
    rows = conn.exec_driver_sql(
        "SELECT version, change, author, reason, valid_from, valid_to, ST_AsGeoJSON(geom, 7) "
        f"FROM {VERSIONED[kind]} WHERE code = %(c)s ORDER BY version", {"c": code}).all()
    if not rows:
        raise NotFoundError(f"no {kind} has ever had the code {code}")
    return [{"version": v, "change": ch, "author": a, "reason": r, "valid_from": f.isoformat(),
             "valid_to": t.isoformat() if t else None, "geometry": json.loads(g)} for v, ch, a, r, f, t, g in rows]


def grid_at(conn: Connection, lon: float, lat: float, when: Any, *, level: str | None = None) -> dict[str, Any] | None:
    """The grid (or, given a ``level``, the unit of that level) that covered a point at a moment, with its
    version, from the version history."""
    table, where = (VERSIONED["grid"], "") if level is None else (VERSIONED["unit"], "AND level = %(l)s")
    row = conn.exec_driver_sql(f"""
        SELECT code, version, valid_from, valid_to FROM {table}
        WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 4326)) {where}
          AND valid_from <= %(t)s AND (valid_to IS NULL OR valid_to > %(t)s)
        ORDER BY code LIMIT 1""", {"x": lon, "y": lat, "t": when, "l": level}).first()
    if row is None:
        return None
    return {"code": row[0], "version": row[1], "valid_from": row[2].isoformat(),
            "valid_to": row[3].isoformat() if row[3] else None}
