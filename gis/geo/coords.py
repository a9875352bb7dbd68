"""Coordinates as phones and Chinese maps give them: WGS-84, GCJ-02 (Amap, Tencent, most apps) or BD-09 (Baidu).

Storage is WGS-84. GCJ-02 and BD-09 are the published obfuscations of WGS-84 (offsets of up to several hundred
metres); going back is done with prcoords' iterative ("bored") inverses. A round trip lands within 5 mm for GCJ-02
and 2 cm for BD-09 (the worst of 20,000 random points in mainland China; tests/gis/test_properties.py checks it),
well below the obfuscation's own noise and a phone's GPS. Outside mainland China GCJ-02 equals WGS-84, as the apps
do it.
"""

from __future__ import annotations

import math

import prcoords

from gis.errors import InputError

SYSTEMS = {"wgs84": "WGS-84 (GPS)", "gcj02": "GCJ-02 (Amap, Tencent, most Chinese apps)", "bd09": "BD-09 (Baidu)"}
ALIASES = {"wgs84": "wgs84", "wgs-84": "wgs84", "epsg:4326": "wgs84", "4326": "wgs84", "gps": "wgs84",
           "gcj02": "gcj02", "gcj-02": "gcj02", "bd09": "bd09", "bd-09": "bd09", "bd09ll": "bd09"}


def system(name: str) -> str:
    """The canonical name of a coordinate system, or :class:`InputError` listing the accepted ones."""
    key = ALIASES.get(str(name).strip().lower())
    if key is None:
        raise InputError(f"unknown coordinate system {name!r}: use one of {', '.join(SYSTEMS)}")
    return key


def check_lonlat(lon: float, lat: float) -> None:
    if not (isinstance(lon, int | float) and isinstance(lat, int | float)) or isinstance(lon, bool):
        raise InputError("coordinates must be numbers: [longitude, latitude]")
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InputError("coordinates must be finite numbers (no NaN or infinity)")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"[{lon}, {lat}] is out of range: longitude -180..180, latitude -90..90, in that order")


def _converted(point: prcoords.Coords, lon: float, lat: float, kind: str, into: str) -> tuple[float, float]:
    """A converted point as ``(lon, lat)``, or :class:`InputError` when the shift carried it off the globe (a
    BD-09 point at a pole or the antimeridian: Baidu's offset applies everywhere, and no real one lies there)."""
    out = (float(point.lon), float(point.lat))
    if not (-180 <= out[0] <= 180 and -90 <= out[1] <= 90):
        raise InputError(f"[{lon}, {lat}] in {kind} has no place in {into}: it lies at the edge of the globe, "
                         "where no map of that system draws anything")
    return out


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """``(lon, lat)`` in ``crs`` (a name :func:`system` accepts) as WGS-84 ``(lon, lat)``."""
    check_lonlat(lon, lat)
    kind = system(crs)
    if kind == "wgs84":
        return float(lon), float(lat)
    point = prcoords.Coords(lat, lon)
    if not prcoords.sanity_in_china_p(point):  # GCJ-02 is WGS-84 there; BD-09 keeps only Baidu's own shift
        wgs = point if kind == "gcj02" else prcoords.bd_gcj(point)
    else:
        wgs = prcoords.gcj_wgs_bored(point) if kind == "gcj02" else prcoords.bd_wgs_bored(point)
    return _converted(wgs, lon, lat, kind, "wgs84")


def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """WGS-84 ``(lon, lat)`` as ``crs`` (for clients that show GCJ-02 or BD-09 maps)."""
    check_lonlat(lon, lat)
    kind = system(crs)
    if kind == "wgs84":
        return float(lon), float(lat)
    point = prcoords.Coords(lat, lon)
    if not prcoords.sanity_in_china_p(point):  # as above, without prcoords' warning on every call
        out = point if kind == "gcj02" else prcoords.gcj_bd(point)
    else:
        out = prcoords.wgs_gcj(point) if kind == "gcj02" else prcoords.wgs_bd(point)
    return _converted(out, lon, lat, "wgs84", kind)


def point_from_geojson(geometry: object) -> tuple[float, float]:
    """``(lon, lat)`` of a GeoJSON Point, or :class:`InputError` saying what is wrong with it."""
    if not isinstance(geometry, dict):
        raise InputError("location must be a GeoJSON Point: {\"type\": \"Point\", \"coordinates\": [lon, lat]}")
    if geometry.get("type") != "Point":
        raise InputError(f"location must be a GeoJSON Point; got type {geometry.get('type')!r}")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list | tuple) or len(coords) not in (2, 3):
        raise InputError("a Point's coordinates are [longitude, latitude]")
    lon, lat = coords[0], coords[1]
    if lon is None or lat is None:
        raise InputError("a Point's coordinates are missing: give [longitude, latitude]")
    check_lonlat(lon, lat)
    return float(lon), float(lat)
