"""An intranet basemap under the pages' maps (GRIDPATROL_TILE_URL, GRIDPATROL_TILE_CRS), checked at a known point in
headless Chromium: a local tile server draws a green dot where a place is on its tiles (at its WGS-84 position on
Tianditu-style tiles, at its GCJ-02 position on Amap-style ones), and the console's map must show the dot where the
service's WGS-84 overlays put that place."""

from __future__ import annotations

import io
import math

import httpx2 as httpx
import pytest
from fastapi import FastAPI, Response
from PIL import Image, ImageDraw
from sqlalchemy.engine import Engine

from api.app import create_app
from api.headers import tile_origin
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.engine import writing
from gis.geo.coords import from_wgs84
from maps.browser import local_page, serve_in_thread, wait_for
from tests.conftest import PASSWORD, ROOT, http_token
from tests.db.test_events import inner_point, report

GREEN = (0, 200, 0)


def tile_server(lon: float, lat: float) -> FastAPI:
    """XYZ tiles, transparent but for a green dot at (lon, lat) in the WGS-84 picture (``/wgs``) and at its GCJ-02
    position in the GCJ-02 picture (``/gcj``)."""
    app = FastAPI()
    places = {"wgs": (lon, lat), "gcj": from_wgs84(lon, lat, "gcj02")}

    @app.get("/{kind}/{z}/{x}/{y}.png")
    def tile(kind: str, z: int, x: int, y: int) -> Response:
        plon, plat = places[kind]
        size = 256 * 2 ** z
        px = (plon + 180) / 360 * size - x * 256
        py = (1 - math.asinh(math.tan(math.radians(plat))) / math.pi) / 2 * size - y * 256
        image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
        ImageDraw.Draw(image).ellipse([px - 6, py - 6, px + 6, py + 6], fill=(*GREEN, 255))
        out = io.BytesIO()
        image.save(out, "PNG")
        return Response(out.getvalue(), media_type="image/png")

    return app


@pytest.fixture
def place(divided_engine: Engine) -> tuple[float, float, float, float]:
    """A case's point, and a known point 70 m east of it, in the same grid's view."""
    _, lon, lat = inner_point(divided_engine)
    writing(divided_engine, create_user, "basemap-desk", PASSWORD, "dispatcher", unit="beijing")
    return lon, lat, lon + 0.0008, lat


def green_at(page, lon: float, lat: float) -> int:  # type: ignore[no-untyped-def]
    """Green pixels within 4 px of where the map puts (lon, lat)."""
    x, y = page.evaluate(f"(() => {{ const p = state.map.latLngToContainerPoint([{lat}, {lon}]); "
                         f"const r = document.getElementById('map').getBoundingClientRect(); "
                         f"return [r.left + p.x, r.top + p.y]; }})()")
    shot = Image.open(io.BytesIO(page.screenshot(clip={"x": x - 4, "y": y - 4, "width": 9, "height": 9})))
    rgb = shot.convert("RGB")
    return sum(1 for i in range(rgb.width) for j in range(rgb.height)
               if (p := rgb.getpixel((i, j))) and p[1] > 150 and p[0] < 80 and p[2] < 80)


@pytest.mark.parametrize(("kind", "crs", "lands"), [("wgs", "wgs84", True), ("gcj", "gcj02", True),
                                                    ("gcj", "wgs84", False)])
def test_the_basemap_lands_under_the_overlays(divided_url: str, place: tuple[float, float, float, float],
                                              kind: str, crs: str, lands: bool) -> None:
    lon, lat, known_lon, known_lat = place
    with serve_in_thread(tile_server(known_lon, known_lat)) as tiles:
        settings = Settings(database_url=divided_url, escalate_every_s=0, tile_crs=crs, tile_attribution="test",
                            tile_url=f"{tiles}/{kind}/{{z}}/{{x}}/{{y}}.png")
        with serve_in_thread(create_app(settings)) as base:
            token = http_token(base, "basemap-desk")
            assert httpx.get(f"{base}/basemap.json", headers={"Authorization": f"Bearer {token}"},
                             timeout=10).json()["crs"] == crs
            page_headers = httpx.get(f"{base}/console", headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert tile_origin(settings.tile_url) in page_headers.headers["content-security-policy"]
            case = httpx.post(f"{base}/events", json=report(lon, lat), timeout=10,
                              headers={"Authorization": f"Bearer {token}"}).json()
            with local_page(token=token) as tab:
                page = tab.page
                page.goto(f"{base}/console", wait_until="networkidle")
                page.click(f'#queue tr[data-id="{case["id"]}"]')
                wait_for(page, "state.map && state.map.gridpatrolBasemap && "
                               "document.querySelectorAll('#map img.leaflet-tile-loaded').length > 0", timeout=10000)
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(300)
                found = green_at(page, known_lon, known_lat)
                if kind == "gcj" and lands:
                    page.screenshot(path=str(ROOT / "docs" / "basemap-gcj02.png"))
                assert (found > 0) == lands, f"{found} green pixels where the known point should be"
                assert tab.console_errors == [], tab.console_errors


RENDERED = """(layer) => { const gl = state.map.gridpatrolBasemap.getMaplibreMap();
  return gl.queryRenderedFeatures({layers: [layer]}).map(f => f.properties.name || f.properties.name_en || ''); }"""


def test_the_offline_basemap_draws_the_citys_streets_with_their_names(divided_url: str, divided_engine: Engine,
                                                                      place: tuple[float, float, float, float]
                                                                      ) -> None:
    """No intranet basemap named: the city's own (built at import) under the console's map, drawn by MapLibre GL
    from the service's vector tiles, its labels from the machine's fonts, nothing fetched from elsewhere."""
    lon, lat, _, _ = place
    settings = Settings(database_url=divided_url, escalate_every_s=0)
    with serve_in_thread(create_app(settings)) as base:
        token = http_token(base, "basemap-desk")
        case = httpx.post(f"{base}/events", json=report(lon, lat), timeout=10,
                          headers={"Authorization": f"Bearer {token}"}).json()
        with local_page(token=token) as tab:
            page = tab.page
            page.goto(f"{base}/console", wait_until="networkidle")
            page.click(f'#queue tr[data-id="{case["id"]}"]')
            wait_for(page, "document.documentElement.dataset.basemap === 'ready'", timeout=20_000)
            wait_for(page, "state.map.gridpatrolBasemap.getMaplibreMap().areTilesLoaded()", timeout=10_000)
            page.wait_for_timeout(300)
            names = page.evaluate(RENDERED, "road-names")
            assert any("路" in n for n in names), names  # Beijing's street names, in Chinese, on the map
            assert page.evaluate(RENDERED, "buildings") and page.evaluate(RENDERED, "road-minor")
            # English one tap away: the labels follow the page's language
            page.click("#lang")
            wait_for(page, "JSON.stringify(state.map.gridpatrolBasemap.getMaplibreMap()"
                           ".getLayoutProperty('road-names', 'text-field')).includes('name_en')")
            assert tab.external_requests == [] and tab.console_errors == [], tab.console_errors
            tiles = [r for r in tab.requests if "/tiles/basemap/" in r]
            assert tiles and all("tile_size=512" in r for r in tiles)
