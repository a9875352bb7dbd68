"""A page of GeoJSON features out of PostGIS, in the output CRS an OGC API — Features client asks for: each feature
built in SQL, the page one row longer than asked so that the caller knows whether a next page exists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection


def feature_page(conn: Connection, rows_sql: str, params: dict[str, Any], *, fields: Iterable[str], limit: int,
                 offset: int, srid: int, lat_first: bool, decimals: int) -> tuple[list[str], bool]:
    """Features (JSON text each) of ``rows_sql`` (rows with ``id``, a WGS-84 ``geom`` and the ``fields``), in id
    order, and whether more follow."""
    geom = "r.geom" if srid == 4326 else f"ST_Transform(r.geom, {int(srid)})"
    if lat_first:
        geom = f"ST_FlipCoordinates({geom})"
    props = ", ".join(f"'{f}', r.{f}" for f in fields)
    sql = f"""
        WITH r AS ({rows_sql} ORDER BY id LIMIT :page_limit OFFSET :page_offset)
        SELECT json_build_object('type', 'Feature', 'id', r.id,
                                 'geometry', ST_AsGeoJSON({geom}, {int(decimals)})::json,
                                 'properties', json_build_object({props}))::text
        FROM r ORDER BY r.id"""
    conn.exec_driver_sql("SET LOCAL jit = off")  # a page is quick to run, slow to compile (see gis.db.mvt)
    rows = conn.execute(text(sql), {**params, "page_limit": limit + 1, "page_offset": offset}).scalars().all()
    return [str(r) for r in rows[:limit]], len(rows) > limit


def feature_one(conn: Connection, rows_sql: str, params: dict[str, Any], feature_id: int, **crs: Any) -> str | None:
    """One feature by id, or ``None``."""
    found, _ = feature_page(conn, f"SELECT * FROM ({rows_sql}) one WHERE one.id = :feature_id",
                            {**params, "feature_id": feature_id}, limit=1, offset=0, **crs)
    return found[0] if found else None
