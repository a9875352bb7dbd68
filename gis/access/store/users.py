"""Users, their jurisdiction, and the audit log.

Every user has one **role** and is bound to one **unit**: a grid, community, street, district or city (an admin may
be bound to none: every city). Unit codes nest (district ``320102`` ⊃ street ``320102001`` ⊃ community
``320102001001`` ⊃ grid ``320102001001001``), so the jurisdiction below a city is a code prefix: a unit, grid or
event belongs to it when its code starts with the prefix. A city-level user sees the whole city (by its id).

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile). A reset bumps
``password_version``; tokens carry it, so a reset signs the user out everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from gis.access.scope import Scope, User, _check_username, check_password
from gis.errors import ConflictError, InputError, NotFoundError
from gis.vocabulary import USER_ROLES

HASHER = PasswordHasher()


_COLUMNS = ("id, username, display_name, role, unit_level, city_id, unit_code, staff_id, department_code, "
            "password_version, active")


def _user(row: Sequence[Any]) -> User:
    uid, name, display, role, level, city_id, code, staff_id, department, version, active = row
    prefix = code if level not in ("all", "city") else None
    return User(uid, name, display, role, Scope(level, city_id, prefix), code, staff_id, department, version, active)


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
        from gis.planning.store.city import find_city
        try:
            city = find_city(conn, unit)
        except NotFoundError:
            raise NotFoundError(f"no grid, unit or city {unit!r}: give a grid, community, street or district code "
                                "or a city's name") from None
        return "city", city.id, city.code
    return row


def create_user(conn: Connection, username: str, password: str, role: str, *, unit: str | None = None,
                display_name: str = "", staff_id: int | None = None, department: str | None = None) -> User:
    """A new user. ``unit``: a grid, community, street or district code, or a city's name (``None``: every city,
    for an admin only)."""
    name = _check_username(username)
    if role not in USER_ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(USER_ROLES)}")
    check_password(password)
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


def set_password(conn: Connection, username: str, password: str) -> User:
    """A new password; every token issued before stops working."""
    check_password(password)
    row = conn.exec_driver_sql(
        "UPDATE users SET password_hash = %(h)s, password_version = password_version + 1, "
        f"password_changed_at = now() WHERE lower(username) = lower(%(n)s) RETURNING {_COLUMNS}",
        {"h": HASHER.hash(password), "n": username.strip()}).first()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return _user(row)


def set_active(conn: Connection, username: str, active: bool) -> User:
    row = conn.exec_driver_sql(
        "UPDATE users SET active = %(a)s, password_version = password_version + 1 "
        f"WHERE lower(username) = lower(%(n)s) RETURNING {_COLUMNS}", {"a": active, "n": username.strip()}).first()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return _user(row)


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user, when the password is theirs and they are active; else ``None`` (never says which was wrong)."""
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
        conn.exec_driver_sql("UPDATE users SET password_hash = %(h)s WHERE id = %(i)s",
                             {"h": HASHER.hash(password), "i": user.id})
    return user if user.active else None


def set_first_password(conn: Connection, username: str, code: str, password: str) -> User | None:
    """A user made from a staff register sets their first password with their one-time setup code (migration
    0020); the code is spent. ``None`` when the name, the code or its date is wrong (never says which)."""
    check_password(password)
    row = conn.exec_driver_sql(
        "SELECT id, setup_code_hash FROM users WHERE lower(username) = lower(%(n)s) AND setup_code_hash IS NOT NULL "
        "AND setup_expires > now() AND active", {"n": username.strip()[:64]}).first()
    given = hashlib.sha256(code.strip().encode()).hexdigest()
    if row is None or not hmac.compare_digest(str(row[1]), given):
        return None
    found = conn.exec_driver_sql(
        "UPDATE users SET password_hash = %(h)s, password_version = password_version + 1, password_changed_at = "
        f"now(), setup_code_hash = NULL, setup_expires = NULL WHERE id = %(i)s RETURNING {_COLUMNS}",
        {"h": HASHER.hash(password), "i": row[0]}).one()
    return _user(found)


def get_user(conn: Connection, user_id: int) -> User | None:
    row = conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM users WHERE id = %(i)s", {"i": user_id}).first()
    return _user(row) if row is not None else None


def list_users(conn: Connection) -> list[User]:
    rows = conn.exec_driver_sql(f"SELECT {_COLUMNS} FROM users ORDER BY username").all()
    return [_user(r) for r in rows]


def known_signing_key(conn: Connection) -> str | None:
    """The key tokens are signed with, when it was made (a read: a replica can answer it)."""
    found = conn.exec_driver_sql("SELECT value FROM service_keys WHERE name = 'token'").scalar()
    return str(found) if found is not None else None


def signing_key(conn: Connection) -> str:
    """The key tokens are signed with: made once, kept in the database, shared by every worker process."""
    conn.exec_driver_sql("INSERT INTO service_keys (name, value) VALUES ('token', %(v)s) ON CONFLICT DO NOTHING",
                         {"v": secrets.token_urlsafe(48)})
    return str(conn.exec_driver_sql("SELECT value FROM service_keys WHERE name = 'token'").scalar_one())


