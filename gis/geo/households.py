"""Estimate households per building from an OSM footprint, and apply real counts over the estimate.

OSM has no household counts. The estimate is

    households = footprint area (m²) × levels × residential share ÷ floor area per household (90 m², a city setting)

* **levels**: ``building:levels`` when tagged; else ``height`` ÷ 3 m; else a default by building type
  (:data:`DEFAULT_LEVELS`; untyped buildings take the city's default, 6 in central Chinese cities).
* **residential share** by what the file says about use (:func:`classify_use`): 1 for homes (``residential``,
  ``apartments``, ``house``, … or an untyped building inside ``landuse=residential``); 0 for buildings typed or
  tagged as something else (office, school, ``shop=*``, …) or standing in non-residential land use; and
  :data:`UNKNOWN_RESIDENTIAL_SHARE` for an untyped building with no evidence either way.

It is an **estimate** and is kept apart from confirmed counts everywhere: a planner's real count
(``households_override``, loaded from a CSV) always wins, and the source of the number shown is reported.
Measured on the Nanjing demo (1,277 buildings): the naive rule (every building a home, 6 levels) gives ~94k
households, ~71k of them from untyped buildings in the business district; this one gives the figure that
``gridpatrol import-osm`` prints (see the README).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.errors import InputError
from gis.geo.crs import metric_crs_for, require_crs

FLOOR_AREA_PER_HOUSEHOLD_M2 = 90.0
STOREY_HEIGHT_M = 3.0
UNKNOWN_RESIDENTIAL_SHARE = 0.5
"""An untyped building with no land-use evidence: half its floor area counted as homes."""
MIN_FOOTPRINT_M2 = 20.0
"""Smaller footprints (kiosks, sheds, mapping slivers) hold no household."""

RESIDENTIAL_TYPES = frozenset({
    "residential", "apartments", "house", "detached", "semidetached_house", "terrace", "dormitory",
    "bungalow", "farm", "cabin", "houseboat", "static_caravan", "hut",
})
NON_RESIDENTIAL_TYPES = frozenset({
    "commercial", "office", "retail", "industrial", "warehouse", "school", "university", "college",
    "kindergarten", "hospital", "hotel", "civic", "public", "government", "church", "chapel", "cathedral",
    "temple", "mosque", "shrine", "religious", "train_station", "transportation", "sports_hall", "sports_centre",
    "stadium", "parking", "garage", "garages", "carport", "service", "supermarket", "kiosk", "roof", "shed",
    "construction", "barn", "cowshed", "stable", "greenhouse", "farm_auxiliary", "hangar", "fire_station",
    "toilets", "bunker", "ruins", "transformer_tower", "water_tower", "storage_tank", "silo", "bridge",
    "gatehouse", "pavilion", "grandstand", "museum", "library", "theatre", "cinema", "manufacture",
})
NON_RESIDENTIAL_LANDUSE = frozenset({
    "commercial", "retail", "industrial", "military", "education", "religious", "railway", "construction",
    "institutional", "garages", "port", "depot", "farmyard", "cemetery",
})
DEFAULT_LEVELS: dict[str, int] = {
    "house": 2, "detached": 2, "semidetached_house": 2, "terrace": 3, "bungalow": 1, "farm": 2, "cabin": 1,
    "hut": 1, "dormitory": 5, "residential": 6, "apartments": 6,
}
DEFAULT_LEVELS_OTHER = 6


def _levels_from_tags(levels_tag: object, height_tag: object) -> float | None:
    for raw, scale in ((levels_tag, 1.0), (height_tag, 1.0 / STOREY_HEIGHT_M)):
        if not isinstance(raw, str):
            continue
        match = re.match(r"\s*(\d+(?:[.,]\d+)?)", raw)
        if match:
            value = float(match.group(1).replace(",", ".")) * scale
            if 1.0 <= value <= 200.0:
                return max(1.0, round(value))
    return None


def classify_use(buildings: gpd.GeoDataFrame, landuse: gpd.GeoDataFrame) -> pd.Series:
    """``residential``, ``non_residential`` or ``unknown`` for each building, from its tags and land use."""
    btype = buildings["building"].fillna("yes")
    use = pd.Series("unknown", index=buildings.index, dtype=object)
    use[btype.isin(RESIDENTIAL_TYPES)] = "residential"
    use[btype.isin(NON_RESIDENTIAL_TYPES)] = "non_residential"
    tagged_use = buildings[["shop", "office", "amenity", "tourism"]].notna().any(axis=1)
    untyped = use == "unknown"
    use[untyped & tagged_use] = "non_residential"

    still = use == "unknown"
    if still.any() and not landuse.empty:
        points = gpd.GeoDataFrame(geometry=buildings.loc[still].representative_point(), crs=buildings.crs)
        hits = gpd.sjoin(points, landuse[["landuse", "geometry"]], predicate="within", how="inner")
        # A building can sit in nested land uses; any non-residential one decides, else residential.
        for idx, group in hits.groupby(level=0)["landuse"]:
            values = set(group)
            if values & NON_RESIDENTIAL_LANDUSE:
                use[idx] = "non_residential"
            elif "residential" in values:
                use[idx] = "residential"
    return use


def estimate_households(
    buildings: gpd.GeoDataFrame, landuse: gpd.GeoDataFrame, *, default_levels: int = DEFAULT_LEVELS_OTHER,
    m2_per_household: float = FLOOR_AREA_PER_HOUSEHOLD_M2,
) -> pd.DataFrame:
    """Footprint area, levels, use and estimated households for each building (see the module docstring).

    Returns a frame indexed like ``buildings`` with ``area_m2``, ``levels``, ``levels_source``
    (``tag`` or ``default``), ``use`` and ``households_est``.
    """
    require_crs(buildings, what="buildings")
    metric = buildings.to_crs(metric_crs_for(buildings))
    area = metric.geometry.area
    tagged = [_levels_from_tags(lv, h) for lv, h in zip(buildings["building_levels"], buildings["height"],
                                                        strict=True)]
    btype = buildings["building"].fillna("yes")
    default = btype.map(DEFAULT_LEVELS).fillna(default_levels)
    levels = pd.Series([t if t is not None else d for t, d in zip(tagged, default, strict=True)],
                       index=buildings.index, dtype=float)
    use = classify_use(buildings, landuse)
    share = use.map({"residential": 1.0, "non_residential": 0.0, "unknown": UNKNOWN_RESIDENTIAL_SHARE})
    raw = area * levels * share / m2_per_household
    households = np.where(area < MIN_FOOTPRINT_M2, 0, np.round(raw)).astype(int)
    return pd.DataFrame({
        "area_m2": area.round(1),
        "levels": levels.astype(int),
        "levels_source": ["tag" if t is not None else "default" for t in tagged],
        "use": use,
        "households_est": households,
    }, index=buildings.index)


def read_household_counts(path: str | Path) -> pd.DataFrame:
    """Read real household counts from a CSV: ``osm_id`` (``way/123``, ``relation/45`` or ``w123``),
    ``households``, and optionally ``residents``.

    Raises
    ------
    InputError
        Missing columns, a malformed id, or a count that is not a whole number ≥ 0; the message names the row.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such household counts file")
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"osm_id", "households"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                             "expected osm_id,households[,residents]")
        for lineno, row in enumerate(reader, start=2):
            osm_type, osm_id = parse_osm_ref(row["osm_id"], where=f"{path}:{lineno}")
            households = parse_count(row["households"], where=f"{path}:{lineno} households")
            residents = parse_count(row.get("residents") or "", where=f"{path}:{lineno} residents", optional=True)
            rows.append({"osm_type": osm_type, "osm_id": osm_id, "households": households, "residents": residents})
    frame = pd.DataFrame(rows, columns=["osm_type", "osm_id", "households", "residents"])
    return frame.astype({"osm_id": "int64", "households": "int64", "residents": "Int64"})


def parse_osm_ref(text: str, *, where: str) -> tuple[str, int]:
    """``(osm type, id)`` of ``way/123``, ``relation/45`` or ``w123``."""
    match = re.fullmatch(r"\s*(way|relation|w|r)\s*/?\s*(\d+)\s*", text or "")
    if not match:
        raise InputError(f"{where}: osm_id {text!r} should look like way/123 or relation/45")
    kind = {"w": "way", "r": "relation"}.get(match.group(1), match.group(1))
    return kind, int(match.group(2))


def parse_count(text: str, *, where: str, optional: bool = False) -> int | None:
    """A count from a city's file: a whole number ≥ 0 (``12``, ``12.0``), or ``None`` when ``optional`` and empty."""
    if optional and not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise InputError(f"{where}: {text!r} should be a whole number ≥ 0")
    return int(value)
