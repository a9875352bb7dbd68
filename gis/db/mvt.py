"""A Mapbox vector tile out of PostGIS: ``ST_AsMVT`` over ``ST_AsMVTGeom`` in the tile's envelope
(``ST_TileEnvelope``), geometry simplified first where asked. The domains' tile stores give it their rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.geo.tiles import BUFFER, EXTENT, tolerance_m


def encode(conn: Connection, name: str, rows_sql: str, params: dict[str, Any], z: int, x: int, y: int, *,
           fields: Iterable[str], simplify: bool) -> bytes:
    """Layer ``name`` of tile ``z/x/y`` from ``rows_sql``: rows with a WGS-84 ``geom`` and the ``fields`` to keep
    as attributes; outlines simplified to half a pixel of the zoom when ``simplify``. Empty bytes: no feature."""
    geom = "ST_Transform(r.geom, 3857)"
    if simplify:
        geom = f"ST_Simplify({geom}, :tolerance, true)"
    attributes = ", ".join(f"r.{field}" for field in fields)
    sql = f"""
        WITH r AS ({rows_sql}),
        mvt AS (SELECT ST_AsMVTGeom({geom}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true) AS mvt_geom,
                       {attributes} FROM r)
        SELECT ST_AsMVT(mvt.*, :layer, {EXTENT}, 'mvt_geom') FROM mvt WHERE mvt.mvt_geom IS NOT NULL"""
    # no JIT: compiling this plan (its cost passes jit_above_cost on a dense tile) took 200 ms, running it 10
    conn.exec_driver_sql("SET LOCAL jit = off")
    out = conn.execute(text(sql), {**params, "z": z, "x": x, "y": y, "layer": name,
                                   "tolerance": tolerance_m(z)}).scalar()
    return bytes(out or b"")
