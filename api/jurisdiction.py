"""Jurisdiction checks: a record outside the user's unit is a 404, a code outside it a 403 (gis.access.scope)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Connection, Engine

from gis.access import scope
from gis.access.scope import User
from gis.access.store import users
from gis.db.engine import reading
from gis.dispatch.store import events
from gis.errors import ForbiddenError, NotFoundError
from gis.oversight.store import leaders


def outside(code: str) -> ForbiddenError:
    return ForbiddenError(f"{code} lies outside your jurisdiction")


def require_city(user: User, city_id: int) -> None:
    """403 unless the city is the user's (or the user is bound to every city)."""
    if user.scope.city_id is not None and user.scope.city_id != city_id:
        raise ForbiddenError("that city lies outside your jurisdiction")


def _decided_by_code(user: User, code: str) -> bool:
    """Whether the code alone decides (a 403 when it lies outside): for every user but a city-level one."""
    if user.scope.everywhere:
        return True
    if user.scope.prefix is not None:
        if not code.startswith(user.scope.prefix):
            raise outside(code)
        return True
    return False


def require_code(conn: Connection, user: User, code: str) -> None:
    """403 unless the grid or unit ``code`` lies inside the user's jurisdiction (an unknown code passes: the
    endpoint answers 404 for it, as it would for anyone)."""
    if _decided_by_code(user, code):
        return
    found = users.unit_by_code(conn, code)
    if found is not None and found[1] != user.scope.city_id:
        raise outside(code)


async def require_code_async(engine: Engine, user: User, code: str) -> None:
    """:func:`require_code` from async code: the database only when a city-level user needs it."""
    if not _decided_by_code(user, code):
        await run_in_threadpool(reading, engine, require_code, user, code)


def narrow(user: User, code: str | None) -> str | None:
    """The code prefix a list is filtered on: the one asked for when it lies inside the jurisdiction, else the
    jurisdiction's own; 403 for a code outside."""
    try:
        return user.scope.narrow(code)
    except scope.NotInScope:
        raise outside(str(code)) from None


def event_in_scope(conn: Connection, user: User, event_id: int) -> None:
    """404 unless the event lies in the user's jurisdiction (a department: unless it went or was escalated to
    it). 404, not 403: whether an event exists elsewhere is not the caller's business."""
    row = events.event_place(conn, event_id)
    if row is None or not event_visible(user, *row):
        raise NotFoundError(f"no event {event_id}")


def event_visible(user: User, city_id: int | None, code: str | None, department: str | None, level: str,
                  queue: str, assisting: Sequence[str] = ()) -> bool:
    """A department sees the cases that went or were escalated to it, and those it assists (协办)."""
    if user.role == "department":
        ours = department == user.department and (level == "department" or queue == "department")
        return (ours or user.department in (assisting or ())) and user.scope.covers(city_id, code)
    return user.scope.covers(city_id, code)


def unit_in_jurisdiction(conn: Connection, user: User, *, city: str | None, unit: str | None,
                         default_city: str | None) -> leaders.Unit:
    """The unit a leaders' read is about: ``unit`` (a code) or ``city``, else the user's own unit (or city), else
    the configured city; 403 when it lies outside the user's jurisdiction, 404 when there is no such unit."""
    if not unit and not city:
        if user.scope.prefix is not None:
            unit = user.unit_code
        elif user.scope.city_id is not None:
            city = str(user.scope.city_id)
        else:
            city = default_city
    found = leaders.find_unit(conn, city=city, unit=unit)
    if not user.scope.covers(found.city_id, found.code):
        raise ForbiddenError(f"{found.name} lies outside your jurisdiction")
    return found
