"""The leaders' coverage maps on the divided Nanjing demo with its synthetic activity: every level draws, the
figures are the API's, drill-down works in headless Chromium, and bad input gets a clear answer."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import Settings
from gis.db.engine import make_engine
from tests.conftest import ROOT, admin, http_token


@pytest.fixture(scope="module")
def client(nanjing_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=nanjing_url, escalate_every_s=0))) as c:
        yield admin(c)


def codes(url: str, sql: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        out = [r[0] for r in conn.execute(text(sql))]
    engine.dispose()
    return out


def test_every_level_draws_and_links_one_level_down(client: TestClient, nanjing_url: str) -> None:
    district = codes(nanjing_url, "SELECT code FROM admin_units WHERE level = 'district' ORDER BY code")[1]
    street = codes(nanjing_url, f"SELECT code FROM admin_units WHERE level = 'street' AND code LIKE '{district}%' "
                                "ORDER BY code")[0]
    community = codes(nanjing_url, f"SELECT code FROM admin_units WHERE level = 'community' AND code LIKE "
                                   f"'{street}%' ORDER BY code")[0]
    grid = codes(nanjing_url, f"SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
                              f"WHERE c.code = '{community}' ORDER BY g.code")[0]
    for unit, child in ((None, district), (district, street), (street, community), (community, grid)):
        response = client.get("/leaders", params={"unit": unit} if unit else {"city": "nanjing"})
        assert response.status_code == 200, response.text
        page = response.text
        assert f"unit={child}" in page  # the child links one level down (the map's click and the table)
        assert "cdn." not in page.replace("cdn.jsdelivr.net/npm/leaflet", "")  # no remote asset left
        if unit:  # the breadcrumb leads back up to the city
            assert "/leaders?" in page and "南京市" in page
    leaf = client.get("/leaders", params={"unit": grid, "measure": "open_overdue"})
    assert leaf.status_code == 200 and "basic patrol route" in leaf.text and grid in leaf.text


def test_the_figures_are_the_apis(client: TestClient) -> None:
    end = date.today()
    start = end - timedelta(days=29)
    figures = client.get("/leaders/figures", params={"city": "nanjing", "start": start, "end": end}).json()
    assert figures["level"] == "district" and len(figures["rows"]) == 3
    coverage = {r["code"]: r for r in client.get("/coverage", params={
        "city": "nanjing", "by": "district", "mode": "ebike", "minutes": "5",
        "start": f"{start}T00:00:00+08:00", "end": f"{end + timedelta(days=1)}T00:00:00+08:00"}).json()["rows"]}
    kpis = {r["unit"]: r for r in client.get("/kpis", params={
        "by": "district", "start": f"{start}T00:00:00+08:00",
        "end": f"{end + timedelta(days=1)}T00:00:00+08:00"}).json()["units"]}
    for row in figures["rows"]:
        c, k = coverage[row["code"]], kpis.get(row["code"], {})
        assert row["walked_share"] == c["walked_share"] and row["households"] == c["households"]
        assert row["households_police_share"] == c["households_police_5min_share"]
        assert row["on_time_closure_rate"] == k.get("on_time_closure_rate")
        assert row["open_overdue"] == k.get("open_overdue", 0)
    assert sum(r["reported"] for r in figures["rows"]) > 100
    assert any(r["walked_share"] for r in figures["rows"])  # the synthetic visits were matched to streets
    table = client.get("/leaders/figures", params={"city": "nanjing", "start": start, "end": end, "format": "csv"})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["code"] for r in rows] == [r["code"] for r in figures["rows"]]
    assert [int(r["households"]) for r in rows] == [r["households"] for r in figures["rows"]]


def test_every_grid_view_and_the_standalone_file(client: TestClient) -> None:
    every = client.get("/leaders", params={"city": "nanjing", "grids": "1", "measure": "households_per_grid"})
    assert every.status_code == 200 and "87 grids" in every.text
    export = client.get("/leaders", params={"city": "nanjing", "export": "1"})
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert '<script src="/static' not in export.text and "L.map" in export.text  # Leaflet itself is inlined
    assert "http://testserver/leaders?" in export.text  # its links point back at the service


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"unit": "320199"}, 404, "no district, street or community"),
    ({"unit": "999999999999999"}, 404, "no grid"),
    ({"unit": "12"}, 422, "6 (district)"),
    ({"city": "atlantis"}, 404, "no city &#x27;atlantis&#x27;; cities: nanjing (南京市 / Nanjing)"),
    ({"start": "2026-11-20", "end": "2026-11-01"}, 422, "the period is empty"),
    ({"measure": "happiness"}, 422, "unknown measure"),
    ({"category": "ZZ9"}, 422, "unknown event category"),
    ({"minutes": "0"}, 422, ""),
])
def test_bad_requests_get_a_clear_answer(client: TestClient, params: dict[str, str], status: int,
                                         message: str) -> None:
    response = client.get("/leaders", params=params)
    assert response.status_code == status and message in response.text, response.text


def test_a_measure_without_data_says_so(client: TestClient) -> None:
    long_ago = {"city": "nanjing", "start": "2020-01-01", "end": "2020-01-31", "measure": "on_time_closure_rate"}
    response = client.get("/leaders", params=long_ago)
    assert response.status_code == 200
    assert "no event fell due in the period" in response.text and "the heat map is empty" in response.text
    assert 'class="folium-map"' in response.text  # still a map: the units, grey, with their figures


def test_the_pages_in_headless_chromium(nanjing_url: str) -> None:
    from maps.browser import local_page, serve_in_thread, wait_for_basemap

    community = codes(nanjing_url, "SELECT c.code FROM admin_units c JOIN grids g ON g.community_id = c.id "
                                   "GROUP BY c.code ORDER BY count(*) DESC, c.code LIMIT 1")[0]
    grid = codes(nanjing_url, "SELECT g.code FROM grids g JOIN events e ON e.grid_id = g.id GROUP BY g.code "
                              "ORDER BY count(*) DESC, g.code LIMIT 1")[0]
    with serve_in_thread(create_app(Settings(database_url=nanjing_url, escalate_every_s=0))) as base, \
            local_page(token=http_token(base)) as tab:
        page = tab.page
        page.goto(f"{base}/leaders?city=nanjing&measure=walked_share", wait_until="networkidle")
        wait_for_basemap(page)  # the city's own basemap under the districts
        page.screenshot(path=str(ROOT / "docs" / "leaders-city.png"))
        # click the middle of the first district drawn: the page goes down to it
        target = page.evaluate("""() => {
            for (const key in window) {
                const layer = window[key];
                if (layer && layer.getLayers && layer.toGeoJSON && key.startsWith('geo_json')) {
                    const found = layer.getLayers().find(
                        l => l.feature && l.feature.properties && l.feature.properties.href);
                    if (found) {
                        const map = found._map, c = found.getBounds().getCenter(), p = map.latLngToContainerPoint(c);
                        const box = map.getContainer().getBoundingClientRect();
                        return {x: box.left + p.x, y: box.top + p.y, code: found.feature.properties.code};
                    }
                }
            }
            return null; }""")
        assert target is not None
        with page.expect_navigation(wait_until="networkidle"):
            page.mouse.click(target["x"], target["y"])
        assert f"unit={target['code']}" in page.url
        assert target["code"] in page.inner_text("#gp-panel h1")
        # the table sorts by a click on its header
        page.click("#gp-table th:nth-child(2)")
        values = [int(v.replace(",", "")) for v in page.locator("#gp-table tbody td:nth-child(2)").all_inner_texts()]
        assert values == sorted(values, reverse=True)
        page.goto(f"{base}/leaders?unit={community}&measure=on_time_closure_rate", wait_until="networkidle")
        wait_for_basemap(page)
        page.screenshot(path=str(ROOT / "docs" / "leaders-community.png"))
        page.goto(f"{base}/leaders?unit={grid}&measure=walked_share", wait_until="networkidle")
        wait_for_basemap(page)
        page.screenshot(path=str(ROOT / "docs" / "leaders-grid.png"))
        assert not tab.external_requests and not tab.console_errors, (tab.external_requests, tab.console_errors)
    for name in ("leaders-city", "leaders-community", "leaders-grid"):
        assert (ROOT / "docs" / f"{name}.png").stat().st_size > 30_000


GRID_CODES = """() => [...new Set(window.gridpatrolGl.queryRenderedFeatures({layers: ['grid-fill']})
    .map(f => f.properties.code))].sort()"""


def test_every_grid_from_tiles_in_headless_chromium(nanjing_url: str) -> None:
    """``/leaders/grids``: no feature in the page; every grid of the leader's jurisdiction (and none outside it)
    drawn from the grids' vector tiles on the basemap, a click on one goes to its leaders' map."""
    from gis.access.store.users import create_user
    from gis.db.engine import writing
    from maps.browser import local_page, serve_in_thread, wait_for
    from tests.conftest import PASSWORD

    district = codes(nanjing_url, "SELECT code FROM admin_units WHERE level = 'district' ORDER BY code")[1]
    theirs = sorted(codes(nanjing_url, f"SELECT code FROM grids WHERE code LIKE '{district}%'"))
    engine = make_engine(nanjing_url)
    writing(engine, create_user, "district-head", PASSWORD, "leader", unit=district)
    engine.dispose()
    with serve_in_thread(create_app(Settings(database_url=nanjing_url, escalate_every_s=0))) as base, \
            local_page(token=http_token(base, "district-head")) as tab:
        page = tab.page
        answer = page.goto(f"{base}/leaders/grids", wait_until="load")
        assert answer is not None and len(answer.body()) < 10_000  # the page holds no grid
        wait_for(page, "document.documentElement.dataset.grids === 'drawn'", timeout=30_000)
        assert f"{len(theirs)}" in page.inner_text("#summary")
        assert page.evaluate(GRID_CODES) == theirs
        page.screenshot(path=str(ROOT / "docs" / "leaders-grids.png"))
        page.select_option("#measure", "households")
        assert "≥ 801" in page.inner_text("#legend")
        assert not tab.external_requests and not tab.console_errors, (tab.external_requests, tab.console_errors)
        code, lon, lat = codes(nanjing_url, "SELECT code || ',' || ST_X(ST_PointOnSurface(geom)) || ',' || "
                                            f"ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE code = '{theirs[0]}'"
                                            )[0].split(",")
        spot = page.evaluate(f"(() => {{ const p = map.latLngToContainerPoint([{lat}, {lon}]); "
                             "const b = document.getElementById('map').getBoundingClientRect(); "
                             "return [b.left + p.x, b.top + p.y]; })()")
        with page.expect_navigation(wait_until="load"):
            page.mouse.click(*spot)
        assert page.url.endswith(f"/leaders?unit={code}")
        # one street's grids: the map fits them, the summary names the street and counts its grids
        street = theirs[0][:9]
        street_name = codes(nanjing_url, f"SELECT name FROM admin_units WHERE code = '{street}'")[0]
        mine = [c for c in theirs if c.startswith(street)]
        page.goto(f"{base}/leaders/grids?unit={street}", wait_until="load")
        wait_for(page, "document.documentElement.dataset.grids === 'drawn'", timeout=30_000)
        summary = page.inner_text("#summary")
        assert summary == page.evaluate(f"TEXT[lang].unit({json.dumps(street_name)}, {len(mine)})")
        assert set(mine) <= set(page.evaluate(GRID_CODES))
        page.goto(f"{base}/leaders/grids?unit=320999", wait_until="load")  # not a unit of theirs
        # the page says "…" until the extent's answer comes
        wait_for(page, "!['', '…'].includes(document.getElementById('summary').textContent)", timeout=10_000)
        assert "no " in page.inner_text("#summary").lower() or "outside" in page.inner_text("#summary")
        assert not tab.console_errors or all("404" in m or "403" in m for m in tab.console_errors)


def test_a_unit_of_many_grids_opens_its_grids_from_tiles(nanjing_url: str) -> None:
    """``/leaders?…&grids=1`` holds a unit's grids in the page up to ``leaders_inline_grids_max``; above it, it
    sends the leader to the tiled page of that unit's grids, whose extent (``/leaders/grids/extent?unit=``) is the
    unit's own: its grids' box and number, inside the viewer's jurisdiction only."""
    from tests.conftest import user_headers

    districts = codes(nanjing_url, "SELECT code FROM admin_units WHERE level = 'district' ORDER BY code")
    street = codes(nanjing_url, f"SELECT code FROM admin_units WHERE level = 'street' AND code LIKE "
                                f"'{districts[1]}%' ORDER BY code")[0]
    in_street = codes(nanjing_url, f"SELECT code FROM grids WHERE code LIKE '{street}%'")
    assert len(in_street) > 3
    with TestClient(create_app(Settings(database_url=nanjing_url, escalate_every_s=0,
                                        leaders_inline_grids_max=3))) as c:
        c = admin(c)
        moved = c.get(f"/leaders?unit={street}&grids=1", follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["location"] == f"/leaders/grids?unit={street}"
        assert c.get("/leaders?city=nanjing&grids=1", follow_redirects=False).headers["location"] == \
            "/leaders/grids?city=nanjing"
        assert c.get(f"/leaders?unit={street}", follow_redirects=False).status_code == 200  # its communities
        assert c.get(f"/leaders?unit={street}&grids=1&export=1", follow_redirects=False).status_code == 200
        assert c.get(f"/leaders?unit={in_street[0]}&grids=1", follow_redirects=False).status_code == 200  # one
        assert c.get(f"/leaders/grids?unit={street}").status_code == 200
        extent = c.get(f"/leaders/grids/extent?unit={street}").json()
        whole = c.get("/leaders/grids/extent").json()
        assert extent["grids"] == len(in_street) < whole["grids"]
        (w, s, e, n), (cw, cs, ce, cn) = extent["bbox"], whole["bbox"]
        assert cw <= w < e <= ce and cs <= s < n <= cn
        assert extent["unit"] and "unit" not in whole
        assert c.get("/leaders/grids/extent?unit=999999").status_code == 404
        assert c.get("/leaders/grids/extent?unit=12ab").status_code == 422
        engine = make_engine(nanjing_url)
        theirs = user_headers(c, engine, "leader", districts[0])
        engine.dispose()
        assert c.get(f"/leaders/grids/extent?unit={street}", headers=theirs).status_code == 403
        refused = c.get(f"/leaders?unit={street}&grids=1", headers=theirs, follow_redirects=False)
        assert refused.status_code == 403 and "outside your jurisdiction" in refused.text
    with TestClient(create_app(Settings(database_url=nanjing_url, escalate_every_s=0))) as c:
        page = admin(c).get(f"/leaders?unit={street}&grids=1", follow_redirects=False)
        assert page.status_code == 200 and f"/leaders/grids?unit={street}" in page.text  # under 2,000: inline
