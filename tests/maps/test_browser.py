"""The pages in real headless Chromium: they render, and no request fails or leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.app import create_app
from api.settings import Settings
from gis.planning.store.importer import ImportReport
from maps.browser import serve_in_thread, visit
from tests.conftest import http_token


@pytest.fixture(scope="module")
def base_url(beijing_db: tuple[str, ImportReport]) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(database_url=beijing_db[0], default_city="beijing"))) as url:
        yield url


def test_city_map_renders_in_chromium(base_url: str, beijing_db: tuple[str, ImportReport], tmp_path) -> None:
    report = beijing_db[1]
    shot = tmp_path / "map.png"
    result = visit(f"{base_url}/", screenshot=shot, token=http_token(base_url))
    assert result.status == 200
    assert result.failed_requests == []
    assert result.external_requests == []
    assert result.console_errors == []
    assert result.map["maps"] == 1
    # a GeoJSON feature per building plus the extent outline (no district in this file), a marker per key place
    assert result.map["features"] == report.counts["buildings"].total + 1
    assert result.map["markers"] == report.counts["key places"].total
    assert shot.stat().st_size > 20_000


def test_a_page_opened_without_signing_in_goes_to_the_sign_in_form_and_back(base_url: str) -> None:
    from maps.browser import local_page
    from tests.conftest import ADMIN, PASSWORD

    with local_page() as tab:
        page = tab.page
        page.goto(f"{base_url}/?city=beijing", wait_until="networkidle")
        assert page.url.startswith(f"{base_url}/login?next=")
        page.fill("#u", ADMIN)
        page.fill("#p", "not the password")
        page.click("button[type=submit]")
        assert page.locator(".error").is_visible() and "wrong username or password" in page.content()
        page.fill("#u", ADMIN)
        page.fill("#p", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert page.url == f"{base_url}/?city=beijing"
        assert page.locator(".leaflet-container").count() == 1
    # the sign-in page's own failed answer is a 401 in the console: nothing else may fail
    assert tab.external_requests == []
    assert all("401" in e for e in tab.console_errors), tab.console_errors


def test_api_docs_render_in_chromium(base_url: str) -> None:
    result = visit(f"{base_url}/docs")
    assert result.status == 200
    assert result.external_requests == [] and result.failed_requests == [] and result.console_errors == []
