"""Store a city's staff register (``gridpatrol import-staff``): staff, their grids, their duty roster, their users.

All or nothing, in the caller's transaction: every row is checked first (:func:`gis.access.register.check_register`)
and one bad row stores nothing. Set-based, so that Siping's 6,366 grid members load in seconds. A member already
stored (same name and phone in the city) is updated: their role and unit, and their grids and roster replaced by
the register's. A row with a username gets a user, unless that user exists; a new user has no password but a
one-time setup code (migration 0020), returned here for the caller to hand over once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy.engine import Connection

from gis.access.register import USER_ROLE, Lookups, StaffRow, check_register
from gis.files import read_table
from gis.planning.store.city import find_city

SETUP_DAYS = 30


def setup_code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass
class StaffImport:
    city: str
    file: str
    rows: int = 0
    new: int = 0
    updated: int = 0
    grids_linked: int = 0
    roster_slots: int = 0
    users_new: int = 0
    users_existing: int = 0
    notes: list[str] = field(default_factory=list)
    setup_codes: list[tuple[str, str, str, str]] = field(default_factory=list, repr=False)
    """(username, name, code, valid until): what each new user signs in with the first time. Never stored."""

    def lines(self) -> list[str]:
        out = [f"{self.file} for {self.city}: {self.rows:,} staff ({self.new:,} new, {self.updated:,} updated), "
               f"{self.grids_linked:,} grid link(s), {self.roster_slots:,} duty slot(s), {self.users_new:,} new "
               "user(s)"
               + (f", {self.users_existing} existing user(s) left as they are" if self.users_existing else "")]
        out += [f"  note: {n}" for n in self.notes]
        return out


def _lookups(conn: Connection, city_id: int) -> Lookups:
    grids = frozenset(conn.exec_driver_sql(
        "SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = %(c)s",
        {"c": city_id}).scalars())
    units = {str(code): str(level) for code, level in conn.exec_driver_sql(
        "SELECT code, level FROM admin_units WHERE city_id = %(c)s AND code IS NOT NULL", {"c": city_id})}
    chiefs = {str(code): (str(name), str(phone or "")) for code, name, phone in conn.exec_driver_sql(
        "SELECT g.code, s.name, s.phone FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id "
        "JOIN grids g ON g.id = sg.grid_id JOIN admin_units c ON c.id = g.community_id "
        "WHERE sg.duty = 'chief' AND c.city_id = %(c)s", {"c": city_id})}
    usernames: dict[str, tuple[str, str] | None] = {
        str(u): ((str(n), str(p or "")) if n is not None else None) for u, n, p in conn.exec_driver_sql(
            "SELECT lower(u.username), s.name, s.phone FROM users u LEFT JOIN staff s ON s.id = u.staff_id")}
    return Lookups(grids=grids, units=units, chiefs=chiefs, usernames=usernames)


def import_staff(conn: Connection, path: str | Path, *, city: str, now: datetime | None = None) -> StaffImport:
    """Check every row of the register at ``path``, then store it whole; see the module docstring."""
    row = find_city(conn, city)
    table = read_table(path)
    rows = check_register(table, _lookups(conn, row.id))
    report = StaffImport(city=row.name_en or row.name, file=Path(path).name, rows=len(rows))
    if table.note:
        report.notes.append(table.note)
    defaults = sum(1 for r in rows if r.grid_duty_default)
    if defaults:
        report.notes.append(f"{defaults} row(s) on a grid gave no duty days or hours: on duty every day "
                            "08:00–20:00 assumed")
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        _store(cur, rows, row.id, report, now or datetime.now(UTC))
    finally:
        cur.close()
    return report


def _store(cur: Any, rows: list[StaffRow], city_id: int, report: StaffImport, now: datetime) -> None:
    cur.execute("""
        CREATE TEMP TABLE stage_staff (n int, name text, phone text, role text, unit text, unit_level text,
            duty text, username text, weekdays int[], starts time, ends time, staff_id int) ON COMMIT DROP""")
    execute_values(cur, "INSERT INTO stage_staff (n, name, phone, role, unit, unit_level, duty, username, weekdays, "
                        "starts, ends) VALUES %s",
                   [(r.row, r.name, r.phone, r.role, r.unit, r.unit_level, r.duty, r.username, list(r.weekdays),
                     r.starts, r.ends) for r in rows], page_size=2000)
    # where each works: a grid's community, or the unit itself
    cur.execute("""
        ALTER TABLE stage_staff ADD COLUMN unit_id int, ADD COLUMN grid_id int;
        UPDATE stage_staff s SET grid_id = g.id, unit_id = g.community_id FROM grids g
        WHERE s.unit_level = 'grid' AND g.code = s.unit;
        UPDATE stage_staff s SET unit_id = u.id FROM admin_units u
        WHERE s.unit_level <> 'grid' AND u.code = s.unit AND u.city_id = %(c)s""", {"c": city_id})
    cur.execute("""
        UPDATE stage_staff s SET staff_id = m.id FROM (
            SELECT DISTINCT ON (x.name, coalesce(x.phone, '')) x.id, x.name, coalesce(x.phone, '') AS phone
            FROM staff x JOIN admin_units u ON u.id = x.unit_id WHERE coalesce(u.city_id, u.id) = %(c)s
            ORDER BY x.name, coalesce(x.phone, ''), x.id) m
        WHERE m.name = s.name AND m.phone = s.phone""", {"c": city_id})
    cur.execute("""
        UPDATE staff x SET role = s.role, unit_id = s.unit_id, phone = nullif(s.phone, ''), active = true
        FROM stage_staff s WHERE x.id = s.staff_id""")
    report.updated = cur.rowcount
    cur.execute("""
        WITH made AS (
            INSERT INTO staff (name, role, phone, unit_id)
            SELECT name, role, nullif(phone, ''), unit_id FROM stage_staff WHERE staff_id IS NULL ORDER BY n
            RETURNING id, name, coalesce(phone, '') AS phone)
        UPDATE stage_staff s SET staff_id = made.id FROM made WHERE s.staff_id IS NULL AND made.name = s.name
          AND made.phone = s.phone""")
    report.new = cur.rowcount
    cur.execute("DELETE FROM staff_grids WHERE staff_id IN (SELECT staff_id FROM stage_staff)")
    cur.execute("DELETE FROM duty_roster WHERE staff_id IN (SELECT staff_id FROM stage_staff)")
    cur.execute("INSERT INTO staff_grids (staff_id, grid_id, duty) SELECT staff_id, grid_id, duty FROM stage_staff "
                "WHERE grid_id IS NOT NULL")
    report.grids_linked = cur.rowcount
    cur.execute("""
        INSERT INTO duty_roster (staff_id, grid_id, weekday, starts, ends)
        SELECT s.staff_id, s.grid_id, d, s.starts, s.ends FROM stage_staff s, unnest(s.weekdays) AS d
        WHERE s.grid_id IS NOT NULL""")
    report.roster_slots = cur.rowcount
    _users(cur, city_id, report, now)


def _users(cur: Any, city_id: int, report: StaffImport, now: datetime) -> None:
    cur.execute("""
        SELECT s.username, s.name, s.role, s.unit_level, s.unit, s.staff_id FROM stage_staff s
        WHERE s.username IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users u WHERE lower(u.username) = s.username)
        ORDER BY s.n""")
    new = cur.fetchall()
    cur.execute("SELECT count(*) FROM stage_staff s WHERE s.username IS NOT NULL")
    report.users_existing = int(cur.fetchone()[0]) - len(new)
    until = now + timedelta(days=SETUP_DAYS)
    values = []
    for username, name, role, level, unit, staff_id in new:
        code = secrets.token_urlsafe(12)  # 96 bits
        report.setup_codes.append((username, name, code, until.date().isoformat()))
        values.append((username, name, "!", USER_ROLE.get(role, "grid_member"), level, unit, city_id, staff_id,
                       setup_code_hash(code), until))
    execute_values(cur, """
        INSERT INTO users (username, display_name, password_hash, role, unit_level, unit_code, city_id, staff_id,
                           setup_code_hash, setup_expires) VALUES %s""", values, page_size=2000)
    report.users_new = len(values)
