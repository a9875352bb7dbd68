"""The offline basemap's content read from real OSM extracts (``gis.geo.basemap``): what each layer holds, the zoom
each feature first shows at, the names, and the files it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point

from gis.errors import OsmFileError
from gis.geo.basemap import LAYERS, ROADS, area_minzoom, read_basemap
from tests.conftest import BEIJING, NANJING
from tests.gis.test_osm import MINI_BUILDING_ONLY


@pytest.fixture(scope="module")
def nanjing():
    return read_basemap(NANJING)


def test_nanjing_has_its_streets_water_green_and_landmarks(nanjing) -> None:
    counts = nanjing.counts()
    assert set(counts) == set(LAYERS)
    assert counts["roads"] > 300 and counts["green"] > 50 and counts["water"] > 0 and counts["pois"] > 30
    names = {f.name for f in nanjing.features if f.layer == "roads" and f.name}
    assert {"中山路", "汉中路", "中山东路"} <= names  # the main roads of Xinjiekou, in Chinese
    landmarks = {f.name for f in nanjing.features if f.layer == "pois"}
    assert "朝天宫" in landmarks and "总统府" in landmarks
    # English names kept beside the Chinese ones where OSM has them
    assert any(f.name == "总统府" and f.name_en == "Presidential Palace" for f in nanjing.features)


def test_every_feature_is_cut_to_the_file_bounds_with_the_right_geometry(nanjing) -> None:
    bounds = nanjing.bounds.buffer(1e-9)
    for f in nanjing.features:
        assert bounds.covers(f.geometry), (f.layer, f.name)
        if f.layer in ("water", "green", "landuse"):
            assert isinstance(f.geometry, MultiPolygon) and f.geometry.is_valid
        elif f.layer in ("roads", "rail", "waterways"):
            assert f.geometry.geom_type in ("LineString", "MultiLineString")
        else:
            assert isinstance(f.geometry, Point)


def test_main_roads_show_before_side_streets_and_paths(nanjing) -> None:
    by_kind: dict[str, set[int]] = {}
    for f in nanjing.features:
        if f.layer == "roads":
            by_kind.setdefault(f.kind, set()).add(f.minzoom)
    assert max(by_kind["primary"]) < min(by_kind["minor"]) < min(by_kind["path"])
    assert all(kind in {k for k, _ in ROADS.values()} for kind in by_kind)


def test_an_area_shows_once_it_covers_a_few_pixels() -> None:
    # a 100 m × 100 m park is 4 × 4 pixels (16 px²) from zoom 13, where a pixel is 19 m (38 m at 12: one pixel)
    assert area_minzoom(100 * 100) == 13
    assert area_minzoom(1_000_000 * 1_000_000) == 8  # a province-sized lake: from the lowest basemap zoom
    assert area_minzoom(1.0) == 16 and area_minzoom(0.0) == 16
    sizes = [10 ** k for k in range(1, 10)]
    zooms = [area_minzoom(a) for a in sizes]
    assert zooms == sorted(zooms, reverse=True)


def test_beijing_reads_too(tmp_path: Path) -> None:
    basemap = read_basemap(BEIJING)
    assert basemap.counts()["roads"] > 50
    assert all(f.geometry.area > 0 for f in basemap.features if f.layer in ("water", "green", "landuse"))
    assert all(f.geometry.length > 0 for f in basemap.features if f.layer in ("roads", "rail", "waterways"))
    assert shapely.box(*basemap.bounds.bounds).equals(basemap.bounds)


@pytest.mark.parametrize(("content", "words"), [
    ("", "is empty"),
    ("<osm><node id=", "not a readable OSM file"),
    (MINI_BUILDING_ONLY, "holds no roads"),
])
def test_files_without_a_basemap_are_refused_plainly(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "city.osm"
    path.write_text(content)
    with pytest.raises(OsmFileError, match=words):
        read_basemap(path)
