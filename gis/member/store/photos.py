"""What the grid member's phone page stores besides events and visits: photos and volunteer tasks.

Photos are kept in the database, addressed by their SHA-256 (``photo:<hex>``, what a report's ``photos`` list
holds), so a picture sent twice — a phone's queue retried after a lost answer — is stored once. Only JPEG, PNG and
WebP, recognised by their first bytes (not by what the client claims), up to :data:`MAX_PHOTO_BYTES`.

Volunteer tasks (Shaoguan's "residents order, the community posts, members take the order"): a community's
dispatcher posts a task for a grid; a grid member (or a volunteer account) of that grid takes it, then closes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.engine import Connection

from gis.dispatch.queries import EVENT_PLACE
from gis.errors import InputError, NotFoundError, PayloadTooLargeError
from gis.member.photos import MAX_PHOTO_BYTES, image_type


def store_photo(conn: Connection, data: bytes, *, uploaded_by: str) -> dict[str, Any]:
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
    conn.exec_driver_sql("INSERT INTO photos (key, content_type, size, data, uploaded_by) VALUES (%(k)s, %(t)s, "
                         "%(s)s, %(d)s, %(u)s) ON CONFLICT (key) DO NOTHING",
                         {"k": key, "t": media, "s": len(data), "d": data, "u": uploaded_by})
    return {"key": key, "content_type": media, "size": len(data), "url": f"/photos/{key}"}


def get_photo(conn: Connection, key: str) -> tuple[bytes, str]:
    row = conn.exec_driver_sql("SELECT data, content_type FROM photos WHERE key = %(k)s", {"k": key}).first()
    if row is None:
        raise NotFoundError(f"no photo {key}")
    return bytes(row[0]), str(row[1])




def photo_uploader(conn: Connection, key: str) -> str | None:
    """Who uploaded the photo (``None`` when it is not stored, or was uploaded by no one known)."""
    return conn.exec_driver_sql("SELECT uploaded_by FROM photos WHERE key = %(k)s", {"k": key}).scalar()


def photo_events(conn: Connection, key: str, *, limit: int = 100) -> list[tuple[Any, ...]]:
    """The events that show the photo (as reported, or with one of their steps), as
    ``(city_id, unit code, department, level, queue, assisting)``: what a jurisdiction check reads."""
    rows = conn.exec_driver_sql(
        f"{EVENT_PLACE} WHERE e.id IN (SELECT id FROM events WHERE photos <> '[]'::jsonb "
        "AND photos @> jsonb_build_array(%(k)s) UNION SELECT event_id FROM event_transitions WHERE data ? 'photos' "
        "AND data @> jsonb_build_object('photos', jsonb_build_array(%(k)s))) LIMIT %(n)s",
        {"k": key, "n": limit}).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]
