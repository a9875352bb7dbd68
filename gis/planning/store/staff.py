"""Staff, their grids and the duty roster; and the synthetic staff of the demo.

The demo's people are **synthetic** (no real names): for each grid a chief and one member (on duty 08:00–20:00
every day), for each community a police officer embedded in its grids and a centre staff member, and for each
street a centre staff member. Real deployments load their own staff (``POST /staff``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from gis.errors import InputError, NotFoundError
from gis.vocabulary import GRID_DUTIES, STAFF_ROLES


def _add(conn: Any, name: str, role: str, unit_id: int | None) -> int:
    return int(conn.exec_driver_sql("INSERT INTO staff (name, role, unit_id) VALUES (%(n)s, %(r)s, %(u)s) "
                                    "RETURNING id", {"n": name, "r": role, "u": unit_id}).scalar_one())


def add_staff(conn: Connection, *, name: str, role: str, unit_code: str | None = None,
              grids: dict[str, str] | None = None, roster: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A staff member with their grids (grid code → duty) and duty hours on them."""
    if role not in STAFF_ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(STAFF_ROLES)}")
    unit_id = None
    if unit_code is not None:
        unit_id = conn.exec_driver_sql("SELECT id FROM admin_units WHERE code = %(c)s",
                                       {"c": unit_code}).scalar()
        if unit_id is None:
            raise NotFoundError(f"no unit with code {unit_code}")
    staff_id = _add(conn, name, role, unit_id)
    for code, duty in (grids or {}).items():
        if duty not in GRID_DUTIES:
            raise InputError(f"unknown duty {duty!r}: use one of {', '.join(GRID_DUTIES)}")
        grid_id = _grid_id(conn, code)
        if duty == "chief" and conn.exec_driver_sql(
                "SELECT 1 FROM staff_grids WHERE grid_id = %(g)s AND duty = 'chief'", {"g": grid_id}).first():
            raise InputError(f"grid {code} has a chief already: one chief per grid")
        conn.exec_driver_sql("INSERT INTO staff_grids (staff_id, grid_id, duty) VALUES (%(s)s, %(g)s, %(d)s)",
                             {"s": staff_id, "g": grid_id, "d": duty})
    for slot in roster or []:
        grid_id = _grid_id(conn, slot["grid"])
        if not slot["starts"] < slot["ends"]:
            raise InputError("a duty slot starts before it ends")
        conn.exec_driver_sql("INSERT INTO duty_roster (staff_id, grid_id, weekday, starts, ends) "
                             "VALUES (%(s)s, %(g)s, %(w)s, %(a)s, %(b)s)",
                             {"s": staff_id, "g": grid_id, "w": slot["weekday"], "a": slot["starts"],
                              "b": slot["ends"]})
    return {"id": staff_id, "name": name, "role": role, "unit": unit_code, "grids": grids or {}}


def _grid_id(conn: Any, code: str) -> int:
    grid_id = conn.exec_driver_sql("SELECT id FROM grids WHERE code = %(c)s", {"c": code}).scalar()
    if grid_id is None:
        raise NotFoundError(f"no grid {code}")
    return int(grid_id)


def staff_role(conn: Connection, staff_id: int) -> str | None:
    """The working staff member's role (``None``: no such member, or one who no longer works)."""
    role = conn.exec_driver_sql("SELECT role FROM staff WHERE id = %(s)s AND active", {"s": staff_id}).scalar()
    return str(role) if role is not None else None


def staff_places(conn: Connection, staff_id: int) -> list[tuple[int, str]]:
    """Where a staff member works, as ``(city id, code)``: their unit's and each of their grids'."""
    rows = conn.exec_driver_sql(
        "SELECT coalesce(u.city_id, u.id), u.code FROM staff s JOIN admin_units u ON u.id = s.unit_id "
        "WHERE s.id = %(s)s UNION ALL SELECT c.city_id, g.code FROM staff_grids sg JOIN grids g ON "
        "g.id = sg.grid_id JOIN admin_units c ON c.id = g.community_id WHERE sg.staff_id = %(s)s",
        {"s": staff_id}).all()
    return [(int(city), str(code)) for city, code in rows]


def staff_grids(conn: Connection, staff_id: int) -> list[tuple[str, str]]:
    """A staff member's grids as ``(code, duty)``, those they patrol as a member first."""
    rows = conn.exec_driver_sql(
        "SELECT g.code, sg.duty FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id WHERE sg.staff_id = %(s)s "
        "ORDER BY sg.duty = 'member' DESC, g.code", {"s": staff_id}).all()
    return [(str(c), str(d)) for c, d in rows]
