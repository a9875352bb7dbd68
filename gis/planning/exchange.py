"""Grids in and out of the files GIS tools use: GeoJSON, GeoPackage, Shapefile (through pyogrio).

Exported grids carry their code, name, community code, households (confirmed counts where given, else
estimates), buildings and, when a grid misses the band, why. Shapefile field names are cut to 10 characters by
the format; the names below already fit.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from gis.errors import InputError
from gis.geo.crs import WGS84

FORMATS: dict[str, tuple[str, str, str]] = {
    # name: (OGR driver, file suffix, media type)
    "geojson": ("GeoJSON", ".geojson", "application/geo+json"),
    "gpkg": ("GPKG", ".gpkg", "application/geopackage+sqlite3"),
    "shp": ("ESRI Shapefile", ".shp", "application/zip"),
}
COLUMNS = ("code", "name", "community", "households", "buildings", "note")


def format_for(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    for name, (_, ext, _) in FORMATS.items():
        if suffix == ext or (name == "geojson" and suffix == ".json") or (name == "shp" and suffix == ".zip"):
            return name
    raise InputError(f"{path}: unknown grid file type; use .geojson, .gpkg, .shp or a .zip holding a shapefile")


def grids_to_bytes(grids: gpd.GeoDataFrame, fmt: str) -> bytes:
    """The grids as a file of format ``fmt`` (a shapefile comes zipped, as it is several files)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    driver, suffix, _ = FORMATS[fmt]
    frame = grids[[*COLUMNS, "geometry"]].copy()
    frame["note"] = frame["note"].fillna("")
    with tempfile.TemporaryDirectory(prefix="gridpatrol-") as tmp:
        path = Path(tmp) / f"grids{suffix}"
        pyogrio.write_dataframe(frame, path, driver=driver, layer="grids" if fmt == "gpkg" else None)
        if fmt != "shp":
            return path.read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(tmp).glob("grids.*")):
                archive.write(part, part.name)
        return buffer.getvalue()


def grids_from_file(path: str | Path) -> gpd.GeoDataFrame:
    """Polygons (and their ``code``, if the file has one) from a grid file, in WGS-84.

    Invalid polygons are repaired (``make_valid``) and only their polygonal parts kept; a file without a CRS, a
    non-polygon feature or a repeated code is an :class:`InputError` naming what to fix.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = format_for(path)
    source = f"/vsizip/{path}" if fmt == "shp" and path.suffix.lower() == ".zip" else str(path)
    try:
        frame = pyogrio.read_dataframe(source)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(f"{path} could not be read as {fmt}: {exc}") from None
    if frame.crs is None:
        raise InputError(f"{path} states no coordinate system; save it with one (EPSG:4326 for WGS-84)")
    frame = frame.to_crs(WGS84)
    if frame.empty:
        raise InputError(f"{path} holds no features")
    kinds = set(frame.geom_type.dropna())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{path} holds {', '.join(sorted(kinds - {'Polygon', 'MultiPolygon'}))} features; "
                         "grids are polygons")
    frame["geometry"] = [g if g.is_valid else shapely.make_valid(g) for g in frame.geometry]
    frame["geometry"] = [shapely.union_all([p for p in getattr(g, "geoms", [g]) if p.geom_type in
                                            ("Polygon", "MultiPolygon")]) for g in frame.geometry]
    if "code" not in frame:
        frame["code"] = None
    # object dtype: pandas 3 would infer its string dtype and turn a missing code into a float NaN
    frame["code"] = pd.Series([str(c).strip() or None if isinstance(c, str) else None for c in frame["code"]],
                              index=frame.index, dtype=object)
    codes = [c for c in frame["code"] if c]
    if len(codes) != len(set(codes)):
        raise InputError(f"{path}: a grid code appears twice")
    return frame[["code", "geometry"]]
