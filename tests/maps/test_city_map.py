from __future__ import annotations

import re

import pytest
from folium.plugins import MarkerCluster

from gis.planning.store import city as features
from maps.city import LOCAL_ASSETS, RemoteAssetError, city_map, map_to_html


@pytest.fixture(scope="module")
def layers(beijing_engine):
    with beijing_engine.connect() as conn:
        city = features.find_city(conn, "beijing")
        return (features.read_layer(conn, "buildings", filters={"city_id": city.id}),
                features.read_layer(conn, "key_places", filters={"city_id": city.id}),
                features.read_layer(conn, "admin_units", filters={"city_id": city.id, "level": "district"}))


def test_page_loads_nothing_from_other_hosts(layers) -> None:
    page = map_to_html(city_map(*layers, title="北京市"))
    sources = re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)""", page)
    assert sources and all(s.startswith("/static/") for s in sources)  # vendored, or the basemap's own script
    assert "/static/basemap.js" in sources
    assert "北京市" in page and "OpenStreetMap" in page


def test_every_local_asset_exists() -> None:
    from api.app import STATIC_DIR

    for local in LOCAL_ASSETS.values():
        assert (STATIC_DIR / local.removeprefix("/static/")).is_file(), local


def test_a_remote_asset_is_refused(layers) -> None:
    fmap = city_map(*layers, title="x")
    MarkerCluster().add_to(fmap)  # brings leaflet.markercluster from a CDN, not vendored
    with pytest.raises(RemoteAssetError, match="markercluster"):
        map_to_html(fmap)


def test_buildings_are_coloured_by_households(layers) -> None:
    buildings = layers[0]
    page = map_to_html(city_map(*layers, title="x"))
    # Non-homes grey, and the legend names the household classes.
    assert "#d9d9d9" in page and "0 (not homes)" in page
    assert (buildings["households"] > 0).any()
    assert page.count('"fill": "#') >= len(buildings)


def test_a_tile_url_adds_a_basemap(layers) -> None:
    page = map_to_html(city_map(*layers, title="x", tile_url="/tiles/{z}/{x}/{y}.png", tile_attribution="intranet"))
    assert "/tiles/{z}/{x}/{y}.png" in page and "intranet" in page
