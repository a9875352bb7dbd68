"""OGC API — Features parameters with no database: the coordinate reference systems served (Part 2), ``bbox`` with
its ``bbox-crs``, ``datetime`` (an instant or an interval, RFC 3339), each refused with a BadRequestError saying
what to send (the API answers 400 in the OGC exception format)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pyproj import Transformer

from gis.errors import BadRequestError

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class OutputCrs:
    uri: str
    srid: int
    lat_first: bool
    """EPSG's axis order for geographic CRSs is latitude first (OGC API Features Part 2, /req/crs/crs-action)."""
    decimals: int


CRSES: dict[str, OutputCrs] = {c.uri: c for c in (
    OutputCrs(CRS84, 4326, False, 7),
    OutputCrs("http://www.opengis.net/def/crs/EPSG/0/4326", 4326, True, 7),
    OutputCrs("http://www.opengis.net/def/crs/EPSG/0/4490", 4326, True, 7),  # CGCS2000: WGS-84 for map purposes
    OutputCrs("http://www.opengis.net/def/crs/EPSG/0/3857", 3857, False, 2),
)}
"""What the service serves. CGCS2000 (China's geodetic system, Tianditu's) differs from WGS-84 by centimetres: the
service hands WGS-84 coordinates out as CGCS2000, an approximation far below any map's precision."""


def output_crs(uri: str | None) -> OutputCrs:
    if uri is None or uri == "":
        return CRSES[CRS84]
    found = CRSES.get(uri.strip("<>"))
    if found is None:
        raise BadRequestError(f"crs {uri!r} is not supported: use one of {', '.join(CRSES)}")
    return found


def parse_bbox(text: str | None, bbox_crs: str | None = None) -> tuple[float, float, float, float] | None:
    """``minx,miny,maxx,maxy`` (or with heights: 6 numbers) in ``bbox_crs`` → (west, south, east, north) in CRS84."""
    if text is None or text == "":
        return None
    try:
        numbers = [float(v) for v in text.split(",")]
    except ValueError:
        raise BadRequestError(f"bbox {text!r} is not 4 or 6 comma-separated numbers") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or any(v != v or v in (float("inf"), float("-inf")) for v in numbers):
        raise BadRequestError(f"bbox {text!r} is not 4 or 6 comma-separated numbers")
    crs = output_crs(bbox_crs)
    a, b, c, d = numbers
    if crs.lat_first:
        a, b, c, d = b, a, d, c
    if crs.srid != 4326:
        transform = Transformer.from_crs(crs.srid, 4326, always_xy=True)
        (a, c), (b, d) = transform.transform([a, c], [b, d])
    if b > d:
        raise BadRequestError(f"bbox {text!r}: its south edge lies north of its north edge")
    if not (-180 <= a <= 180 and -180 <= c <= 180 and -90 <= b <= 90 and -90 <= d <= 90):
        raise BadRequestError(f"bbox {text!r} lies outside the world's longitudes and latitudes")
    return a, b, c, d


def _instant(text: str) -> datetime | None:
    if text in ("", ".."):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(f"datetime {text!r} is not RFC 3339 (e.g. 2026-12-01T00:00:00Z, or an interval "
                              "2026-12-01T00:00:00Z/.., ../2026-12-31T00:00:00Z)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_datetime(text: str | None) -> tuple[datetime | None, datetime | None] | None:
    """An instant (start = end) or an interval (``start/end``, either side ``..`` or empty: open)."""
    if text is None or text == "":
        return None
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        if "/" in end_text:
            raise BadRequestError(f"datetime {text!r} has more than one '/'")
        start, end = _instant(start_text), _instant(end_text)
        if start is not None and end is not None and end < start:
            raise BadRequestError(f"datetime {text!r} ends before it starts")
        return start, end
    instant = _instant(text)
    if instant is None:
        raise BadRequestError("datetime '..' alone is no instant: give a time or an interval")
    return instant, instant
