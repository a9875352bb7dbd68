from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import osmium
import pytest

from gis.errors import OsmFileError
from gis.geo.osm import place_kind, read_osm
from tests.conftest import BEIJING, NANJING

MINI_STREET_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <bounds minlat="40.0" minlon="116.0" maxlat="40.01" maxlon="116.01"/>
 <node id="1" lat="40.001" lon="116.001"/><node id="2" lat="40.002" lon="116.002"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
</osm>
"""

MINI_BUILDING_ONLY = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <bounds minlat="40.0" minlon="116.0" maxlat="40.01" maxlon="116.01"/>
 <node id="1" lat="40.001" lon="116.001"/><node id="2" lat="40.001" lon="116.002"/>
 <node id="3" lat="40.002" lon="116.002"/><node id="4" lat="40.002" lon="116.001"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/><tag k="building" v="yes"/></way>
</osm>
"""


@pytest.fixture(scope="module")
def beijing():
    return read_osm(BEIJING)


def test_beijing_is_clipped_to_its_bounds(beijing) -> None:
    assert beijing.bounds_source == "header"
    assert beijing.bounds.bounds == pytest.approx((116.34403, 39.99767, 116.35974, 40.00888))
    # The file has 257 buildings; ways run past <bounds> and those whose centre lies outside are dropped.
    assert 200 < len(beijing.buildings) < 257
    assert beijing.buildings.representative_point().within(beijing.bounds).all()
    assert beijing.places.within(beijing.bounds).all()
    assert beijing.buildings.crs.to_epsg() == 4326
    assert set(beijing.buildings.geom_type) == {"MultiPolygon"}
    assert beijing.buildings.is_valid.all()


def test_beijing_key_places_and_streets(beijing) -> None:
    kinds = set(beijing.places["kind"])
    assert {"police", "school", "hospital"} <= kinds
    assert len(beijing.street_ways) > 100
    minx, miny, maxx, maxy = beijing.bounds.bounds
    for _, refs, _ in beijing.street_ways:  # every kept street touches the bounds
        assert any(minx <= beijing.street_nodes[r][0] <= maxx and miny <= beijing.street_nodes[r][1] <= maxy
                   for r in refs)


def test_overpass_extract_without_bounds_uses_building_extent() -> None:
    nanjing = read_osm(NANJING)
    assert nanjing.bounds_source == "buildings"
    assert len(nanjing.buildings) == 1277
    assert {r.name for r in nanjing.admin_relations} == {"玄武区", "鼓楼区", "秦淮区"}


@pytest.mark.parametrize("suffix, opener", [(".osm.gz", gzip.open), (".osm.bz2", bz2.open)])
def test_compressed_xml_reads_the_same(tmp_path: Path, beijing, suffix: str, opener) -> None:
    packed = tmp_path / f"beijing{suffix}"
    with opener(packed, "wb") as out:
        out.write(BEIJING.read_bytes())
    again = read_osm(packed)
    assert len(again.buildings) == len(beijing.buildings)
    assert len(again.street_ways) == len(beijing.street_ways)


def test_pbf_reads_the_same(tmp_path: Path, beijing) -> None:
    pbf = tmp_path / "beijing.osm.pbf"
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(116.34403, 39.99767, 116.35974, 40.00888))
    writer = osmium.SimpleWriter(str(pbf), header=header)
    try:
        for obj in osmium.FileProcessor(str(BEIJING)):
            writer.add(obj)
    finally:
        writer.close()
    again = read_osm(pbf)
    assert again.bounds.bounds == pytest.approx(beijing.bounds.bounds)
    assert sorted(again.buildings["osm_id"]) == sorted(beijing.buildings["osm_id"])


def test_missing_file() -> None:
    with pytest.raises(OsmFileError, match="no such file"):
        read_osm("data/nowhere.osm")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.osm"
    empty.write_text("")
    with pytest.raises(OsmFileError, match="empty"):
        read_osm(empty)


def test_truncated_file(tmp_path: Path) -> None:
    cut = tmp_path / "cut.osm"
    data = BEIJING.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(OsmFileError, match="not a readable OSM file"):
        read_osm(cut)


@pytest.mark.parametrize("name, content", [
    ("notes.osm", b'{"type": "FeatureCollection", "features": []}'),
    ("picture.osm.pbf", b"\x89PNG\r\n\x1a\n" + bytes(200)),
])
def test_not_osm(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(OsmFileError, match="not a readable OSM file"):
        read_osm(path)


def test_wrong_suffix(tmp_path: Path) -> None:
    path = tmp_path / "city.geojson"
    path.write_text("{}")
    with pytest.raises(OsmFileError, match="not an OSM file name"):
        read_osm(path)


def test_no_buildings(tmp_path: Path) -> None:
    path = tmp_path / "streets.osm"
    path.write_text(MINI_STREET_ONLY)
    with pytest.raises(OsmFileError, match="no buildings"):
        read_osm(path)


def test_no_streets(tmp_path: Path) -> None:
    path = tmp_path / "house.osm"
    path.write_text(MINI_BUILDING_ONLY)
    with pytest.raises(OsmFileError, match="no streets"):
        read_osm(path)


def test_place_kinds() -> None:
    assert place_kind({"amenity": "police"}) == "police"
    assert place_kind({"amenity": "nursing_home"}) == "elderly_home"
    assert place_kind({"shop": "supermarket"}) == "market"
    assert place_kind({"landuse": "construction"}) == "construction_site"
    assert place_kind({"amenity": "bench"}) is None
