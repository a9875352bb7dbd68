"""A city's staff register (a CSV or XLSX, as the city keeps it): its rows checked one by one, with no database.

Columns (English or Chinese headers; the first row names them):

========== ======================== ==================================================================
column     also                     what
========== ======================== ==================================================================
name       姓名                      required
phone      电话, 手机, 联系电话          digits, spaces, ``+``, ``-``
role       角色, 岗位                  ``grid_chief``/网格长, ``grid_member``/网格员, ``police``/社区民警, …
unit       网格编码, 单位编码, 编码, code  a grid's 15-digit code, or a community's, street's or district's
duty       职责                      on a grid: ``chief``, ``member`` or ``embedded`` (default from the role)
username   用户名, 账号                optional: a user is made for the row (its first password set with a code)
weekdays   值班日                    optional: ``1-5``, ``1,3,5`` (Monday = 1); default every day
hours      值班时间                   optional: ``08:00-18:00``; default 08:00–20:00
========== ======================== ==================================================================

A staff member is known by name and phone: the same register imported again updates them instead of adding them
twice. The lookups (:class:`Lookups`) say which codes exist; :func:`check_register` returns the rows or raises one
:class:`~gis.errors.InputError` listing every bad row (nothing is stored then).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time

from gis.access.scope import USERNAME_CHARS
from gis.errors import InputError
from gis.files import Table, field_named, refuse
from gis.vocabulary import GRID_DUTIES, STAFF_ROLES

ROLE_NAMES = {
    "网格长": "grid_chief", "网格员": "grid_member", "专职网格员": "grid_member", "兼职网格员": "grid_member",
    "社区民警": "police", "民警": "police", "辅警": "auxiliary_police", "法官": "judge", "调解员": "mediator",
    "人民调解员": "mediator", "律师": "lawyer", "综治中心": "centre_staff", "中心工作人员": "centre_staff",
    "部门": "department",
}
DUTY_NAMES = {"网格长": "chief", "网格员": "member", "下沉": "embedded", "派驻": "embedded"}
DEFAULT_DUTY = {"grid_chief": "chief", "grid_member": "member"}
USER_ROLE = {"centre_staff": "dispatcher", "department": "department"}
"""The role a staff member signs in with; every other staff role signs in as a grid member of their unit."""
DEFAULT_HOURS = (time(8), time(20))
COLUMNS = {
    "name": ("name", "姓名"), "phone": ("phone", "电话", "手机", "手机号", "联系电话"),
    "role": ("role", "角色", "岗位"), "unit": ("unit", "code", "网格编码", "单位编码", "编码", "所属网格"),
    "duty": ("duty", "职责"), "username": ("username", "用户名", "账号"),
    "weekdays": ("weekdays", "值班日"), "hours": ("hours", "值班时间"),
}
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")
HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*[-–~至]\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Lookups:
    """What the register's codes and usernames are checked against: the city's grids and units, the chiefs
    stored (grid code → the chief's name and phone), the usernames taken (→ the staff they belong to)."""

    grids: frozenset[str]
    units: dict[str, str]
    """code → level (community, street, district)."""
    chiefs: dict[str, tuple[str, str]] = field(default_factory=dict)
    usernames: dict[str, tuple[str, str] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class StaffRow:
    row: int
    name: str
    phone: str
    role: str
    unit: str
    unit_level: str
    duty: str | None
    username: str | None
    weekdays: tuple[int, ...]
    starts: time
    ends: time
    grid_duty_default: bool = False
    """On a grid with neither duty days nor hours given: the default roster was assumed."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.phone)



def _weekdays(text: str, row: int) -> tuple[int, ...]:
    if not text:
        return tuple(range(7))
    days: set[int] = set()
    for part in re.split(r"[,，、\s]+", text.strip()):
        span = re.fullmatch(r"([1-7])\s*[-–~至]\s*([1-7])", part)
        if span:
            low, high = int(span.group(1)), int(span.group(2))
            if low > high:
                raise InputError(f"row {row}: weekdays {text!r}: a span runs from the lower day (1-5)")
            days.update(range(low - 1, high))
        elif re.fullmatch(r"[1-7]", part):
            days.add(int(part) - 1)
        else:
            raise InputError(f"row {row}: weekdays {text!r}: give days 1–7 (Monday = 1) as 1-5 or 1,3,5")
    return tuple(sorted(days))


def _hours(text: str, row: int) -> tuple[time, time]:
    if not text:
        return DEFAULT_HOURS
    found = HOURS.match(text.strip())
    if not found:
        raise InputError(f"row {row}: hours {text!r}: give them as 08:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise InputError(f"row {row}: hours {text!r}: not times of a day")
    starts, ends = time(h1, m1), time(h2, m2)
    if not starts < ends:
        raise InputError(f"row {row}: hours {text!r}: a duty starts before it ends (split a night shift in two "
                         "rows)")
    return starts, ends


def check_register(table: Table, lookups: Lookups) -> list[StaffRow]:
    """Every row of the register checked (see the module docstring); one error naming every bad row."""
    columns = {key: field_named(table.columns, names) for key, names in COLUMNS.items()}
    missing = [key for key in ("name", "role", "unit") if columns[key] is None]
    if missing:
        raise InputError(f"the register needs the columns {', '.join(missing)} (has {', '.join(table.columns)})")
    problems: list[str] = []
    rows: list[StaffRow] = []
    seen: dict[tuple[str, str], int] = {}
    chiefs: dict[str, int] = {}
    usernames: dict[str, int] = {}
    for number, raw in enumerate(table.rows, start=2):
        def cell(key: str, raw: dict[str, str] = raw) -> str:
            column = columns[key]
            return raw.get(column, "").strip() if column else ""
        try:
            rows.append(_row(number, cell, lookups, seen, chiefs, usernames))
        except InputError as exc:
            problems.append(str(exc))
    refuse(problems, "the staff register")
    return rows


def _row(number: int, get: Callable[[str], str], lookups: Lookups, seen: dict[tuple[str, str], int],
         chiefs: dict[str, int], usernames: dict[str, int]) -> StaffRow:
    name = get("name")
    if not name or len(name) > 100:
        raise InputError(f"row {number}: a name of 1–100 characters is required")
    phone = re.sub(r"\s+", " ", get("phone"))
    if phone and not PHONE.match(phone):
        raise InputError(f"row {number}: phone {phone!r} is not a phone number")
    raw_role = get("role")
    role = ROLE_NAMES.get(raw_role, raw_role.lower())
    if role not in STAFF_ROLES:
        raise InputError(f"row {number}: role {raw_role!r} is unknown: use one of {', '.join(STAFF_ROLES)} (or "
                         f"网格长, 网格员, 社区民警, …)")
    unit = re.sub(r"\s", "", get("unit")).removesuffix(".0")
    if unit in lookups.grids:
        level = "grid"
    elif unit in lookups.units:
        level = lookups.units[unit]
    else:
        raise InputError(f"row {number}: unit {unit or '(empty)'} is no grid or unit of this city: give a grid's "
                         "15-digit code or a community's, street's or district's code")
    raw_duty = get("duty")
    duty = DUTY_NAMES.get(raw_duty, raw_duty.lower()) or (DEFAULT_DUTY.get(role, "embedded") if level == "grid"
                                                          else None)
    if level != "grid" and raw_duty:
        raise InputError(f"row {number}: a duty ({raw_duty}) is for a grid; {unit} is a {level}")
    if duty is not None and duty not in GRID_DUTIES:
        raise InputError(f"row {number}: duty {raw_duty!r} is unknown: use chief, member or embedded")
    key = (name, phone)
    if key in seen:
        raise InputError(f"row {number}: {name} ({phone or 'no phone'}) repeats row {seen[key]}")
    seen[key] = number
    if duty == "chief":
        if unit in chiefs:
            raise InputError(f"row {number}: grid {unit} has a chief already in row {chiefs[unit]}: one chief per "
                             "grid")
        stored = lookups.chiefs.get(unit)
        if stored is not None and stored != key:
            raise InputError(f"row {number}: grid {unit} has a chief already ({stored[0]}): one chief per grid; "
                             "change theirs in the register too")
        chiefs[unit] = number
    username = get("username").lower() or None
    if username is not None:
        if not 2 <= len(username) <= 64 or not set(username) <= USERNAME_CHARS:
            raise InputError(f"row {number}: username {username!r}: 2–64 characters of a–z, 0–9, '.', '_', '-', '@'")
        if role == "department":
            raise InputError(f"row {number}: a department's user names its department: make it with "
                             "gridpatrol users add NAME --role department --department CODE, not from the register")
        if username in usernames:
            raise InputError(f"row {number}: username {username} repeats row {usernames[username]}")
        taken = lookups.usernames.get(username, key)
        if taken != key:
            raise InputError(f"row {number}: username {username} is taken by another user")
        usernames[username] = number
    starts, ends = _hours(get("hours"), number)
    return StaffRow(number, name, phone, role, unit, level, duty, username, _weekdays(get("weekdays"), number),
                    starts, ends, grid_duty_default=level == "grid" and not get("hours") and not get("weekdays"))
