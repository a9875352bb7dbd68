from __future__ import annotations

import networkx as nx
import pytest

from gis.errors import CrsError
from gis.geo.crs import require_crs, utm_crs_for
from gis.geo.network import component_count, graph_from_extract, graph_to_frames, way_filter
from gis.geo.osm import read_osm
from tests.conftest import BEIJING


def passes(network: str, tags: dict[str, str]) -> bool:
    return all(c.accepts(tags) for c in way_filter(network))


def test_osmnx_filters_mean_what_they_mean_in_osmnx() -> None:
    assert passes("walk", {"highway": "footway"}) and not passes("drive", {"highway": "footway"})
    assert passes("drive", {"highway": "primary"}) and passes("walk", {"highway": "residential"})
    assert not passes("walk", {"highway": "motorway"})
    assert not passes("drive", {"highway": "residential", "access": "private"})
    assert not passes("walk", {"highway": "path", "foot": "no"})
    assert not passes("drive", {"highway": "service", "service": "parking_aisle"})
    assert not passes("walk", {"building": "yes"})


@pytest.fixture(scope="module")
def beijing():
    return read_osm(BEIJING)


def test_beijing_walk_network(beijing) -> None:
    graph = graph_from_extract(beijing, "walk")
    nodes, edges = graph_to_frames(graph)
    assert graph.graph["network_type"] == "walk"
    assert 300 < len(nodes) < 600 and 800 < len(edges) < 1400
    assert (edges["length_m"] > 0).all()
    # Walk networks are bidirectional in osmnx: every edge has its reverse.
    pairs = set(zip(edges["u"], edges["v"], strict=True))
    assert all((v, u) in pairs for u, v in pairs)
    # Trimmed to the bounds, keeping edges that cross them.
    assert edges.intersects(beijing.bounds).all()
    assert component_count(graph) >= 1


def test_drive_network_is_smaller_and_directed(beijing) -> None:
    walk = graph_from_extract(beijing, "walk")
    drive = graph_from_extract(beijing, "drive")
    assert drive.number_of_edges() < walk.number_of_edges()
    assert isinstance(drive, nx.MultiDiGraph)


def test_unknown_network_type(beijing) -> None:
    with pytest.raises(ValueError, match="network type"):
        graph_from_extract(beijing, "boat")


def test_utm_zone_and_crs_checks() -> None:
    assert utm_crs_for(118.78, 32.04).to_epsg() == 32650  # Nanjing
    assert utm_crs_for(9.52, 47.14).to_epsg() == 32632    # Liechtenstein
    assert utm_crs_for(-70.0, -33.0).to_epsg() == 32719
    with pytest.raises(CrsError):
        utm_crs_for(200.0, 0.0)
    beijing = read_osm(BEIJING).buildings
    with pytest.raises(CrsError, match="no CRS"):
        require_crs(beijing.set_crs(None, allow_override=True))
    with pytest.raises(CrsError, match="expected"):
        require_crs(beijing.to_crs(3857))


def test_edges_are_the_same_whatever_the_string_hash_seed() -> None:
    """osmnx merges ways through sets; the frames must not depend on PYTHONHASHSEED (re-imports would churn)."""
    import os
    import subprocess
    import sys

    script = (
        "from gis.geo.osm import read_osm; from gis.geo.network import graph_from_extract, graph_to_frames; "
        f"_, e = graph_to_frames(graph_from_extract(read_osm({str(BEIJING)!r}), 'walk')); "
        "print(e[['u','v','key','name','highway']].assign(ids=e['osm_ids'].map(str)).to_csv())"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert ";" in outputs.pop()  # merged ways are present, so the check means something
