"""The cities gridpatrol knows, with their GB/T 2260 administrative division codes.

OSM names districts but carries no codes, so the codes come from here (``../shared/DOMAIN.md``). To import a new
city, add it to :data:`CITIES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gis.errors import UnknownCityError


@dataclass(frozen=True)
class City:
    """A city (市) and the 6-digit codes of the districts (区/县) gridpatrol may meet in its OSM data."""

    key: str
    name: str
    name_en: str
    code: str | None
    district_codes: dict[str, str] = field(default_factory=dict)
    """District name as OSM spells it (``name`` tag) → GB/T 2260 code."""
    default_levels: int = 6
    """Storeys assumed for an untyped building with no ``building:levels``: 6 suits central Chinese cities."""


CITIES: dict[str, City] = {
    city.key: city
    for city in (
        City("nanjing", "南京市", "Nanjing", "320100", {"玄武区": "320102", "秦淮区": "320104", "鼓楼区": "320106"}),
        City("beijing", "北京市", "Beijing", "110000", {"海淀区": "110108"}),
        # Not a Chinese city: no GB/T 2260 code. It is the scale data set.
        City("liechtenstein", "Liechtenstein", "Liechtenstein", None, default_levels=2),
    )
}


def city_from_name(name: str) -> City:
    """Look a city up by key, Chinese name or English name (case-insensitive)."""
    wanted = name.strip().casefold()
    for city in CITIES.values():
        if wanted in {city.key, city.name.casefold(), city.name_en.casefold()}:
            return city
    known = ", ".join(sorted(CITIES))
    raise UnknownCityError(f"unknown city {name!r}; known cities: {known} (add one in gis/geo/cities.py)")
