"""GCJ-02 and BD-09 against published reference pairs."""

from __future__ import annotations

import math

import pytest

from gis.errors import InputError
from gis.geo.coords import from_wgs84, system, to_wgs84

# googollee/eviltransform's test vectors (python/tests): WGS-84 lat, lon → GCJ-02 lat, lon
WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
# BD-09 ⇄ GCJ-02 (lon, lat): coordtransform-rs's tests (116.404, 39.915 both ways) and gcoord's (123, 45)
GCJ_BD = [
    ((116.404, 39.915), (116.41036949371029, 39.92133699351021)),
    ((116.39762729119315, 39.90865673957631), (116.404, 39.915)),
    ((123.0, 45.0), (123.00636499, 45.00636899)),
]


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    dy = (lat2 - lat1) * 111_320
    dx = (lon2 - lon1) * 111_320 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), WGS_GCJ)
def test_gcj02_matches_the_reference_both_ways(wlat: float, wlon: float, glat: float, glon: float) -> None:
    lon, lat = from_wgs84(wlon, wlat, "wgs84")
    assert (lon, lat) == (wlon, wlat)
    gx, gy = from_wgs84(wlon, wlat, "gcj02")
    assert metres(gx, gy, glon, glat) < 0.01
    back = to_wgs84(glon, glat, "GCJ-02")
    assert metres(*back, wlon, wlat) < 0.5  # the reference's own inverse is an approximation
    assert metres(*to_wgs84(gx, gy, "gcj02"), wlon, wlat) < 0.01  # our round trip: centimetres
    assert metres(glon, glat, wlon, wlat) > 100  # the offset is real: hundreds of metres


@pytest.mark.parametrize(("gcj", "bd"), GCJ_BD)
def test_bd09_matches_the_reference(gcj: tuple[float, float], bd: tuple[float, float]) -> None:
    wgs = to_wgs84(*gcj, "gcj02")
    # BD-09 → WGS-84 goes through the same GCJ-02 point; the references' BD-09 → GCJ-02 formula is itself an
    # approximate inverse (5 cm here), the iterative one ours uses is exact to the millimetre
    assert metres(*to_wgs84(*bd, "bd09"), *wgs) < 0.1
    assert metres(*from_wgs84(*wgs, "bd09"), *bd) < 0.1


@pytest.mark.parametrize(("lon", "lat", "crs", "message"), [
    (float("nan"), 30.0, "wgs84", "finite"),
    (200.0, 30.0, "wgs84", "out of range"),
    (30.0, 120.0, "wgs84", "out of range"),
    ("120", 30.0, "wgs84", "numbers"),
    (120.0, 30.0, "utm", "unknown coordinate system"),
])
def test_bad_coordinates_say_what_to_fix(lon: object, lat: float, crs: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        to_wgs84(lon, lat, crs)  # type: ignore[arg-type]


def test_aliases() -> None:
    assert system("EPSG:4326") == "wgs84" and system("BD-09") == "bd09" and system("gcj02") == "gcj02"
