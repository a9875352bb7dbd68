"""What the centre's console needs beside the loop itself: the response templates, a step over many cases at once
(previewed, then all or nothing), and a case's surroundings for the map (its grid, the open cases near it, the
grid's recent history)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from gis.dispatch.rules import OPEN_STATES, STEPS
from gis.dispatch.store.events import list_events, take_step
from gis.errors import ConflictError, GridpatrolError, InputError, NotFoundError

MAX_TEMPLATE = 500
BULK_ACTIONS = ("accept", "dispatch", "reject", "verify", "close")
"""The steps the console takes over a selection (each checked case by case, all or nothing)."""
MAX_BULK = 200
NEAR_M = 200.0
HISTORY_DAYS = 90


def _check_template(step: str, body: str) -> str:
    if step not in STEPS:
        raise InputError(f"unknown step {step!r}: use one of {', '.join(STEPS)}")
    body = body.strip()
    if not 1 <= len(body) <= MAX_TEMPLATE or "\x00" in body:
        raise InputError(f"a template has 1 to {MAX_TEMPLATE} characters")
    return body


def _category(conn: Connection, code: str | None) -> None:
    if code is not None and conn.exec_driver_sql("SELECT 1 FROM categories WHERE code = %(c)s",
                                                 {"c": code}).first() is None:
        raise InputError(f"no category {code!r} (GET /categories)")


def templates(conn: Connection, *, step: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
    """The templates of a step (all steps: ``None``), those of every category and, with ``category``, its own."""
    rows = conn.exec_driver_sql(
        "SELECT id, step, category_code, body, updated_by, updated_at FROM response_templates "
        "WHERE (%(s)s::text IS NULL OR step = %(s)s) AND (category_code IS NULL OR category_code = %(c)s "
        "OR %(c)s::text IS NULL) ORDER BY step, category_code NULLS FIRST, id", {"s": step, "c": category}).all()
    return [{"id": i, "step": s, "category": c, "body": b, "updated_by": u, "updated_at": at.isoformat()}
            for i, s, c, b, u, at in rows]


def add_template(conn: Connection, *, step: str, body: str, category: str | None, author: str) -> dict[str, Any]:
    body = _check_template(step, body)
    _category(conn, category)
    new_id = conn.exec_driver_sql(
        "INSERT INTO response_templates (step, category_code, body, updated_by) VALUES (%(s)s, %(c)s, %(b)s, %(a)s) "
        "RETURNING id", {"s": step, "c": category, "b": body, "a": author}).scalar_one()
    return next(t for t in templates(conn, step=step) if t["id"] == new_id)


def edit_template(conn: Connection, template_id: int, *, step: str, body: str, category: str | None,
                  author: str) -> dict[str, Any]:
    body = _check_template(step, body)
    _category(conn, category)
    done = conn.exec_driver_sql(
        "UPDATE response_templates SET step = %(s)s, category_code = %(c)s, body = %(b)s, updated_by = %(a)s, "
        "updated_at = now() WHERE id = %(i)s", {"s": step, "c": category, "b": body, "a": author,
                                               "i": template_id}).rowcount
    if not done:
        raise NotFoundError(f"no template {template_id}")
    return next(t for t in templates(conn, step=step) if t["id"] == template_id)


def remove_template(conn: Connection, template_id: int) -> None:
    if not conn.exec_driver_sql("DELETE FROM response_templates WHERE id = %(i)s", {"i": template_id}).rowcount:
        raise NotFoundError(f"no template {template_id}")


def bulk_step(conn: Connection, ids: Sequence[int], action: str, *, visible: Callable[[int], bool], confirm: bool,
              actor: str, role: str, note: str | None = None, staff_id: int | None = None,
              department: str | None = None, evaluation: int | None = None, actor_staff_id: int | None = None,
              now: datetime | None = None) -> dict[str, Any]:
    """One step over a selection of cases, in the caller's transaction: each case is tried in a savepoint. Without
    ``confirm`` nothing stays (the answer says what would happen to each); with it, every case takes the step or
    none does (a ConflictError naming the cases that cannot). Cases the user may not see (``visible``) refuse the
    whole selection, naming them (an InputError: nothing is done)."""
    if action not in BULK_ACTIONS:
        raise InputError(f"a selection takes one of {', '.join(BULK_ACTIONS)}; not {action!r}")
    unique = list(dict.fromkeys(ids))
    if not 1 <= len(unique) <= MAX_BULK:
        raise InputError(f"select 1 to {MAX_BULK} cases")
    outside = [i for i in unique if not visible(i)]
    if outside:
        raise InputError(f"cases {', '.join(map(str, outside))} are not in your jurisdiction (or do not exist): "
                         "nothing was done; select only your own cases")
    results: list[dict[str, Any]] = []
    for event_id in unique:
        conn.exec_driver_sql("SAVEPOINT selection_step")  # inside the caller's transaction, which it keeps
        try:
            event = take_step(conn, event_id, action, actor=actor, role=role, note=note, staff_id=staff_id,
                              department=department, evaluation=evaluation, actor_staff_id=actor_staff_id, now=now)
            results.append({"id": event_id, "ok": True, "state": event["state"],
                            "assignee": (event["assignee"] or {}).get("name"), "department": event["department"]})
        except GridpatrolError as exc:
            results.append({"id": event_id, "ok": False, "error": str(exc)})
        keep = confirm and results[-1]["ok"]
        conn.exec_driver_sql("RELEASE SAVEPOINT selection_step" if keep else
                             "ROLLBACK TO SAVEPOINT selection_step")
    failed = [r for r in results if not r["ok"]]
    if confirm and failed:
        raise ConflictError(f"{len(failed)} of {len(unique)} cases cannot be {action}ed, so none was: "
                            + "; ".join(f"#{r['id']}: {r['error']}" for r in failed[:10]))
    return {"action": action, "confirmed": confirm, "count": len(unique), "possible": len(unique) - len(failed),
            "cases": results}


def surroundings(conn: Connection, event_id: int, *, near_m: float = NEAR_M, days: int = HISTORY_DAYS,
                 city_id: int | None, unit_code: str | None, department: str | None) -> dict[str, Any]:
    """A case on its map: its grid's outline, the open cases of the user's jurisdiction within ``near_m`` (the
    duplicate candidates: the same category first), and the grid's cases of the last ``days`` days."""
    row = conn.exec_driver_sql(
        "SELECT e.category_code, e.grid_id, e.reported_at, ST_AsGeoJSON(g.geom, 7), g.code, g.name "
        "FROM events e LEFT JOIN grids g ON g.id = e.grid_id WHERE e.id = %(i)s", {"i": event_id}).first()
    if row is None:
        raise NotFoundError(f"no event {event_id}")
    category, grid_id, reported_at, outline, code, name = row
    near = conn.exec_driver_sql(
        "SELECT o.id, ST_Distance(o.geom::geography, e.geom::geography) FROM events e JOIN events o "
        "ON ST_DWithin(o.geom::geography, e.geom::geography, %(m)s) AND o.id <> e.id AND o.state = ANY(%(open)s) "
        "AND o.archive = 0 WHERE e.id = %(i)s", {"i": event_id, "m": near_m, "open": list(OPEN_STATES)}).all()
    distance = {int(i): float(d) for i, d in near}
    scope: dict[str, Any] = {"city_id": city_id, "unit_code": unit_code, "department": department}
    nearby = list_events(conn, ids=list(distance), limit=50, **scope) if distance else []
    for e in nearby:
        e["distance_m"] = round(distance[e["id"]], 1)
    nearby.sort(key=lambda e: (e["category"] != category, e["distance_m"]))
    recent: list[dict[str, Any]] = []
    if grid_id is not None:
        ids = conn.exec_driver_sql(
            "SELECT id FROM events WHERE grid_id = %(g)s AND id <> %(i)s AND reported_at >= %(t)s "
            "ORDER BY reported_at DESC LIMIT 20", {"g": grid_id, "i": event_id,
                                                  "t": reported_at - timedelta(days=days)}).scalars().all()
        recent = sorted(list_events(conn, ids=list(ids), limit=20, **scope), key=lambda e: e["reported_at"],
                        reverse=True)
    grid = None if outline is None else {"type": "Feature", "geometry": json.loads(outline),
                                         "properties": {"code": code, "name": name}}
    return {"id": event_id, "grid": grid, "nearby": nearby, "recent": recent}


