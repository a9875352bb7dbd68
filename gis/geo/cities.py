"""A city's settings: who it is (its GB/T 2260 code, or none outside China) and what to assume about its data.

Settings are data, kept in the database (``city_settings``, :mod:`gis.planning.store.cities`) and given on the
command line (``gridpatrol city add NAME --code 220300 …``); nothing here knows any particular city. This module
checks the settings and fills what was left out:

* the official name and the district codes come from the GB/T 2260 table (:mod:`gis.geo.gb2260`);
* a place with no code and no Chinese name in the table is **outside China**: its districts get synthetic codes
  beginning with 99 when it is divided (a prefix no province uses), and the import report says so;
* the household estimate assumes ``default_storeys`` for an untyped building with no ``building:levels`` and
  ``m2_per_household`` of floor area per household (:mod:`gis.geo.households`), and the report says what it assumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gis.errors import InputError
from gis.geo import gb2260
from gis.geo.households import FLOOR_AREA_PER_HOUSEHOLD_M2

KEY = re.compile(r"^[\w-]{1,40}$")
HAN = re.compile(r"[\u3400-\u9fff]")
STOREYS = (1, 60)
M2_PER_HOUSEHOLD = (20.0, 500.0)


@dataclass(frozen=True)
class City:
    """A city (市) and what an import assumes about it."""

    key: str
    """The short handle the commands take (``siping``); the name and English name work too."""
    name: str
    name_en: str
    code: str | None
    """GB/T 2260 code of the city (``220300``); ``None`` outside China."""
    district_codes: dict[str, str] = field(default_factory=dict)
    """Districts mapped by hand: name as OSM spells it → 6-digit code (the rest are matched by name)."""
    default_storeys: int = 6
    """Storeys assumed for an untyped building with no ``building:levels``: 6 suits central Chinese cities."""
    m2_per_household: float = FLOOR_AREA_PER_HOUSEHOLD_M2
    timezone: str = "Asia/Shanghai"

    @property
    def in_china(self) -> bool:
        return self.code is not None

    def division(self) -> gb2260.Division | None:
        """The city's unit in GB/T 2260 (``None`` outside China, or for a code newer than the table)."""
        return gb2260.division(self.code) if self.code else None

    def assumptions(self) -> list[str]:
        """What an import of this city assumes, in words, for its report."""
        codes = (f"district codes from {gb2260.SOURCE}, matched by name under {self.name} ({self.code})"
                 if self.code else "outside China: no GB/T 2260 code, so districts get synthetic codes beginning "
                                   "with 99 when divided")
        return [f"untyped buildings without building:levels have {self.default_storeys} storeys",
                f"{self.m2_per_household:g} m² of floor area per household", codes]


def city_from_options(key: str, *, code: str | None = None, name: str | None = None, name_en: str | None = None,
                      default_storeys: int | None = None, m2_per_household: float | None = None,
                      timezone: str | None = None, districts: dict[str, str] | None = None,
                      outside_china: bool = False, base: City | None = None) -> City:
    """A city's settings from what was given, on top of ``base`` (its stored settings) when there are any.

    The code comes from ``code``, else from ``base``, else from GB/T 2260 when ``name`` (or ``key``) is a
    Chinese city's name there. A new city with none of these must be said to be ``outside_china``: codes are
    stable identifiers, and a Chinese city imported by its pinyin alone would get synthetic ones.
    """
    key = key.strip()
    if not KEY.match(key):
        raise InputError(f"city {key!r}: a city's handle is 1–40 letters, digits, '-' or '_' (e.g. siping)")
    if base is None:
        if code is None:
            han_name = next((n for n in (name, key) if n and HAN.search(n)), None)
            code = gb2260.find_city(han_name).code if han_name else None
            if code is None and not outside_china:
                raise InputError(f"city {key!r} is new: give its GB/T 2260 code (--code 220300) or its Chinese "
                                 "name (--name 四平市); for a place outside China, say --outside-china")
        elif outside_china:
            raise InputError(f"--outside-china and --code {code}: a GB/T 2260 code is a place in China; give one")
        found = gb2260.city_division(code) if code else None
        name = name or (found.name if found else key)
        plain = key.replace("-", " ").replace("_", " ").title() if key.isascii() else name
        base = City(key=key, name=name, name_en=name_en or plain, code=code)
    elif code is not None:
        base = replace(base, code=code)
    found = gb2260.city_division(base.code) if base.code else None
    hand = {**base.district_codes, **(districts or {})}
    if hand and found is None:
        raise InputError("--district maps a district to a GB/T 2260 code: give the city's own code (--code) first")
    city = replace(base, key=key, name=name or base.name, name_en=name_en or base.name_en,
                   district_codes=gb2260.check_manual(found, hand) if found else {},
                   default_storeys=default_storeys if default_storeys is not None else base.default_storeys,
                   m2_per_household=m2_per_household if m2_per_household is not None else base.m2_per_household,
                   timezone=timezone or base.timezone)
    check_city(city)
    return city


def check_city(city: City) -> None:
    """Refuse settings no import could use, saying which option to fix."""
    low, high = STOREYS
    if not low <= city.default_storeys <= high:
        raise InputError(f"--default-storeys {city.default_storeys}: give {low}–{high}")
    low_m2, high_m2 = M2_PER_HOUSEHOLD
    if not low_m2 <= city.m2_per_household <= high_m2:
        raise InputError(f"--m2-per-household {city.m2_per_household:g}: give {low_m2:g}–{high_m2:g} m²")
    try:
        ZoneInfo(city.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--timezone {city.timezone!r}: not a time zone name such as Asia/Shanghai") from None
    if not city.name.strip() or not city.name_en.strip():
        raise InputError("a city needs a name and an English name")
