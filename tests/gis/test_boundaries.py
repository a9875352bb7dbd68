from __future__ import annotations

import pytest
import shapely
from shapely.geometry import LineString, Point, box

from gis.geo.boundaries import close_admin_relations
from gis.geo.crs import metric_crs_for
from gis.geo.osm import AdminRelation, read_osm
from tests.conftest import BEIJING, NANJING


def test_nanjing_districts_tile_the_extent() -> None:
    extract = read_osm(NANJING)
    closed = close_admin_relations(extract.admin_relations, extract.boundary_lines, extract.labels,
                                   extent=extract.bounds)
    assert closed.unresolved == []
    areas = closed.areas.set_index("name")
    assert set(areas.index) == {"玄武区", "鼓楼区", "秦淮区"}
    # Compared in lon/lat, where the extent is an exact box (projected, its 4-vertex edges would bend
    # differently from the faces' densified ones).
    assert closed.areas.union_all().symmetric_difference(extract.bounds).area < 1e-12  # no gap
    assert shapely.area(closed.areas.geometry.values).sum() == pytest.approx(extract.bounds.area, rel=1e-9)
    km2 = closed.areas.to_crs(metric_crs_for(closed.areas)).area / 1e6
    assert km2.sum() == pytest.approx(6.285, abs=0.01)
    # Xuanwu's label node lies in Xuanwu; the Xinjiekou crossroads sits where the three districts meet,
    # Gulou north-west of it, Qinhuai south.
    assert areas.loc["玄武区", "geometry"].contains(Point(118.793, 32.051))
    assert areas.loc["鼓楼区", "geometry"].contains(Point(118.770, 32.048))
    assert areas.loc["秦淮区", "geometry"].contains(Point(118.780, 32.038))


def test_a_single_partial_line_is_not_guessed() -> None:
    extract = read_osm(BEIJING)
    closed = close_admin_relations(extract.admin_relations, extract.boundary_lines, extract.labels,
                                   extent=extract.bounds)
    assert closed.areas.empty
    assert [r.name for r in closed.unresolved] == ["矿业大学社区居委会"]


def test_label_decides_a_two_way_split_and_the_neighbour_follows() -> None:
    extent = box(0, 0, 2, 1)
    line = {1: LineString([(1, -1), (1, 2)])}  # the A|B border runs north-south through the middle
    rels = [AdminRelation(10, "A", "8", [1], [100]), AdminRelation(20, "B", "8", [1], [])]
    closed = close_admin_relations(rels, line, {100: Point(0.5, 0.5)}, extent=extent)
    got = closed.areas.set_index("name")["geometry"]
    assert got["A"].equals(box(0, 0, 1, 1).buffer(0)) or got["A"].area == pytest.approx(1.0)
    assert got["A"].contains(Point(0.5, 0.5)) and got["B"].contains(Point(1.5, 0.5))
    assert closed.unresolved == []


def test_a_border_with_the_outside_leaves_the_outside_out() -> None:
    extent = box(0, 0, 3, 1)
    lines = {1: LineString([(1, -1), (1, 2)]), 2: LineString([(2, -1), (2, 2)])}
    # A | B | (outside): way 1 is shared by A and B, way 2 is B's border with a unit not in the file.
    rels = [AdminRelation(10, "A", "8", [1], [100]), AdminRelation(20, "B", "8", [1, 2], [])]
    closed = close_admin_relations(rels, lines, {100: Point(0.5, 0.5)}, extent=extent)
    got = closed.areas.set_index("name")["geometry"]
    assert got["A"].area == pytest.approx(1.0) and got["B"].area == pytest.approx(1.0)
    assert not got["B"].contains(Point(2.5, 0.5))
