"""Write an imported city into PostGIS, set-based, inside the caller's transaction.

Every table is synchronised the same way (:func:`sync_rows`): the new rows are COPYed into a temporary table,
upserted on their natural key (``city_id, osm_type, osm_id`` and the like), and the rows of that city that the
file no longer has are deleted. Re-importing the same file therefore changes nothing and keeps every id, and
planners' data on those rows (household overrides, residents, grid assignment) is never overwritten.
Nothing here commits: the importer owns the transaction.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from psycopg2.extensions import cursor as Cursor
from shapely.geometry.base import BaseGeometry

from gis.db.models import SRID


@dataclass
class SyncCount:
    total: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _text(value: Any) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return r"\N" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "{" + ",".join(str(int(v)) for v in value) + "}"
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def ewkb_hex(geometries: Iterable[BaseGeometry]) -> list[str]:
    """Hex EWKB with SRID 4326, the text form PostGIS accepts for a geometry column in COPY."""
    array = shapely.set_srid(list(geometries), SRID)
    return list(shapely.to_wkb(array, hex=True, include_srid=True))


def copy_rows(cur: Cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_text(v) for v in row))
        buffer.write("\n")
    buffer.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def sync_rows(
    cur: Cursor,
    *,
    table: str,
    key: Sequence[str],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    scope: dict[str, Any],
    spare: str = "FALSE",
) -> SyncCount:
    """Make ``table``'s rows within ``scope`` exactly ``rows`` (matched on ``key``), touching only ``columns``.

    ``scope`` columns (e.g. ``city_id``, ``network``) must be among ``columns`` and ``key``. Rows of ``table`` for
    which the SQL condition ``spare`` (on ``t``) holds are never removed (say, what the city added itself).
    """
    stage = f"stage_{table}"
    cols = ", ".join(columns)
    cur.execute(f"DROP TABLE IF EXISTS {stage}")
    cur.execute(f"CREATE TEMP TABLE {stage} AS SELECT {cols} FROM {table} WITH NO DATA")
    copy_rows(cur, stage, columns, rows)
    # Without statistics the planner takes the empty-at-creation stage for tiny and picks nested loops:
    # minutes on 20k rows instead of a hash join's milliseconds.
    cur.execute(f"ANALYZE {stage}")
    updatable = [c for c in columns if c not in key]
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in updatable)
    mine = ", ".join(f"{table}.{c}" for c in updatable)
    theirs = ", ".join(f"EXCLUDED.{c}" for c in updatable)
    cur.execute(
        f"""
        WITH up AS (
            INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}
            ON CONFLICT ({', '.join(key)}) DO UPDATE SET {assignments}
            WHERE ({mine}) IS DISTINCT FROM ({theirs})
            RETURNING (xmax = 0) AS inserted
        )
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
        """
    )
    new, changed = cur.fetchone()
    if new:
        # The same trap on the target: freshly filled, it still looks empty to the planner until autovacuum
        # gets to it, and the anti-join below then takes a minute instead of milliseconds.
        cur.execute(f"ANALYZE {table}")
    where_scope = " AND ".join(f"t.{c} = %({c})s" for c in scope)
    match = " AND ".join(f"s.{c} = t.{c}" for c in key)
    cur.execute(
        f"DELETE FROM {table} t WHERE {where_scope} AND NOT ({spare}) "
        f"AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {match})",
        scope,
    )
    removed = cur.rowcount
    cur.execute(f"SELECT count(*) FROM {stage}")
    total = cur.fetchone()[0]
    cur.execute(f"DROP TABLE {stage}")
    return SyncCount(total=total, new=new, changed=changed, removed=removed)


def sync_admin_units(cur: Cursor, units: gpd.GeoDataFrame, *, city_id: int, codes: dict[str, str]) -> SyncCount:
    """OSM districts, streets and communities of a city, clipped to its extent, each under its parent.

    A unit's parent is the unit of the nearest higher level that contains a point on its surface, else the city.
    Units made by gridpatrol itself (``source`` other than ``osm``) are left alone.
    """
    rows = [
        (city_id, row.level, codes.get(row.name) if row.level == "district" else None, row.name or "(unnamed)",
         row.osm_type, int(row.osm_id), "osm", geom)
        for row, geom in zip(units.itertuples(), ewkb_hex(units.geometry), strict=True)
    ]
    count = sync_rows(cur, table="admin_units", key=("city_id", "osm_type", "osm_id"),
                      columns=("city_id", "level", "code", "name", "osm_type", "osm_id", "source", "geom"),
                      rows=rows, scope={"city_id": city_id, "source": "osm"})
    cur.execute(
        """
        UPDATE admin_units u SET parent_id = COALESCE((
            SELECT p.id FROM admin_units p
            WHERE p.city_id = u.city_id AND p.id <> u.id
              AND array_position(ARRAY['district', 'street', 'community'], p.level)
                < array_position(ARRAY['district', 'street', 'community'], u.level)
              AND ST_Contains(p.geom, ST_PointOnSurface(u.geom))
            ORDER BY array_position(ARRAY['district', 'street', 'community'], p.level) DESC, ST_Area(p.geom)
            LIMIT 1), u.city_id)
        WHERE u.city_id = %s
        """,
        (city_id,),
    )
    return count


def sync_buildings(cur: Cursor, buildings: gpd.GeoDataFrame, estimate: pd.DataFrame, *, city_id: int,
                   tag_columns: dict[str, str]) -> SyncCount:
    """Buildings with their estimate; ``tag_columns`` maps frame columns to the OSM tag names kept in ``tags``."""
    tag_frame = buildings[list(tag_columns)]
    tags = [
        {tag_columns[c]: v for c, v in record.items() if isinstance(v, str)}
        for record in tag_frame.to_dict(orient="records")
    ]
    rows = zip(
        [city_id] * len(buildings), buildings["osm_type"], buildings["osm_id"].astype("int64").tolist(),
        buildings["name"].where(buildings["name"].notna(), None), buildings["building"].fillna("yes"),
        estimate["use"], estimate["levels"].tolist(), estimate["levels_source"], estimate["area_m2"].tolist(),
        estimate["households_est"].tolist(), tags, ewkb_hex(buildings.geometry),
        strict=True,
    )
    return sync_rows(
        cur, table="buildings", key=("city_id", "osm_type", "osm_id"),
        columns=("city_id", "osm_type", "osm_id", "name", "building_type", "use", "levels", "levels_source",
                 "area_m2", "households_est", "tags", "geom"),
        rows=rows, scope={"city_id": city_id}, spare="t.osm_type = 'city'",  # the city's own footprints stay
    )


def apply_household_counts(cur: Cursor, counts: pd.DataFrame, *, city_id: int) -> int:
    """Set real household (and resident) counts over the estimate. Returns how many ids matched no building."""
    cur.execute("DROP TABLE IF EXISTS stage_counts")
    cur.execute("CREATE TEMP TABLE stage_counts (osm_type text, osm_id bigint, households int, residents int)")
    copy_rows(cur, "stage_counts", ("osm_type", "osm_id", "households", "residents"),
              counts[["osm_type", "osm_id", "households", "residents"]].astype(object)
              .where(counts.notna(), None).itertuples(index=False))
    cur.execute(
        """
        UPDATE buildings b SET households_override = s.households, residents = COALESCE(s.residents, b.residents)
        FROM stage_counts s
        WHERE b.city_id = %s AND b.osm_type = s.osm_type AND b.osm_id = s.osm_id
        """,
        (city_id,),
    )
    matched = cur.rowcount
    cur.execute("DROP TABLE stage_counts")
    return len(counts) - matched


def sync_key_places(cur: Cursor, places: gpd.GeoDataFrame, *, city_id: int) -> SyncCount:
    rows = zip(
        [city_id] * len(places), places["osm_type"], places["osm_id"].astype("int64").tolist(), places["kind"],
        places["name"].where(places["name"].notna(), None), ewkb_hex(places.geometry),
        strict=True,
    )
    return sync_rows(cur, table="key_places", key=("city_id", "osm_type", "osm_id"),
                     columns=("city_id", "osm_type", "osm_id", "kind", "name", "geom"),
                     rows=rows, scope={"city_id": city_id})


def sync_network(cur: Cursor, nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, *, city_id: int,
                 network: str) -> tuple[SyncCount, SyncCount]:
    scope = {"city_id": city_id, "network": network}
    node_rows = zip([city_id] * len(nodes), [network] * len(nodes), nodes["osmid"].tolist(),
                    ewkb_hex(nodes.geometry), strict=True)
    node_count = sync_rows(cur, table="road_nodes", key=("city_id", "network", "osm_id"),
                           columns=("city_id", "network", "osm_id", "geom"), rows=node_rows, scope=scope)
    edge_rows = zip(
        [city_id] * len(edges), [network] * len(edges), edges["u"].tolist(), edges["v"].tolist(),
        edges["key"].tolist(), edges["osm_ids"], edges["name"], edges["highway"], edges["oneway"].tolist(),
        edges["length_m"].tolist(), ewkb_hex(edges.geometry),
        strict=True,
    )
    edge_count = sync_rows(
        cur, table="road_edges", key=("city_id", "network", "u", "v", "key"),
        columns=("city_id", "network", "u", "v", "key", "osm_ids", "name", "highway", "oneway", "length_m", "geom"),
        rows=edge_rows, scope=scope,
    )
    return node_count, edge_count


def record_import(cur: Cursor, *, city_id: int, file_name: str, sha256: str, bounds_source: str,
                  bounds: BaseGeometry, counts: dict[str, Any]) -> int:
    (geom,) = ewkb_hex([bounds])
    cur.execute(
        "INSERT INTO imports (city_id, file_name, file_sha256, bounds_source, bounds, counts) "
        "VALUES (%s, %s, %s, %s, %s::geometry, %s) RETURNING id",
        (city_id, file_name, sha256, bounds_source, geom, json.dumps(counts)),
    )
    return int(cur.fetchone()[0])


def record_unit_versions(cur: Cursor, city_id: int, *, change: str, author: str, reason: str) -> int:
    """A new version for each coded unit of the city whose outline (by more than 1 m², the tiling tolerance: a
    file's rounding is no change) or name differs from its open version (or that has none yet), closing the one
    before; ``admin_units.version`` follows. Returns how many changed.

    One mechanism for every writer of units (an OSM import, a division, the official files), so that each unit's
    history is complete whoever changed it.
    """
    cur.execute(
        """
        CREATE TEMP TABLE changed_units ON COMMIT DROP AS
        SELECT u.id, u.code, u.level, u.name, u.parent_id, u.geom, coalesce(v.version, 0) + 1 AS version
        FROM admin_units u LEFT JOIN unit_versions v ON v.unit_id = u.id AND v.valid_to IS NULL
        WHERE u.city_id = %(c)s AND u.code IS NOT NULL AND u.geom IS NOT NULL
          AND (v.id IS NULL OR v.name <> u.name OR NOT ST_OrderingEquals(v.geom, u.geom)
               AND ST_Area(ST_SymDifference(v.geom, u.geom)::geography) > 1)
        """,
        {"c": city_id},
    )
    cur.execute("UPDATE unit_versions v SET valid_to = now() FROM changed_units c "
                "WHERE v.unit_id = c.id AND v.valid_to IS NULL")
    cur.execute(
        "INSERT INTO unit_versions (unit_id, code, level, version, name, parent_id, geom, change, author, reason) "
        "SELECT id, code, level, version, name, parent_id, geom, %s, %s, %s FROM changed_units",
        (change, author, reason))
    count = cur.rowcount
    cur.execute("UPDATE admin_units u SET version = c.version FROM changed_units c WHERE u.id = c.id")
    cur.execute("DROP TABLE changed_units")
    return int(count)


def close_removed_unit_versions(cur: Cursor) -> None:
    """End the open versions of units that no longer exist (retired by a new division)."""
    cur.execute("UPDATE unit_versions v SET valid_to = now() WHERE valid_to IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM admin_units u WHERE u.id = v.unit_id)")
