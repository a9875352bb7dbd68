"""Users, their jurisdiction, and the audit log.

Every user has one **role** and is bound to one **unit**: a grid, community, street, district or city (an admin may
be bound to none: every city). Unit codes nest (district ``320102`` ⊃ street ``320102001`` ⊃ community
``320102001001`` ⊃ grid ``320102001001001``), so the jurisdiction below a city is a code prefix: a unit, grid or
event belongs to it when its code starts with the prefix. A city-level user sees the whole city (by its id).

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile). A reset bumps
``password_version``; tokens carry it, so a reset signs the user out everywhere.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Engine

from gis.db.models import USER_ROLES
from gis.errors import ConflictError, InputError, NotFoundError

HASHER = PasswordHasher()
MIN_PASSWORD = 8
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")


@dataclass(frozen=True)
class Scope:
    """A jurisdiction: a city (``None``: every city) and, inside it, a code prefix (``None``: the whole city)."""

    level: str
    city_id: int | None = None
    prefix: str | None = None

    @property
    def everywhere(self) -> bool:
        return self.city_id is None

    def covers(self, city_id: int | None, code: str | None) -> bool:
        """Whether a thing in ``city_id`` with unit or grid code ``code`` lies inside."""
        if self.city_id is None:
            return True
        if city_id != self.city_id:
            return False
        return self.prefix is None or (code is not None and code.startswith(self.prefix))

    def narrow(self, code: str | None) -> str | None:
        """The code prefix to filter on when a request asks for ``code`` (``None``: no unit asked): the request's
        own code when it lies inside, the jurisdiction's when none was asked; ``NotInScope`` otherwise."""
        if code is None:
            return self.prefix
        if self.prefix is None or code.startswith(self.prefix):
            return code
        raise NotInScope(code)


class NotInScope(LookupError):
    """A code outside the user's jurisdiction (the API turns it into 403 or 404)."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    scope: Scope
    unit_code: str | None
    staff_id: int | None
    department: str | None
    password_version: int
    active: bool

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
                "unit": {"level": self.scope.level, "code": self.unit_code, "city_id": self.scope.city_id},
                "staff_id": self.staff_id, "department": self.department, "active": self.active}


_COLUMNS = ("id, username, display_name, role, unit_level, city_id, unit_code, staff_id, department_code, "
            "password_version, active")


def _user(row: Sequence[Any]) -> User:
    uid, name, display, role, level, city_id, code, staff_id, department, version, active = row
    prefix = code if level not in ("all", "city") else None
    return User(uid, name, display, role, Scope(level, city_id, prefix), code, staff_id, department, version, active)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InputError("a password has at most 1,024 characters")


def _check_username(username: str) -> str:
    name = username.strip().lower()
    if not 2 <= len(name) <= 64 or not set(name) <= USERNAME_CHARS:
        raise InputError("a username is 2–64 characters of a–z, 0–9, '.', '_', '-' or '@'")
    return name


def unit_by_code(conn: Connection, code: str) -> tuple[str, int, str] | None:
    """``(level, city_id, code)`` of the grid or administrative unit with ``code``, or ``None``."""
    row = conn.exec_driver_sql("SELECT 'grid', c.city_id, g.code FROM grids g JOIN admin_units c ON c.id = "
                               "g.community_id WHERE g.code = %(u)s UNION ALL SELECT level, coalesce(city_id, id), "
                               "code FROM admin_units WHERE code = %(u)s LIMIT 1", {"u": code}).first()
    return (str(row[0]), int(row[1]), str(row[2])) if row is not None else None


def resolve_unit(conn: Connection, unit: str | None) -> tuple[str, int | None, str | None]:
    """``(level, city_id, code)`` of a unit given by its code, or by a city's name (``None``: every city)."""
    if unit is None or unit.strip().lower() in ("", "all"):
        return "all", None, None
    unit = unit.strip()
    row = unit_by_code(conn, unit)
    if row is None:  # a city by name
        from gis.db.features import find_city
        try:
            city = find_city(conn, unit)
        except NotFoundError:
            raise NotFoundError(f"no grid, unit or city {unit!r}: give a grid, community, street or district code "
                                "or a city's name") from None
        return "city", city.id, city.code
    return row


def create_user(engine: Engine, username: str, password: str, role: str, *, unit: str | None = None,
                display_name: str = "", staff_id: int | None = None, department: str | None = None) -> User:
    """A new user. ``unit``: a grid, community, street or district code, or a city's name (``None``: every city,
    for an admin only)."""
    name = _check_username(username)
    if role not in USER_ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(USER_ROLES)}")
    check_password(password)
    with engine.begin() as conn:
        level, city_id, code = resolve_unit(conn, unit)
        if level == "all" and role != "admin":
            raise InputError(f"a {role} is bound to a unit: give --unit (a grid, community, street or district "
                             "code, or a city)")
        if role == "department" and department is None:
            raise InputError("a department user names their department (GET /categories lists them)")
        if department is not None and conn.exec_driver_sql(
                "SELECT 1 FROM departments WHERE code = %(d)s", {"d": department}).first() is None:
            raise NotFoundError(f"no department {department!r}")
        if staff_id is not None and conn.exec_driver_sql(
                "SELECT 1 FROM staff WHERE id = %(s)s", {"s": staff_id}).first() is None:
            raise NotFoundError(f"no staff member {staff_id}")
        if conn.exec_driver_sql("SELECT 1 FROM users WHERE lower(username) = %(n)s", {"n": name}).first():
            raise ConflictError(f"the username {name!r} is taken")
        row = conn.exec_driver_sql(
            "INSERT INTO users (username, display_name, password_hash, role, unit_level, unit_code, city_id, "
            f"staff_id, department_code) VALUES (%(n)s, %(d)s, %(h)s, %(r)s, %(l)s, %(u)s, %(c)s, %(s)s, %(dep)s) "
            f"RETURNING {_COLUMNS}",
            {"n": name, "d": display_name, "h": HASHER.hash(password), "r": role, "l": level, "u": code,
             "c": city_id, "s": staff_id, "dep": department}).one()
    return _user(row)


