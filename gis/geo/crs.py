"""Coordinate reference systems: WGS-84 for storage, a local UTM zone for metres."""

from __future__ import annotations

import math

import geopandas as gpd
from pyproj import CRS

from gis.errors import CrsError

WGS84 = CRS.from_epsg(4326)


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS-84 UTM zone containing a point (e.g. EPSG:32650 for Nanjing and Beijing)."""
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or math.isnan(lon) or math.isnan(lat):
        raise CrsError(f"({lon}, {lat}) is not a WGS-84 longitude/latitude")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def require_crs(gdf: gpd.GeoDataFrame, crs: CRS = WGS84, *, what: str = "data") -> None:
    """Raise :class:`CrsError` unless ``gdf`` carries exactly ``crs``.

    A missing or mismatched CRS is an error, never a warning: silently mixing degrees and metres is how areas
    end up wrong by a factor of 10^10.
    """
    if gdf.crs is None:
        raise CrsError(f"{what} has no CRS; set one (EPSG:4326 for longitude/latitude)")
    if CRS.from_user_input(gdf.crs) != crs:
        raise CrsError(f"{what} is in {gdf.crs.to_string()}, expected {crs.to_string()}")


def metric_crs_for(gdf: gpd.GeoDataFrame) -> CRS:
    """The UTM zone at the centre of a WGS-84 GeoDataFrame's extent."""
    require_crs(gdf, what="data to measure")
    minx, miny, maxx, maxy = gdf.total_bounds
    return utm_crs_for((minx + maxx) / 2.0, (miny + maxy) / 2.0)
