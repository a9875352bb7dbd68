"""The demo's synthetic staff register: a chief and a member per grid, police and mediators per community."""

from __future__ import annotations

from datetime import time

from sqlalchemy.engine import Engine

from gis.planning.store.staff import _add


def seed_demo_staff(engine: Engine, city_id: int) -> dict[str, int]:
    """Give every grid, community and street of a city synthetic staff, unless it has some already."""
    with engine.begin() as conn:
        grids = conn.exec_driver_sql("""
            SELECT g.id, g.code, g.community_id FROM grids g JOIN admin_units c ON c.id = g.community_id
            WHERE c.city_id = %(c)s AND NOT EXISTS (SELECT 1 FROM staff_grids sg WHERE sg.grid_id = g.id)
            ORDER BY g.code""", {"c": city_id}).all()
        units = conn.exec_driver_sql("""
            SELECT u.id, u.code, u.level FROM admin_units u WHERE u.city_id = %(c)s
              AND u.level IN ('community', 'street') AND u.code IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM staff s WHERE s.unit_id = u.id) ORDER BY u.code""",
            {"c": city_id}).all()
        counts = {"grid_chief": 0, "grid_member": 0, "police": 0, "centre_staff": 0}
        police: dict[int, int] = {}
        for unit_id, code, level in units:
            centre = "社区" if level == "community" else "街道"
            _add(conn, f"{centre}综治中心 {code}", "centre_staff", unit_id)
            counts["centre_staff"] += 1
            if level == "community":
                police[unit_id] = _add(conn, f"社区民警 {code}", "police", unit_id)
                counts["police"] += 1
        for grid_id, code, community_id in grids:
            chief = _add(conn, f"网格长 {code}", "grid_chief", community_id)
            member = _add(conn, f"网格员 {code}", "grid_member", community_id)
            counts["grid_chief"] += 1
            counts["grid_member"] += 1
            conn.exec_driver_sql("INSERT INTO staff_grids (staff_id, grid_id, duty) VALUES (%(c)s, %(g)s, 'chief'), "
                                 "(%(m)s, %(g)s, 'member')", {"c": chief, "m": member, "g": grid_id})
            if community_id in police:
                conn.exec_driver_sql("INSERT INTO staff_grids (staff_id, grid_id, duty) VALUES (%(p)s, %(g)s, "
                                     "'embedded')", {"p": police[community_id], "g": grid_id})
            conn.exec_driver_sql(
                "INSERT INTO duty_roster (staff_id, grid_id, weekday, starts, ends) "
                "SELECT %(m)s, %(g)s, d, %(a)s, %(b)s FROM generate_series(0, 6) d",
                {"m": member, "g": grid_id, "a": time(8), "b": time(20)})
        for table in ("staff", "staff_grids", "duty_roster"):  # fresh rows: give the planner their statistics
            conn.exec_driver_sql(f"ANALYZE {table}")
    return counts
