from __future__ import annotations

import pytest
from shapely.geometry import LineString, box, mapping

from gis.errors import InputError
from gis.planning.editing import MAX_VERTICES, check_tiling, merge, parse_line, parse_polygon, remove, reshape, split

COMMUNITY = box(0, 0, 300, 100)
GRIDS = {"A": box(0, 0, 100, 100), "B": box(100, 0, 200, 100), "C": box(200, 0, 300, 100)}


def test_reshape_moves_the_shared_boundary_and_keeps_the_community_tiled() -> None:
    new = reshape(GRIDS, "A", box(0, 0, 130, 100), COMMUNITY)
    assert new["A"].area == pytest.approx(13_000)
    assert new["B"].area == pytest.approx(7_000)
    assert check_tiling(new, COMMUNITY).ok
    # shrinking hands the vacated strip to the neighbour along it
    back = reshape(new, "A", box(0, 0, 80, 100), COMMUNITY)
    assert back["B"].area == pytest.approx(12_000) and check_tiling(back, COMMUNITY).ok


def test_reshape_refuses_to_leave_the_community_or_swallow_a_grid() -> None:
    with pytest.raises(InputError, match="outside the grid's community"):
        reshape(GRIDS, "A", box(-50, 0, 100, 100), COMMUNITY)
    with pytest.raises(InputError, match="swallow grid"):
        reshape(GRIDS, "A", box(0, 0, 200, 100), COMMUNITY)


def test_check_tiling_reports_gaps_and_overlaps() -> None:
    check = check_tiling({"A": box(0, 0, 90, 100), "B": box(100, 0, 205, 100), "C": box(200, 0, 300, 100)},
                         COMMUNITY)
    assert not check.ok
    assert [round(g.area) for g in check.gaps] == [1000]
    assert check.overlaps == [("B", "C", pytest.approx(500))]


def test_split_merge_remove() -> None:
    pieces = split(GRIDS["B"], LineString([(150, -10), (150, 110)]))
    assert sorted(round(p.area) for p in pieces) == [5000, 5000]
    with pytest.raises(InputError, match="does not cut"):
        split(GRIDS["B"], LineString([(150, -10), (150, 50)]))
    assert merge(GRIDS["A"], GRIDS["B"]).area == pytest.approx(20_000)
    with pytest.raises(InputError, match="share a border"):
        merge(GRIDS["A"], GRIDS["C"])
    rest = remove(GRIDS, "B")
    assert set(rest) == {"A", "C"} and check_tiling(rest, COMMUNITY).ok
    with pytest.raises(InputError, match="last grid"):
        remove({"A": COMMUNITY}, "A")


@pytest.mark.parametrize("geojson, message", [
    ({"type": "Point", "coordinates": [116.35, 40.0]}, "expected a GeoJSON Polygon"),
    ({"type": "Polygon", "coordinates": []}, "empty"),
    ({"type": "Polygon", "coordinates": [[[116.34, 40.0], [116.35, 40.01], [116.35, 40.0], [116.34, 40.01],
                                          [116.34, 40.0]]]}, "Self-intersection"),
    ({"type": "Polygon", "coordinates": [[[200, 40], [201, 40], [201, 41], [200, 40]]]}, "WGS-84"),
    ({"type": "Polygon", "coordinates": [[[116.34, 40.0], ["a", 40.01], [116.35, 40.0], [116.34, 40.0]]]},
     "malformed"),
    ("POLYGON((0 0, 1 0, 1 1, 0 0))", "expected a GeoJSON Polygon"),
])
def test_bad_polygons_say_what_is_wrong(geojson, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_polygon(geojson)


def test_absurdly_large_polygons_are_refused() -> None:
    huge = box(116.34, 40.0, 116.35, 40.01).buffer(0.001, quad_segs=MAX_VERTICES // 3)
    with pytest.raises(InputError, match="vertices"):
        parse_polygon(mapping(huge))


def test_parse_line() -> None:
    assert parse_line({"type": "LineString", "coordinates": [[116.34, 40.0], [116.35, 40.0]]}).length > 0
    with pytest.raises(InputError, match="no length"):
        parse_line({"type": "LineString", "coordinates": [[116.34, 40.0], [116.34, 40.0]]})
