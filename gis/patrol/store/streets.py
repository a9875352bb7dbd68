"""A grid's streets for the basic patrol, and the ones its planner marks optional.

The basic patrol walks every street of the grid (:func:`gis.patrol.store.plans.load_grid_network`). A planner may mark
some optional: a footway inside a gated compound the grid member cannot enter, a stretch of expressway frontage, a
street another grid already walks. The route may still use an optional street where that is the shortest way, but
need not walk it: the route becomes the rural postman on the remaining, required streets (optimal when those form
one piece with the base). Coverage and the proof-of-patrol matching count only the required streets.

Segments are named ``"u-v-key"`` (the walk network's nodes, least first, and the parallel-street key): stable
across re-imports of the same extract, shown by ``GET /grids/{code}/streets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shapely.geometry import mapping
from sqlalchemy.engine import Connection

from gis.errors import InputError
from gis.patrol.store.plans import load_grid_network, segment_key

MAX_TEXT = 2000


def segment_id(edge: tuple[Any, Any, Any]) -> str:
    return "-".join(map(str, segment_key(edge)))


def parse_segment_id(value: str) -> tuple[int, int, int]:
    """``"u-v-key"`` as the stored key; an :class:`InputError` saying what a segment id looks like otherwise."""
    try:
        u, v, k = (int(part) for part in str(value).split("-"))
    except ValueError:
        raise InputError(f"a street segment is named u-v-key (e.g. 1234-5678-0, from GET /grids/{{code}}/streets); "
                         f"got {value!r}") from None
    return (min(u, v), max(u, v), k)


def grid_streets(conn: Connection, code: str) -> dict[str, Any]:
    """The grid's streets as a GeoJSON FeatureCollection: each segment with its id, name, length and whether it is
    required or marked optional; in ``properties`` the totals."""
    return _streets(conn, code, load_grid_network(conn, code))


def _streets(conn: Connection, code: str, net: dict[str, Any]) -> dict[str, Any]:
    """:func:`grid_streets` from a loaded network, with the marks as they are stored now."""
    graph = net["graph"]
    marks = {(int(u), int(v), int(k)): (author, reason, at) for u, v, k, author, reason, at in conn.exec_driver_sql(
        "SELECT u, v, key, author, reason, marked_at FROM patrol_optional_streets WHERE grid_code = %(c)s",
        {"c": code})}
    features = []
    for edge in [*net["required"], *net["optional"]]:
        data = graph.edges[edge]
        mark = marks.get(segment_key(edge))
        props: dict[str, Any] = {"id": segment_id(edge), "name": _text(data.get("name")),
                                 "highway": _text(data.get("highway")), "length_m": round(float(data["length"]), 1),
                                 "optional": mark is not None}
        if mark is not None:
            author, reason, at = mark
            props.update(marked_by=author, reason=reason, marked_at=at.isoformat())
        features.append({"type": "Feature", "geometry": mapping(data["geometry"]), "properties": props})
    features.sort(key=lambda f: f["properties"]["id"])
    length = {flag: sum(f["properties"]["length_m"] for f in features if f["properties"]["optional"] is flag)
              for flag in (False, True)}
    optional = sum(f["properties"]["optional"] for f in features)
    return {"type": "FeatureCollection", "features": features, "properties": {
        "grid": code, "segments": len(features), "required_segments": len(features) - optional,
        "optional_segments": optional, "required_m": round(length[False], 1), "optional_m": round(length[True], 1)}}


def set_optional_streets(conn: Connection, code: str, segments: Sequence[str], *, author: str,
                         reason: str) -> dict[str, Any]:
    """Make exactly ``segments`` the grid's optional streets (an empty list makes every street required again), in
    one transaction; each must be one of the grid's streets. Returns :func:`grid_streets` after the change."""
    if not author.strip():
        raise InputError("say who marks the streets (author)")
    if not reason.strip():
        raise InputError("say why the streets are optional (reason)")
    if len(author) > MAX_TEXT or len(reason) > MAX_TEXT:
        raise InputError(f"author and reason are at most {MAX_TEXT:,} characters")
    wanted = {parse_segment_id(s) for s in segments}
    net = load_grid_network(conn, code)
    known = {segment_key(e) for e in [*net["required"], *net["optional"]]}
    unknown = sorted(wanted - known)
    if unknown:
        shown = ", ".join("-".join(map(str, k)) for k in unknown[:5])
        raise InputError(f"{len(unknown)} segment(s) are not streets of grid {code}: {shown} (GET /grids/{code}/"
                         "streets lists them)")
    if known and wanted == known:
        raise InputError(f"that marks every street of grid {code} optional: leave at least one required")
    current = {(int(u), int(v), int(k)) for u, v, k in conn.exec_driver_sql(
        "SELECT u, v, key FROM patrol_optional_streets WHERE grid_code = %(c)s FOR UPDATE", {"c": code})}
    gone = sorted(current - wanted)
    new = sorted(wanted - current)
    if gone:
        conn.exec_driver_sql(
            "DELETE FROM patrol_optional_streets WHERE grid_code = %(c)s AND (u, v, key) IN "
            "(SELECT * FROM unnest(%(u)s::bigint[], %(v)s::bigint[], %(k)s::int[]))",
            {"c": code, "u": [g[0] for g in gone], "v": [g[1] for g in gone], "k": [g[2] for g in gone]})
    if new:
        conn.exec_driver_sql(
            "INSERT INTO patrol_optional_streets (grid_code, u, v, key, author, reason) "
            "SELECT %(c)s, u, v, k, %(a)s, %(r)s FROM unnest(%(u)s::bigint[], %(v)s::bigint[], %(k)s::int[]) "
            "AS t(u, v, k)",
            {"c": code, "a": author.strip(), "r": reason.strip(), "u": [n[0] for n in new],
             "v": [n[1] for n in new], "k": [n[2] for n in new]})
    out = _streets(conn, code, net)  # the same streets, with the new marks
    out["properties"].update(marked=len(new), unmarked=len(gone))
    return out


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)

