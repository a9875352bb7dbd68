"""What the grid member's phone page stores besides events and visits: photos and volunteer tasks.

Photos are kept in the database, addressed by their SHA-256 (``photo:<hex>``, what a report's ``photos`` list
holds), so a picture sent twice — a phone's queue retried after a lost answer — is stored once. Only JPEG, PNG and
WebP, recognised by their first bytes (not by what the client claims), up to :data:`MAX_PHOTO_BYTES`.

Volunteer tasks (Shaoguan's "residents order, the community posts, members take the order"): a community's
dispatcher posts a task for a grid; a grid member (or a volunteer account) of that grid takes it, then closes it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from gis.errors import ConflictError, InputError, NotFoundError, PayloadTooLargeError

MAX_PHOTO_BYTES = 5 * 2**20
SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def image_type(data: bytes) -> str | None:
    """The picture's media type from its first bytes, or ``None`` when it is none of JPEG, PNG, WebP."""
    for magic, media in SIGNATURES:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def store_photo(engine: Engine, data: bytes, *, uploaded_by: str) -> dict[str, Any]:
    """Keep a picture; its key (the same for the same bytes), media type and size."""
    if not data:
        raise InputError("the photo is empty: send the picture as the body")
    if len(data) > MAX_PHOTO_BYTES:
        raise PayloadTooLargeError(f"the photo is {len(data) / 2**20:.1f} MB; at most "
                                   f"{MAX_PHOTO_BYTES // 2**20} MB: take it at a lower resolution")
    media = image_type(data)
    if media is None:
        raise InputError("that is not a photo: send a JPEG, PNG or WebP picture")
    key = f"photo:{hashlib.sha256(data).hexdigest()}"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO photos (key, content_type, size, data, uploaded_by) VALUES (%(k)s, %(t)s, "
                             "%(s)s, %(d)s, %(u)s) ON CONFLICT (key) DO NOTHING",
                             {"k": key, "t": media, "s": len(data), "d": data, "u": uploaded_by})
    return {"key": key, "content_type": media, "size": len(data), "url": f"/photos/{key}"}


def get_photo(engine: Engine, key: str) -> tuple[bytes, str]:
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT data, content_type FROM photos WHERE key = %(k)s", {"k": key}).first()
    if row is None:
        raise NotFoundError(f"no photo {key}")
    return bytes(row[0]), str(row[1])


_TASK = "id, grid_code, title, description, state, posted_by, posted_at, taken_by, taken_at, closed_at, note"


def _task(row: Any) -> dict[str, Any]:
    out = dict(zip(_TASK.split(", "), row, strict=True))
    out["grid"] = out.pop("grid_code")
    for k in ("posted_at", "taken_at", "closed_at"):
        out[k] = out[k].isoformat() if out[k] is not None else None
    return out


def post_task(engine: Engine, grid: str, title: str, description: str, *, posted_by: str) -> dict[str, Any]:
    if not title.strip():
        raise InputError("a task needs a title")
    with engine.begin() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM grids WHERE code = %(g)s", {"g": grid}).first() is None:
            raise NotFoundError(f"no grid {grid}")
        row = conn.exec_driver_sql(
            f"INSERT INTO volunteer_tasks (grid_code, title, description, posted_by) VALUES (%(g)s, %(t)s, %(d)s, "
            f"%(p)s) RETURNING {_TASK}", {"g": grid, "t": title.strip(), "d": description, "p": posted_by}).one()
    return _task(row)


def list_tasks(engine: Engine, grids: list[str], states: list[str] | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT {_TASK} FROM volunteer_tasks WHERE grid_code = ANY(%(g)s) AND state = ANY(%(s)s) "
            "ORDER BY posted_at DESC LIMIT 500", {"g": grids, "s": states or ["open", "taken"]}).all()
    return [_task(r) for r in rows]


def task_grid(engine: Engine, task_id: int) -> str:
    with engine.connect() as conn:
        grid = conn.exec_driver_sql("SELECT grid_code FROM volunteer_tasks WHERE id = %(i)s", {"i": task_id}).scalar()
    if grid is None:
        raise NotFoundError(f"no task {task_id}")
    return str(grid)


def take_task(engine: Engine, task_id: int, *, by: str) -> dict[str, Any]:
    """Take an open task; a task someone else took first is a ConflictError (the second of two takes loses)."""
    with engine.begin() as conn:
        row = conn.exec_driver_sql(
            f"UPDATE volunteer_tasks SET state = 'taken', taken_by = %(b)s, taken_at = %(t)s WHERE id = %(i)s "
            f"AND state = 'open' RETURNING {_TASK}", {"b": by, "t": datetime.now(UTC), "i": task_id}).first()
        if row is None:
            raise _refusal(conn, task_id, "")
    return _task(row)


def close_task(engine: Engine, task_id: int, *, by: str, note: str = "") -> dict[str, Any]:
    """Close a task one has taken."""
    with engine.begin() as conn:
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
