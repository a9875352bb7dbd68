"""Users as the service sees them, and their jurisdiction (a city and a code prefix), with no database.

Unit codes nest (district ``320102`` ⊃ street ``320102001`` ⊃ community ``320102001001`` ⊃ grid
``320102001001001``), so the jurisdiction below a city is a code prefix: a unit, grid or event belongs to it
when its code starts with the prefix. A city-level user sees the whole city (by its id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gis.errors import InputError

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

    @property
    def department_desk(self) -> str | None:
        """The department whose cases a department user works (those gone or escalated to it, or that it assists);
        ``None`` for every other role, whose cases follow their unit."""
        return self.department if self.role == "department" else None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
                "unit": {"level": self.scope.level, "code": self.unit_code, "city_id": self.scope.city_id},
                "staff_id": self.staff_id, "department": self.department, "active": self.active}


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
