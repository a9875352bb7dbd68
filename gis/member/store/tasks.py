"""Volunteer tasks a grid posts and its members take and close (the member page's 志愿任务)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from gis.errors import ConflictError, InputError, NotFoundError

_TASK = "id, grid_code, title, description, state, posted_by, posted_at, taken_by, taken_at, closed_at, note"


def _task(row: Any) -> dict[str, Any]:
    out = dict(zip(_TASK.split(", "), row, strict=True))
    out["grid"] = out.pop("grid_code")
    for k in ("posted_at", "taken_at", "closed_at"):
        out[k] = out[k].isoformat() if out[k] is not None else None
    return out


def post_task(conn: Connection, grid: str, title: str, description: str, *, posted_by: str) -> dict[str, Any]:
    if not title.strip():
        raise InputError("a task needs a title")
    if conn.exec_driver_sql("SELECT 1 FROM grids WHERE code = %(g)s", {"g": grid}).first() is None:
        raise NotFoundError(f"no grid {grid}")
    row = conn.exec_driver_sql(
        f"INSERT INTO volunteer_tasks (grid_code, title, description, posted_by) VALUES (%(g)s, %(t)s, %(d)s, "
        f"%(p)s) RETURNING {_TASK}", {"g": grid, "t": title.strip(), "d": description, "p": posted_by}).one()
    return _task(row)


def list_tasks(conn: Connection, grids: list[str], states: list[str] | None = None) -> list[dict[str, Any]]:
    rows = conn.exec_driver_sql(
        f"SELECT {_TASK} FROM volunteer_tasks WHERE grid_code = ANY(%(g)s) AND state = ANY(%(s)s) "
        "ORDER BY posted_at DESC LIMIT 500", {"g": grids, "s": states or ["open", "taken"]}).all()
    return [_task(r) for r in rows]


def task_grid(conn: Connection, task_id: int) -> str:
    grid = conn.exec_driver_sql("SELECT grid_code FROM volunteer_tasks WHERE id = %(i)s", {"i": task_id}).scalar()
    if grid is None:
        raise NotFoundError(f"no task {task_id}")
    return str(grid)


def take_task(conn: Connection, task_id: int, *, by: str) -> dict[str, Any]:
    """Take an open task; a task someone else took first is a ConflictError (the second of two takes loses)."""
    row = conn.exec_driver_sql(
        f"UPDATE volunteer_tasks SET state = 'taken', taken_by = %(b)s, taken_at = %(t)s WHERE id = %(i)s "
        f"AND state = 'open' RETURNING {_TASK}", {"b": by, "t": datetime.now(UTC), "i": task_id}).first()
    if row is None:
        raise _refusal(conn, task_id, "")
    return _task(row)


def close_task(conn: Connection, task_id: int, *, by: str, note: str = "") -> dict[str, Any]:
    """Close a task one has taken."""
    row = conn.exec_driver_sql(
        f"UPDATE volunteer_tasks SET state = 'closed', closed_at = %(t)s, note = %(n)s WHERE id = %(i)s "
        f"AND state = 'taken' AND taken_by = %(b)s RETURNING {_TASK}",
        {"b": by, "t": datetime.now(UTC), "i": task_id, "n": note or None}).first()
    if row is None:
        raise _refusal(conn, task_id, ": only who took it closes it")
    return _task(row)


def _refusal(conn: Any, task_id: int, why: str) -> Exception:
    """Why a take or close changed nothing: no such task (404), or its state (409)."""
    row = conn.exec_driver_sql("SELECT state, taken_by FROM volunteer_tasks WHERE id = %(i)s", {"i": task_id}).first()
    if row is None:
        return NotFoundError(f"no task {task_id}")
    return ConflictError(f"task {task_id} is {row[0]}" + (f" (by {row[1]})" if row[1] else "") + why)
