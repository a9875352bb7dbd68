"""The demo's accounts: one per role for a city, with random passwords printed once."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.engine import Engine

from gis.access.store.users import create_user


def seed_demo_users(engine: Engine, city_id: int) -> list[tuple[str, str, str, str]]:
    """The demo's accounts, one per role, for a city: ``(username, role, unit, password)`` of those made now
    (passwords are random; existing accounts keep theirs). The grid member is the synthetic member of the first
    grid, the department user the first department's."""
    with engine.connect() as conn:
        city = conn.exec_driver_sql("SELECT name FROM admin_units WHERE id = %(c)s", {"c": city_id}).scalar_one()
        district = conn.exec_driver_sql("SELECT code FROM admin_units WHERE city_id = %(c)s AND level = 'district' "
                                        "AND code IS NOT NULL ORDER BY code LIMIT 1", {"c": city_id}).scalar()
        member = conn.exec_driver_sql(
            "SELECT g.code, sg.staff_id FROM grids g JOIN admin_units c ON c.id = g.community_id "
            "JOIN staff_grids sg ON sg.grid_id = g.id AND sg.duty = 'member' WHERE c.city_id = %(c)s "
            "ORDER BY g.code LIMIT 1", {"c": city_id}).first()
        department = conn.exec_driver_sql("SELECT code FROM departments ORDER BY code LIMIT 1").scalar()
        taken = {r[0] for r in conn.exec_driver_sql("SELECT lower(username) FROM users")}
    wanted: list[tuple[str, str, str | None, dict[str, Any]]] = [
        ("admin", "admin", None, {}), ("planner", "planner", city, {}), ("dispatcher", "dispatcher", city, {}),
        ("leader", "leader", city, {}), ("screen", "screen", city, {})]
    if district:
        wanted.append(("leader-district", "leader", district, {}))
    if member:
        wanted.append(("member", "grid_member", member[0], {"staff_id": member[1]}))
    if department:
        wanted.append(("department", "department", city, {"department": department}))
    made = []
    for name, role, unit, extra in wanted:
        if name in taken:
            continue
        password = secrets.token_urlsafe(9)
        with engine.begin() as conn:
            create_user(conn, name, password, role, unit=unit, display_name=f"demo {role}", **extra)
        made.append((name, role, unit or "every city", password))
    return made
