from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, box

from gis.errors import CrsError, InputError
from gis.geo.households import (
    FLOOR_AREA_PER_HOUSEHOLD_M2,
    UNKNOWN_RESIDENTIAL_SHARE,
    classify_use,
    estimate_households,
    read_household_counts,
)
from gis.geo.osm import read_osm
from tests.conftest import NANJING

# A 30 m x 30 m square near Nanjing (in degrees: ~0.000318 lon, ~0.00027 lat).
SQUARE = box(118.78, 32.04, 118.78 + 30 / 94_400, 32.04 + 30 / 110_900)
COLUMNS = ("building", "building_levels", "height", "name", "shop", "office", "amenity", "tourism")


def frame(*rows: dict) -> gpd.GeoDataFrame:
    data = []
    for i, row in enumerate(rows):
        base = dict.fromkeys(COLUMNS)
        base.update(row)
        base["geometry"] = MultiPolygon([translate(SQUARE, xoff=0.001 * i)])
        data.append(base)
    return gpd.GeoDataFrame(data, geometry="geometry", crs=4326)


NO_LANDUSE = gpd.GeoDataFrame({"landuse": []}, geometry=[], crs=4326)


def test_use_from_type_tags_and_landuse() -> None:
    buildings = frame(
        {"building": "apartments"}, {"building": "office"}, {"building": "yes", "shop": "convenience"},
        {"building": "yes"}, {"building": "yes"}, {"building": "yes"},
    )
    pts = buildings.representative_point()
    landuse = gpd.GeoDataFrame(
        {"landuse": ["residential", "commercial"]},
        geometry=[pts.iloc[3].buffer(0.0005), pts.iloc[4].buffer(0.0005)], crs=4326,
    )
    use = classify_use(buildings, landuse)
    assert list(use) == ["residential", "non_residential", "non_residential", "residential", "non_residential",
                         "unknown"]


def test_estimate_is_area_times_levels_times_share_over_90() -> None:
    buildings = frame({"building": "residential", "building_levels": "6"}, {"building": "yes", "height": "30 m"},
                      {"building": "school"})
    est = estimate_households(buildings, NO_LANDUSE)
    assert est["area_m2"].iloc[0] == pytest.approx(900, rel=0.01)
    assert est["households_est"].iloc[0] == round(est["area_m2"].iloc[0] * 6 / FLOOR_AREA_PER_HOUSEHOLD_M2)
    assert list(est["levels"]) == [6, 10, 6]
    assert list(est["levels_source"]) == ["tag", "tag", "default"]
    assert est["households_est"].iloc[1] == round(
        est["area_m2"].iloc[1] * 10 * UNKNOWN_RESIDENTIAL_SHARE / FLOOR_AREA_PER_HOUSEHOLD_M2)
    assert est["households_est"].iloc[2] == 0


def test_city_default_levels_apply_to_untyped_buildings_only() -> None:
    buildings = frame({"building": "yes"}, {"building": "house"})
    est = estimate_households(buildings, NO_LANDUSE, default_levels=2)
    assert list(est["levels"]) == [2, 2]


def test_estimate_needs_a_crs() -> None:
    buildings = frame({"building": "yes"}).set_crs(None, allow_override=True)
    with pytest.raises(CrsError):
        estimate_households(buildings, NO_LANDUSE)


def test_nanjing_business_district_is_not_counted_as_homes() -> None:
    extract = read_osm(NANJING)
    est = estimate_households(extract.buildings, extract.landuse)
    naive = (est["area_m2"] * est["levels"] / FLOOR_AREA_PER_HOUSEHOLD_M2).sum()
    assert naive > 80_000  # the over-count the data README warns about
    assert 20_000 < est["households_est"].sum() < 0.5 * naive
    assert (est.loc[est["use"] == "non_residential", "households_est"] == 0).all()


def test_read_household_counts(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text("osm_id,households,residents\nway/1,120,300\nr45,80,\n")
    counts = read_household_counts(path)
    assert counts[["osm_type", "osm_id", "households"]].to_dict("records") == [
        {"osm_type": "way", "osm_id": 1, "households": 120},
        {"osm_type": "relation", "osm_id": 45, "households": 80},
    ]
    assert counts["residents"].iloc[0] == 300 and pd.isna(counts["residents"].iloc[1])


@pytest.mark.parametrize("text, message", [
    ("id,households\nway/1,3\n", "missing column"),
    ("osm_id,households\nnode/1,3\n", "should look like way/123"),
    ("osm_id,households\nway/1,-3\n", "whole number"),
    ("osm_id,households\nway/1,many\n", "not a number"),
    ("osm_id,households\nway/1,2.5\n", "whole number"),
])
def test_bad_household_counts(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "counts.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_household_counts(path)
