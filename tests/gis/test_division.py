from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, box

from gis.errors import InputError
from gis.geo.boundaries import close_admin_relations
from gis.geo.households import estimate_households
from gis.geo.network import graph_from_extract, graph_to_frames
from gis.geo.osm import read_osm
from gis.planning.division import (
    Band,
    adjacency,
    blocks_from_streets,
    building_zones,
    divide_area,
    reading_order,
    regions_from_units,
)
from tests.conftest import BEIJING, NANJING


def inputs(path):
    extract = read_osm(path)
    est = estimate_households(extract.buildings, extract.landuse)
    buildings = extract.buildings.assign(households=est["households_est"].to_numpy())
    _, drive = graph_to_frames(graph_from_extract(extract, "drive"))
    return extract, buildings, drive.geometry


@pytest.fixture(scope="module")
def beijing():
    extract, buildings, streets = inputs(BEIJING)
    return extract, buildings, divide_area(extract.bounds, buildings, streets)


@pytest.fixture(scope="module")
def nanjing():
    extract, buildings, streets = inputs(NANJING)
    districts = close_admin_relations(extract.admin_relations, extract.boundary_lines, extract.labels,
                                      extent=extract.bounds).areas
    return buildings, [(row.name, divide_area(row.geometry, buildings, streets)) for row in districts.itertuples()]


def share_in_band(grids: gpd.GeoDataFrame) -> float:
    eligible = grids[~grids["note"].str.startswith("one building")]
    return float(eligible["in_band"].mean())


def test_grids_tile_the_area_without_gaps_or_overlaps(beijing) -> None:
    extract, _, division = beijing
    grids = division.grids
    assert set(grids.geom_type) == {"Polygon"}  # every grid is one contiguous piece
    assert grids.is_valid.all()
    metric = grids.to_crs(32650)
    assert metric.is_valid.all()
    # the difference is taken where the stored polygons live (WGS-84), then measured in metres
    gap = shapely.union_all(grids.geometry.values).symmetric_difference(extract.bounds)
    assert gpd.GeoSeries([gap], crs=4326).to_crs(32650).area.iloc[0] < 1.0  # m², over 1.7 km²: no gap
    pairs = shapely.STRtree(metric.geometry.values).query(metric.geometry.values, predicate="intersects")
    worst = max(metric.geometry.iloc[a].intersection(metric.geometry.iloc[b]).area
                for a, b in zip(*pairs, strict=True) if a < b)
    assert worst < 1.0  # m²: the tolerance of issue 3


def test_every_building_is_in_exactly_one_grid_and_households_add_up(beijing) -> None:
    _, buildings, division = beijing
    assigned = division.building_grid
    assert assigned.notna().all() and len(assigned) == len(buildings)
    per_grid = buildings["households"].groupby(assigned.to_numpy()).sum()
    assert np.allclose(per_grid.sort_index().to_numpy(), division.grids["households"].to_numpy())
    points = buildings.representative_point()
    for grid_row, group in buildings.groupby(assigned.to_numpy()):
        shape = division.grids.geometry.iloc[grid_row].buffer(1e-7)
        assert points.loc[group.index].within(shape).all()


def test_most_grids_hold_300_to_500_households(beijing, nanjing) -> None:
    assert share_in_band(beijing[2].grids) >= 0.95
    _, divisions = nanjing
    grids = pd.concat([d.grids for _, d in divisions])
    assert share_in_band(grids) >= 0.95
    # the one building holding 1,358 households is a grid of its own, and says so
    single = grids[grids["note"].str.startswith("one building")]
    assert len(single) == 1 and single["buildings"].iloc[0] == 1 and single["households"].iloc[0] > 500


def test_out_of_band_grids_explain_themselves(nanjing) -> None:
    _, divisions = nanjing
    grids = pd.concat([d.grids for _, d in divisions])
    assert (grids["note"] != "").eq(~grids["in_band"]).all()


