"""Tile arithmetic and OGC API parameters with no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gis.dispatch.queries import OPEN_STATES_SQL
from gis.dispatch.rules import OPEN_STATES
from gis.errors import BadRequestError
from gis.geo.ogc import CRS84, output_crs, parse_bbox, parse_datetime
from gis.geo.tiles import check_tile, tile_bounds, tile_of, tolerance_m


def test_a_point_lies_in_the_tile_that_holds_it() -> None:
    for lon, lat, z in ((118.7838, 32.0415, 15), (116.3446, 40.0072, 3), (-0.1, 51.5, 10), (179.9, -85.0, 5)):
        x, y = tile_of(lon, lat, z)
        west, south, east, north = tile_bounds(z, x, y)
        assert west <= lon <= east and south <= lat <= north
    assert tile_bounds(0, 0, 0)[0] == -180 and tolerance_m(0) == pytest.approx(40075016.686 / 4096 / 2)


@pytest.mark.parametrize(("z", "x", "y"), [(-1, 0, 0), (23, 0, 0), (2, 4, 0), (2, 0, -1)])
def test_tiles_outside_the_scheme_are_refused(z: int, x: int, y: int) -> None:
    with pytest.raises(BadRequestError):
        check_tile(z, x, y)


def test_bbox_in_its_crs_and_datetime_intervals() -> None:
    assert parse_bbox("118,32,119,33") == (118, 32, 119, 33)
    assert parse_bbox("32,118,33,119", "http://www.opengis.net/def/crs/EPSG/0/4326") == (118, 32, 119, 33)
    west, south, east, north = parse_bbox("13135699,3763310,13247018,3895303",
                                          "http://www.opengis.net/def/crs/EPSG/0/3857") or (0, 0, 0, 0)
    assert (round(west, 3), round(east, 3)) == (118.0, 119.0) and (round(south, 1), round(north, 1)) == (32.0, 33.0)
    assert parse_bbox("118,32,0,119,33,0") == (118, 32, 119, 33)
    assert parse_datetime("2026-12-01T00:00:00Z") == (datetime(2026, 12, 1, tzinfo=UTC),) * 2
    assert parse_datetime("../2026-12-01T00:00:00Z") == (None, datetime(2026, 12, 1, tzinfo=UTC))
    assert output_crs(None).uri == CRS84 and output_crs("<http://www.opengis.net/def/crs/EPSG/0/3857>").srid == 3857
    for bad in ("1,2", "1,2,3,x", "nan,1,2,3"):
        with pytest.raises(BadRequestError):
            parse_bbox(bad)
    for bad in ("soon", "2026-12-02/2026-12-01", "../..x", "a/b/c"):
        with pytest.raises(BadRequestError):
            parse_datetime(bad)


def test_the_open_states_are_written_alike_for_sql() -> None:
    written = "(" + ", ".join(f"'{s}'" for s in OPEN_STATES) + ")"
    assert written == OPEN_STATES_SQL
