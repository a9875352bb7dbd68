"""A grid's basic patrol shared among its people, set once (migration 0031) so that everyone names the same parts.

* :func:`split_for_share` splits the grid's streets into k parts (:func:`gis.patrol.split.split_route`, each
  part's route solved exactly where it can be) and :func:`store_share` keeps each part's street segments; k = 1
  stops sharing.
* :func:`week_part` says which part a person walks in a given week: the grid's chief and members in the order the
  schedule lists them (the chief first), and each week the parts move on by one, so that everyone walks the whole
  grid in turn (the same rotation as :func:`gis.patrol.store.visits.schedule`).
* :func:`part_plan` is one part's route as GeoJSON, from the kept streets (a street the network no longer has is
  left out and counted), for the member's "today's route".
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from gis.errors import InputError, NotFoundError
from gis.patrol.rural import exact_route
from gis.patrol.split import DEFAULT_EXACT_S, MAX_PARTS, split_route
from gis.patrol.store.plans import MARGIN_M, _network_and_base, part_features, segment_key


def get_share(conn: Connection, code: str) -> dict[str, Any] | None:
    """The grid's share as set: ``{"grid", "k", "parts": [[[u, v, key], …], …], "lengths_m", "set_at"}``; None
    when the grid's patrol is not shared."""
    row = conn.exec_driver_sql("SELECT k, parts, lengths_m, set_at FROM patrol_shares WHERE grid_code = %(c)s",
                               {"c": code}).first()
    if row is None:
        return None
    k, parts, lengths, at = row
    return {"grid": code, "k": int(k), "parts": parts, "lengths_m": [round(x, 1) for x in lengths],
            "set_at": at.isoformat()}


def split_for_share(engine: Engine, code: str, k: int, *, exact_s: float = DEFAULT_EXACT_S
                    ) -> tuple[list[list[list[int]]], list[float]]:
    """Grid ``code``'s basic patrol split among ``k`` people (2–8): each part's street segments and its route's
    length, to keep with :func:`store_share`. Reads the network, then splits with no connection held."""
    if not 2 <= k <= MAX_PARTS:
        raise InputError(f"k (the people sharing the patrol) is 1 to {MAX_PARTS}; got {k}")
    net, node, _ = _network_and_base(engine, code, None, MARGIN_M)
    split = split_route(net["graph"], net["required"], node, k, exact_s=exact_s)
    return [[list(segment_key(e)) for e in edges] for edges in split.edges], [p.length_m for p in split.parts]


def store_share(conn: Connection, code: str, k: int, parts: list[list[list[int]]] | None = None,
                lengths: list[float] | None = None) -> dict[str, Any]:
    """Keep grid ``code``'s share (from :func:`split_for_share`), or, with ``k = 1``, stop sharing; the share."""
    if not 1 <= k <= MAX_PARTS:
        raise InputError(f"k (the people sharing the patrol) is 1 to {MAX_PARTS}; got {k}")
    if conn.exec_driver_sql("SELECT 1 FROM grids WHERE code = %(c)s", {"c": code}).scalar() is None:
        raise NotFoundError(f"no grid {code}")
    if k == 1:
        conn.exec_driver_sql("DELETE FROM patrol_shares WHERE grid_code = %(c)s", {"c": code})
        return {"grid": code, "k": 1, "parts": [], "lengths_m": [], "set_at": None}
    if parts is None or lengths is None or len(parts) != k or len(lengths) != k:
        raise InputError(f"a share of {k} needs its {k} parts and their lengths (split_for_share)")
    conn.exec_driver_sql(
        """INSERT INTO patrol_shares (grid_code, k, parts, lengths_m) VALUES (%(c)s, %(k)s, %(p)s::jsonb, %(l)s)
           ON CONFLICT (grid_code) DO UPDATE SET k = EXCLUDED.k, parts = EXCLUDED.parts,
               lengths_m = EXCLUDED.lengths_m, set_at = now()""",
        {"c": code, "k": k, "p": json.dumps(parts), "l": lengths})
    share = get_share(conn, code)
    assert share is not None
    return share


def grid_crew(conn: Connection, code: str) -> list[tuple[int, str, str]]:
    """The grid's chief and members who are active, (staff id, name, duty), the chief first: the order both the
    month's schedule and :func:`week_part` count them in for the rotation."""
    return [(int(i), name, duty) for i, name, duty in conn.exec_driver_sql(
        "SELECT s.id, s.name, sg.duty FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id "
        "JOIN grids g ON g.id = sg.grid_id WHERE g.code = %(c)s AND sg.duty IN ('chief', 'member') AND s.active "
        "ORDER BY sg.duty <> 'chief', s.id", {"c": code})]


def rotation(person: int, week: int, k: int) -> int:
    """The part (0-based) the ``person``-th of the grid's people walks in the month's ``week``-th week."""
    return (person + week) % k


def week_part(conn: Connection, code: str, staff_id: int | None, day: date) -> dict[str, Any] | None:
    """Which part ``staff_id`` walks in the week of ``day`` (its Monday to Sunday), with the share's k and the
    week; None when the grid's patrol is not shared or the person is not one of the grid's chief and members."""
    from gis.patrol.store.visits import month_weeks

    share = get_share(conn, code)
    if share is None or staff_id is None:
        return None
    people = [staff for staff, _, _ in grid_crew(conn, code)]
    if staff_id not in people:
        return None
    monday = day - timedelta(days=day.weekday())
    weeks = month_weeks((monday + timedelta(days=3)).strftime("%Y-%m"))  # the month of the week's Thursday
    part = rotation(people.index(staff_id), weeks.index(monday), share["k"])
    return {"part": part + 1, "parts": share["k"], "week_of": monday.isoformat()}


def part_plan(engine: Engine, code: str, part: int, *, exact_s: float = 1.0) -> dict[str, Any]:
    """Part ``part`` (1-based) of the grid's share as a route from the base and back (GeoJSON: the part's line and
    its start, as :func:`gis.patrol.store.plans.plan_split` draws each part)."""
    with engine.connect() as conn:
        share = get_share(conn, code)
    if share is None:
        raise NotFoundError(f"grid {code}'s basic patrol is not shared: PUT /grids/{code}/patrols/share")
    if not 1 <= part <= share["k"]:
        raise InputError(f"grid {code}'s patrol has {share['k']} parts; part {part} is not one of them")
    net, node, _ = _network_and_base(engine, code, None, MARGIN_M)
    graph = net["graph"]
    by_key = {segment_key(e): e for e in graph.edges(keys=True)}
    kept = [tuple(int(x) for x in s) for s in share["parts"][part - 1]]
    edges = [by_key[s] for s in kept if s in by_key]  # type: ignore[index]
    if not edges:
        raise InputError(f"none of part {part}'s streets is on grid {code}'s network any more: set the share again")
    route = exact_route(graph, edges, node, time_limit_s=exact_s)
    return {"type": "FeatureCollection",
            "features": part_features(graph, part, route, node, len(edges), f"part {part} of {share['k']}"),
            "properties": {"grid": code, "title": f"基础巡查第 {part}/{share['k']} 段 basic patrol, part {part} of "
                                                  f"{share['k']}", "part": part, "parts": share["k"],
                           "set_at": share["set_at"], "streets_missing": len(kept) - len(edges),
                           **route.summary()}}
