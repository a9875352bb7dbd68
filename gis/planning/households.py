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

from dataclasses import dataclass

from gis.errors import InputError
from gis.files import Table, field_named, refuse
from gis.geo import coords
from gis.geo.households import parse_count, parse_osm_ref

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
            households = parse_count(cell("households"), where=f"row {number}: households", optional=True)
            if households is None:
                raise InputError(f"row {number}: households is empty")
            residents = parse_count(cell("residents"), where=f"row {number}: residents", optional=True)
            if cell("osm_id"):
                kind, osm_id = parse_osm_ref(cell("osm_id"), where=f"row {number}")
                rows.append(HouseholdRow(number, households, residents, osm_type=kind, osm_id=osm_id))
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