def dispatch_options(conn: Connection, event_id: int) -> dict[str, Any]:
    """Whom a case may be dispatched to: the working staff of its grid (chief, members, embedded police) and of its
    community and street, then every department."""
    place = conn.exec_driver_sql("SELECT grid_id, community_id, street_id FROM events WHERE id = %(i)s",
                                 {"i": event_id}).first()
    if place is None:
        raise NotFoundError(f"no event {event_id}")
    grid_id, community_id, street_id = place
    people = conn.exec_driver_sql("""
        SELECT s.id, s.name, s.role, min(sg.duty), min(g.code) FROM staff s
        LEFT JOIN staff_grids sg ON sg.staff_id = s.id AND sg.grid_id = %(g)s LEFT JOIN grids g ON g.id = sg.grid_id
        WHERE s.active AND (sg.grid_id IS NOT NULL OR s.unit_id IN (%(c)s, %(s)s))
        GROUP BY s.id ORDER BY min(sg.duty) NULLS LAST, s.role, s.name, s.id LIMIT 200""",
                                  {"g": grid_id, "c": community_id, "s": street_id}).all()
    departments = conn.exec_driver_sql("SELECT code, name, name_en FROM departments ORDER BY code").all()
    return {"people": [{"id": i, "name": n, "role": r, "duty": d, "grid": g} for i, n, r, d, g in people],
            "departments": [{"code": c, "name": n, "name_en": e} for c, n, e in departments]}