def test_hierarchy_nests_and_communities_hold_their_band(nanjing) -> None:
    _, divisions = nanjing
    for _, division in divisions:
        for row in division.grids.itertuples():
            community = division.communities[(division.communities["seq"] == row.community_seq)
                                              & (division.communities["street_seq"] == row.street_seq)]
            assert len(community) == 1
            assert community.geometry.iloc[0].buffer(1e-7).contains(row.geometry)
        assert division.communities["households"].sum() == pytest.approx(division.grids["households"].sum())
    communities = pd.concat([d.communities for _, d in divisions])
    assert communities["in_band"].mean() >= 0.8


def test_only_blocks_above_the_band_are_split(beijing) -> None:
    _, _, division = beijing
    assert division.split_blocks >= 1
    for row in division.grids.itertuples():
        if not row.split_block:
            assert row.households <= 500 or row.buildings == 1 or row.note


def test_the_division_is_deterministic(beijing) -> None:
    extract, buildings, first = beijing
    _, _, streets = inputs(BEIJING)
    again = divide_area(extract.bounds, buildings, streets)
    assert first.grids["households"].tolist() == again.grids["households"].tolist()
    assert all(a.equals(b) for a, b in zip(first.grids.geometry, again.grids.geometry, strict=True))
    assert first.building_grid.equals(again.building_grid)


def test_blocks_tile_the_area_and_dangles_stay_inside() -> None:
    area = box(0, 0, 100, 100)
    streets = [LineString([(50, -10), (50, 110)]), LineString([(0, 50), (50, 50)]),
               LineString([(70, 20), (80, 20)])]  # a dead end inside the eastern block
    blocks = blocks_from_streets(streets, area)
    assert sorted(round(b.area) for b in blocks) == [2500, 2500, 5000]


def test_zones_share_a_block_between_buildings_without_cutting_any() -> None:
    block = box(0, 0, 100, 40)
    footprints = [box(5, 5, 25, 35), box(40, 5, 60, 35), box(75, 5, 95, 35)]
    zones, holder = building_zones(block, footprints)
    assert holder == [0, 1, 2]
    assert sum(z.area for z in zones) == pytest.approx(block.area)
    for zone, footprint in zip(zones, footprints, strict=True):
        assert zone.buffer(1e-6).contains(footprint)


def test_region_growing_on_a_row_of_blocks() -> None:
    # ten 100-household blocks in a row, one household-free block in the middle: 300–500 means grids of 3–5
    geoms = [box(i, 0, i + 1, 1) for i in range(11)]
    households = np.array([100.0] * 5 + [0.0] + [100.0] * 5)
    graph = adjacency(geoms)
    centroids = np.array([[g.centroid.x, g.centroid.y] for g in geoms])
    regions = regions_from_units(households, graph, centroids, Band(300, 500))
    totals = [households[regions.of == r].sum() for r in np.unique(regions.of)]
    assert all(300 <= t <= 500 for t in totals)
    assert (regions.of >= 0).all()
    for r in np.unique(regions.of):  # contiguous
        members = np.flatnonzero(regions.of == r)
        assert members.max() - members.min() + 1 == len(members)


def test_reading_order_is_west_to_east_then_north_to_south() -> None:
    cells = gpd.GeoSeries([box(1, 0, 2, 1), box(0, 1, 1, 2), box(0, 0, 1, 1), box(1, 1, 2, 2)])
    assert reading_order(cells) == [1, 3, 2, 0]


def test_bad_band() -> None:
    with pytest.raises(InputError, match="low ≤ high"):
        Band(500, 300)
    with pytest.raises(InputError):
        Band(0, 10)


def test_a_lone_building_gets_the_whole_block() -> None:
    block = box(0, 0, 10, 10)
    zones, holder = building_zones(block, [box(2, 2, 4, 4)])
    assert zones == [block] and holder == [0]


def test_nanjing_grids_are_contiguous_and_only_oversized_blocks_are_cut(nanjing) -> None:
    _, divisions = nanjing
    grids = pd.concat([d.grids for _, d in divisions])
    assert set(grids.geom_type) == {"Polygon"}
    assert grids.is_valid.all()
    # 19 street blocks of central Nanjing hold more than 500 households on their own: only those are split
    assert sum(d.split_blocks for _, d in divisions) == 19
