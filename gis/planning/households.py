"""A city's household register: real household and resident counts per building, checked row by row (no database).

Each row has ``households`` (户数) and, optionally, ``residents`` (人口, 人数), and names its building one way:

* ``osm_id`` (``way/123``): the OSM building;
* ``building_id`` (楼栋编码, ``ref``): the city's own building id (given with ``gridpatrol import-buildings``);
* ``lon`` and ``lat`` (经度, 纬度): a point, which goes to the building it lies in, else to the nearest within
  :data:`RADIUS_M` (in WGS-84, or GCJ-02 with ``--crs gcj02``).

Rows naming the same building add up (a register listed by entrance or unit). Rows that match no building are
reported, not refused; a malformed row refuses the whole file (nothing is stored), naming the row.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gis.errors import InputError
from gis.files import Table, field_named, refuse
from gis.geo import coords

RADIUS_M = 20.0
COLUMNS = {
    "households": ("households", "户数", "住户数"), "residents": ("residents", "人口", "人数", "常住人口"),
    "osm_id": ("osm_id", "osm"), "ref": ("building_id", "ref", "楼栋编码", "楼栋id"),
    "lon": ("lon", "lng", "longitude", "经度"), "lat": ("lat", "latitude", "纬度"),
}


@dataclass(frozen=True)
class HouseholdRow:
    row: int
    households: int
    residents: int | None
    osm_type: str | None = None
    osm_id: int | None = None
    ref: str | None = None
    lon: float | None = None
    lat: float | None = None


def _count(text: str, *, row: int, what: str) -> int | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"row {row}: {what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise InputError(f"row {row}: {what} {text!r} should be a whole number ≥ 0")
    return int(value)


def check_households(table: Table, *, crs: str | None = None) -> list[HouseholdRow]:
    """Every row checked; points converted to WGS-84 (``crs``: ``gcj02``, ``bd09`` or none)."""
    cols = {k: field_named(table.columns, names) for k, names in COLUMNS.items()}
    if cols["households"] is None:
        raise InputError(f"the register needs a households (户数) column (has {', '.join(table.columns)})")
    if cols["osm_id"] is None and cols["ref"] is None and (cols["lon"] is None or cols["lat"] is None):
        raise InputError("the register names buildings by osm_id, building_id (楼栋编码), or lon and lat (经度, 纬度)")
    system = coords.system(crs) if crs else "wgs84"
    rows: list[HouseholdRow] = []
    problems: list[str] = []
    for number, raw in enumerate(table.rows, start=2):
        def cell(key: str, raw: dict[str, str] = raw) -> str:
            column = cols[key]
            return raw.get(column, "").strip() if column else ""
        try:
            households = _count(cell("households"), row=number, what="households")
            if households is None:
                raise InputError(f"row {number}: households is empty")
            residents = _count(cell("residents"), row=number, what="residents")
            if cell("osm_id"):
                found = re.fullmatch(r"(way|relation|w|r)\s*/?\s*(\d+)", cell("osm_id"))
                if not found:
                    raise InputError(f"row {number}: osm_id {cell('osm_id')!r} should look like way/123")
                kind = {"w": "way", "r": "relation"}.get(found.group(1), found.group(1))
                rows.append(HouseholdRow(number, households, residents, osm_type=kind, osm_id=int(found.group(2))))
            elif cell("ref"):
                rows.append(HouseholdRow(number, households, residents, ref=cell("ref")))
            elif cell("lon") and cell("lat"):
                try:
                    lon, lat = float(cell("lon")), float(cell("lat"))
                except ValueError:
                    raise InputError(f"row {number}: lon/lat {cell('lon')!r}, {cell('lat')!r} are not numbers") \
                        from None
                try:
                    lon, lat = coords.to_wgs84(lon, lat, system)
                except InputError as exc:
                    raise InputError(f"row {number}: {exc}") from None
                rows.append(HouseholdRow(number, households, residents, lon=lon, lat=lat))
            else:
                raise InputError(f"row {number}: names no building (osm_id, building_id, or lon and lat)")
        except InputError as exc:
            problems.append(str(exc))
    refuse(problems, "the household register")
    return rows
