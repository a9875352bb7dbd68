"""A bounding box as a query gives it: ``minlon,minlat,maxlon,maxlat`` in WGS-84."""

from __future__ import annotations

from gis.errors import InputError

BBox = tuple[float, float, float, float]


def parse_bbox(raw: str) -> BBox:
    """``minlon,minlat,maxlon,maxlat`` in WGS-84 (RFC 7946 order), or :class:`InputError` saying what is wrong."""
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) != 4:
        raise InputError(f"bbox needs four numbers minlon,minlat,maxlon,maxlat; got {len(parts)} value(s)")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"bbox values must be numbers; got {raw!r}") from None
    values = (minx, miny, maxx, maxy)
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise InputError("bbox values must be finite numbers")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise InputError("bbox longitudes must lie within -180..180")
    if not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InputError("bbox latitudes must lie within -90..90")
    if minx > maxx or miny > maxy:
        raise InputError("bbox must be minlon,minlat,maxlon,maxlat with min ≤ max (west,south,east,north)")
    return values