def set_password(engine: Engine, username: str, password: str) -> User:
    """A new password; every token issued before stops working."""
    check_password(password)
    with engine.begin() as conn:
        row = conn.exec_driver_sql(
            "UPDATE users SET password_hash = %(h)s, password_version = password_version + 1, "
            f"password_changed_at = now() WHERE lower(username) = lower(%(n)s) RETURNING {_COLUMNS}",
            {"h": HASHER.hash(password), "n": username.strip()}).first()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return _user(row)


def set_active(engine: Engine, username: str, active: bool) -> User:
    with engine.begin() as conn:
        row = conn.exec_driver_sql(
            "UPDATE users SET active = %(a)s, password_version = password_version + 1 "
            f"WHERE lower(username) = lower(%(n)s) RETURNING {_COLUMNS}", {"a": active, "n": username.strip()}).first()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return _user(row)


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """The user, when the password is theirs and they are active; else ``None`` (never says which was wrong)."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql(f"SELECT {_COLUMNS}, password_hash FROM users WHERE lower(username) = "
                                   "lower(%(n)s)", {"n": username.strip()[:64]}).first()
    if row is None:
        HASHER.hash(password[:1024])  # as slow as a real check: the answer's time does not say the name exists
        return None
    try:
        HASHER.verify(row[-1], password)
    except (VerificationError, InvalidHashError):
        return None
    user = _user(row[:-1])
    if HASHER.check_needs_rehash(row[-1]):
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE users SET password_hash = %(h)s WHERE id = %(i)s",
                                 {"h": HASHER.hash(password), "i": user.id})
    return user if user.active else None


def get_user(engine: Engine, user_id: int) -> User | None:
    with engine.connect() as conn:
        row = conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM users WHERE id = %(i)s", {"i": user_id}).first()
    return _user(row) if row is not None else None


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM users ORDER BY username").all()
    return [_user(r) for r in rows]


def signing_key(engine: Engine) -> str:
    """The key tokens are signed with: made once, kept in the database, shared by every worker process."""
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO service_keys (name, value) VALUES ('token', %(v)s) ON CONFLICT DO NOTHING",
                             {"v": secrets.token_urlsafe(48)})
        return str(conn.exec_driver_sql("SELECT value FROM service_keys WHERE name = 'token'").scalar_one())


AUDIT_FIELDS = ("username", "role", "action", "method", "path", "status", "subject", "client", "detail")


def audit(engine: Engine, entries: Sequence[dict[str, Any]]) -> None:
    """Append lines to the audit log: ``{username, role, action, method, path, status, subject, client, detail}``,
    in one statement however many (the service writes them in batches, a few hundred a second under load)."""
    if not entries:
        return
    rows = [{k: e.get(k) for k in AUDIT_FIELDS} for e in entries]
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO audit_log ({', '.join(AUDIT_FIELDS)}) SELECT {', '.join(AUDIT_FIELDS)} "
            "FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(username text, role text, action text, method text, "
            "path text, status int, subject text, client text, detail jsonb)", {"rows": json.dumps(rows)})


MAX_AUDIT_LINES = 10_000
"""The most lines one read of the audit log answers."""


def audit_entries(engine: Engine, *, subject: str | None = None, username: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_AUDIT_LINES:
        raise InputError(f"the limit is 1 to {MAX_AUDIT_LINES:,} lines")
    where: list[str] = ["true"]
    params: dict[str, Any] = {"limit": limit}
    if subject is not None:
        where.append("subject = %(s)s")
        params["s"] = subject
    if username is not None:
        where.append("username = %(u)s")
        params["u"] = username
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT at, username, role, action, method, path, status, subject, client, detail FROM audit_log "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %(limit)s", params).mappings().all()
    return [{**r, "at": r["at"].isoformat()} for r in rows]



def prune_audit(engine: Engine, before: datetime, *, chunk: int = 50_000,
                progress: Callable[[int], None] | None = None) -> int:
    """Delete the audit log's lines written before ``before``, oldest first, ``chunk`` lines a transaction (the
    service goes on writing meanwhile: no long lock, no transaction that grows with the log). ``progress`` is told
    each chunk's count. Answers how many were deleted; the pruning itself is written to the log."""
    if before > datetime.now(UTC):
        raise InputError(f"{before.isoformat()} is in the future: pruning up to it would delete lines being written "
                         "now; give a date in the past")
    deleted = 0
    while True:
        with engine.begin() as conn:
            n = conn.exec_driver_sql(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < %(b)s ORDER BY at "
                "LIMIT %(n)s)", {"b": before, "n": chunk}).rowcount
        deleted += n
        if progress is not None:
            progress(n)
        if n < chunk:
            break
    audit(engine, [{"username": None, "role": "system", "action": "prune", "subject": "audit_log",
                    "detail": {"before": before.isoformat(), "deleted": deleted}}])
    return deleted


def count_audit_before(engine: Engine, before: datetime) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM audit_log WHERE at < %(b)s", {"b": before}).scalar_one())


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
        ("leader", "leader", city, {})]
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
        create_user(engine, name, password, role, unit=unit, display_name=f"demo {role}", **extra)
        made.append((name, role, unit or "every city", password))
    return made
