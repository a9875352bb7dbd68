"""A Mapbox vector tile out of PostGIS: ``ST_AsMVT`` over ``ST_AsMVTGeom`` in the tile's envelope
(``ST_TileEnvelope``), geometry simplified first where asked. The domains' tile stores give it their rows.

A tile's statement is prepared once per database session (:func:`run`): planning one of these joins took 0.9 ms
against 2.3 ms of running it for a zoom-13 grid tile, and a small tile runs in a fraction of a millisecond. Its
parameters' types are left to PostgreSQL to infer from the statement (a parameter only tested for NULL is cast in
the SQL). It runs without JIT, in the same round trip; a tile asked for on its own runs in one implicit
transaction (no BEGIN, no ROLLBACK).
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
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
    return run(conn, sql, {**params, "z": z, "x": x, "y": y, "layer": name, "tolerance": tolerance_m(z)})


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
"""Per open psycopg2 connection (one database session): the names of the tile statements prepared on it."""


@lru_cache(maxsize=256)
def _statement(sql: str) -> tuple[str, tuple[str, ...], str, str]:
    """A tile statement's name, its parameters in order, its PREPARE and its EXECUTE (a handful of distinct
    statements serve every tile: worked out once each, not per request)."""
    order: list[str] = []
    for found in _NAMED.findall(sql):
        if found not in order:
            order.append(found)
    name = "tile_" + hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
    positional = _NAMED.sub(lambda m: f"${order.index(m.group(1)) + 1}", sql)
    placeholders = ", ".join(["%s"] * len(order))
    # no JIT (see above), no parallel workers: starting them cost more than a tile's query saves
    execute = (f"SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0; EXECUTE {name}"
               + (f" ({placeholders})" if order else ""))
    return name, tuple(order), f"PREPARE {name} AS {positional}", execute


def run(conn: Connection, sql: str, params: Mapping[str, Any]) -> bytes:
    """Run a tile statement (SQLAlchemy ``:name`` parameters) that yields one ``bytea``: prepared on this session
    the first time, then executed with no JIT (compiling a dense tile's plan took 200 ms, running it 10)."""
    name, order, prepare, execute = _statement(sql)
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # an open Connection has its DB-API connection
    done = _prepared.setdefault(dbapi, set())
    # a tile asked for on its own (a request's first statement) runs as one implicit transaction: its SET LOCALs
    # and EXECUTE in one message, with no BEGIN before it and no ROLLBACK after it (two round trips of the three a
    # small tile cost); inside a transaction already begun it runs in that one
    alone = not dbapi.autocommit and dbapi.get_transaction_status() == TRANSACTION_STATUS_IDLE
    if alone:
        dbapi.autocommit = True
    cur = dbapi.cursor()
    try:
        if name not in done:
            cur.execute(prepare)  # no parameters: psycopg2 leaves "%" alone
            done.add(name)
        cur.execute(execute, [params[p] for p in order])
        row = cur.fetchone()
    finally:
        cur.close()
        if alone:
            dbapi.autocommit = False
    return bytes(row[0] or b"") if row else b""
