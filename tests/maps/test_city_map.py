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


def test_a_large_city_draws_its_map_from_the_tiles(divided_url: str, divided_engine) -> None:  # type: ignore[no-untyped-def]
    """Past GRIDPATROL_CITY_MAP_INLINE_MAX buildings the city map carries no feature: MapLibre GL draws buildings by
    households, grids by band, units and key places from the vector tiles; the layers switch off and on."""
    from sqlalchemy import text

    from api.app import create_app
    from api.settings import Settings
    from maps.browser import local_page, serve_in_thread, wait_for
    from tests.conftest import ROOT, http_token

    with divided_engine.connect() as conn:
        buildings = conn.execute(text("SELECT count(*) FROM buildings")).scalar_one()
    settings = Settings(database_url=divided_url, escalate_every_s=0, city_map_inline_max=buildings - 1)
    with serve_in_thread(create_app(settings)) as base, local_page(token=http_token(base)) as tab:
        page = tab.page
        answer = page.goto(f"{base}/?city=beijing", wait_until="load")
        assert answer is not None and answer.ok and len(answer.body()) < 12_000
        assert f"{buildings:,} buildings" in page.inner_text("#summary")
        wait_for(page, "document.documentElement.dataset.city === 'drawn'", timeout=30_000)
        drawn = "(id) => window.gridpatrolGl.queryRenderedFeatures({layers: [id]}).length"
        page.evaluate("() => map.setZoom(16)")
        wait_for(page, "window.gridpatrolGl.areTilesLoaded() && !window.gridpatrolGl.isMoving()", timeout=20_000)
        page.wait_for_timeout(300)
        for layer in ("city-buildings", "city-grid-lines", "city-communities"):
            assert page.evaluate(drawn, layer) > 0, layer
        page.screenshot(path=str(ROOT / "docs" / "city-tiles.png"))
        page.uncheck("#layers input[value=buildings]")
        wait_for(page, "window.gridpatrolGl.getLayoutProperty('city-buildings', 'visibility') === 'none' && "
                       "window.gridpatrolGl.queryRenderedFeatures({layers: ['city-buildings']}).length === 0")
        assert not tab.external_requests and not tab.console_errors, (tab.external_requests, tab.console_errors)
