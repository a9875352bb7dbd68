"""The planner's page in headless Chromium: drag a grid's boundary with the mouse, check, save, see it stored."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely
from playwright.sync_api import sync_playwright
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.session import TOKEN_COOKIE
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.engine import writing
from gis.geo.cities import city_from_options
from gis.planning.store.divisions import divide_and_store
from gis.planning.store.importer import import_osm
from maps.browser import CHROMIUM, CHROMIUM_ARGS, local_page, serve_in_thread, wait_for
from tests.conftest import BEIJING, PASSWORD, ROOT, http_token


def pick_vertex(engine: Engine) -> tuple[str, str, tuple[float, float]]:
    """A grid, its community, and one of its vertices shared with a neighbour and far from the community edge."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT g.code, c.code, ST_AsBinary(ST_Transform(g.geom, 32650)), ST_AsBinary(ST_Transform(c.geom, 32650)),
                   ST_AsBinary(ST_Transform(ST_Union(n.geom), 32650))
            FROM grids g JOIN admin_units c ON c.id = g.community_id
            JOIN grids n ON n.community_id = g.community_id AND n.id <> g.id AND ST_Touches(n.geom, g.geom)
            GROUP BY g.code, c.code, g.geom, c.geom ORDER BY g.code""")).all()
    for code, community_code, grid_wkb, community_wkb, neighbours_wkb in rows:
        grid, community = shapely.from_wkb(bytes(grid_wkb)), shapely.from_wkb(bytes(community_wkb))
        shared = grid.boundary.intersection(shapely.from_wkb(bytes(neighbours_wkb)).boundary)
        for x, y in shapely.get_coordinates(shared):
            point = shapely.Point(x, y)
            if community.boundary.distance(point) > 60:
                lonlat = shapely.get_coordinates(gpd.GeoSeries([point], crs=32650).to_crs(4326).iloc[0])[0]
                return code, community_code, (float(lonlat[0]), float(lonlat[1]))
    raise AssertionError("no interior shared vertex found")


def test_planner_drags_a_boundary_and_saves_it(fresh_engine: Engine, fresh_url: str) -> None:
    import_osm(fresh_engine, BEIJING, city=city_from_options("beijing", code="110000"))
    with fresh_engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(fresh_engine, city_id)
    code, community_code, (lon, lat) = pick_vertex(fresh_engine)
    writing(fresh_engine, create_user, "zhang", PASSWORD, "planner", unit="beijing", display_name="planner zhang")
    with serve_in_thread(create_app(Settings(database_url=fresh_url))) as base, \
            local_page(width=1300, height=850, token=http_token(base, "zhang")) as tab:
        page = tab.page
        page.goto(f"{base}/planner?community={community_code}&grid={code}", wait_until="networkidle")
        page.wait_for_selector(".marker-icon")  # Geoman's vertex handles: the grid is in edit mode
        assert code in page.inner_text("#grid-info")
        box = page.locator("#map").bounding_box()
        point = page.evaluate(
            f"(() => {{ const p = map.latLngToContainerPoint([{lat}, {lon}]); return [p.x, p.y]; }})()")
        x, y = box["x"] + point[0], box["y"] + point[1]
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 12, y + 9, steps=6)
        page.mouse.up()
        assert page.inner_text("#author") == "planner zhang"  # who signed in is who edits
        page.fill("#reason", "boundary follows the new wall")
        page.click("#preview")
        page.wait_for_selector("#result.ok", timeout=15000)
        assert "Impact" in page.inner_text("#result")
        page.click("#save")
        wait_for(page, "document.querySelector('#result').innerText.includes('Saved')", timeout=15000)
        wait_for(page, "document.querySelector('#grid-info').innerText.includes('version 2')",
                               timeout=15000)
        assert "Saved" in page.inner_text("#result")  # still shown after the map was redrawn
        shot = ROOT / "docs" / "planner.png"
        page.screenshot(path=str(shot))
        assert tab.external_requests == [] and tab.console_errors == []
    with fresh_engine.connect() as conn:
        versions = conn.execute(text(
            "SELECT version, change, author FROM grid_versions WHERE code = :c ORDER BY version"), {"c": code}).all()
    assert [tuple(v) for v in versions] == [(1, "division", "gridpatrol"), (2, "reshape", "zhang")]
    assert Path(shot).stat().st_size > 20_000


def _screen(page, box, lon: float, lat: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    p = page.evaluate(f"(() => {{ const p = map.latLngToContainerPoint([{lat}, {lon}]); return [p.x, p.y]; }})()")
    return box["x"] + p[0], box["y"] + p[1]


def _check_and_save(page) -> None:  # type: ignore[no-untyped-def]
    for button, word in [("#preview", "Impact"), ("#save", "Saved")]:
        page.click(button)
        wait_for(page, f"['{word}', 'Not saved'].some((w) => "
                               "document.querySelector('#result').innerText.includes(w))", timeout=15000)
        assert word in page.inner_text("#result"), page.inner_text("#result")


def test_planner_splits_merges_deletes_and_draws_grids(fresh_engine: Engine, fresh_url: str) -> None:
    import_osm(fresh_engine, BEIJING, city=city_from_options("beijing", code="110000"))
    with fresh_engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(fresh_engine, city_id)
    code, community_code, _ = pick_vertex(fresh_engine)
    with fresh_engine.connect() as conn:
        grid = shapely.from_wkb(bytes(conn.execute(
            text("SELECT ST_AsBinary(geom) FROM grids WHERE code = :c"), {"c": code}).scalar_one()))
    errors: list[str] = []
    with serve_in_thread(create_app(Settings(database_url=fresh_url))) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1300, "height": 850})
        context.add_cookies([{"name": TOKEN_COOKIE, "value": http_token(base), "domain": "127.0.0.1", "path": "/"}])
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{base}/planner?community={community_code}&grid={code}", wait_until="networkidle")
        page.wait_for_selector(".marker-icon")
        page.fill("#reason", "two new estates")
        box = page.locator("#map").bounding_box()

        # split: a line drawn across the grid, through a point inside it, finished by clicking its last point
        page.click("#split")
        inside = grid.representative_point()
        minx, _, maxx, _ = grid.bounds
        start = _screen(page, box, minx - 0.0005, inside.y)
        end = _screen(page, box, maxx + 0.0005, inside.y)
        page.mouse.click(*start)
        page.mouse.click(*end)
        page.mouse.click(*end)
        _check_and_save(page)
        page.screenshot(path=str(ROOT / "docs" / "planner-tools.png"))  # the split saved: new codes, old retired
        with fresh_engine.connect() as conn:
            pieces = [r[0] for r in conn.execute(text(
                "SELECT code FROM grid_versions WHERE change = 'split' AND version = 1 ORDER BY code"))]
            assert conn.execute(text("SELECT count(*) FROM grids WHERE code = :c"), {"c": code}).scalar() == 0
        assert len(pieces) >= 2

        # merge the two pieces again: the first is selected after the save; click the second
        page.click("#merge")
        with fresh_engine.connect() as conn:
            lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                         "WHERE code = :c) s"), {"c": pieces[1]}).one()
        page.mouse.click(*_screen(page, box, lon, lat))
        _check_and_save(page)
        with fresh_engine.connect() as conn:
            merged = conn.execute(text(
                "SELECT code FROM grid_versions WHERE change = 'merge' AND version = 1")).scalar_one()
            changes = [r[0] for r in conn.execute(text(
                "SELECT change FROM grid_versions WHERE code = :c"), {"c": merged})]
        assert changes == ["merge"] and merged not in pieces

        # draw a new grid: a small square inside the merged grid, closed by clicking the first corner
        page.click("#create")
        with fresh_engine.connect() as conn:
            cx, cy = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                       "WHERE code = :c) s"), {"c": merged}).one()
        d = 0.0002
        corners = [_screen(page, box, cx + dx, cy + dy) for dx, dy in [(-d, -d), (d, -d), (d, d), (-d, d), (-d, -d)]]
        for corner in corners:
            page.mouse.click(*corner)
        _check_and_save(page)
        with fresh_engine.connect() as conn:
            drawn = conn.execute(text(
                "SELECT code FROM grid_versions WHERE change = 'create' AND version = 1")).scalar_one()

        # and delete it again: it is selected after the save
        wait_for(page, f"document.querySelector('#grid-info').innerText.includes('{drawn}')")
        page.click("#delete")
        _check_and_save(page)
        browser.close()
    assert errors == []
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM grids WHERE code = :c"), {"c": drawn}).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM buildings WHERE grid_id IS NULL")).scalar() == 0
        retired = {r[0] for r in conn.execute(text("SELECT code FROM unit_codes WHERE retired_at IS NOT NULL"))}
    assert {code, pieces[0], pieces[1], drawn} <= retired


def test_planner_proposes_grids_for_a_community_and_takes_some_then_all(fresh_engine: Engine,
                                                                        fresh_url: str) -> None:
    """"Propose grids for this community": the proposal drawn beside the current grids; one proposed grid clicked
    and accepted (drawn in as a new grid), then the whole proposal accepted (the community's grids replaced)."""
    import_osm(fresh_engine, BEIJING, city=city_from_options("beijing", code="110000"))
    with fresh_engine.connect() as conn:
        city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
    divide_and_store(fresh_engine, city_id)
    with fresh_engine.connect() as conn:
        community = conn.execute(text(
            "SELECT c.code FROM admin_units c JOIN grids g ON g.community_id = c.id WHERE c.level = 'community' "
            "GROUP BY c.code ORDER BY count(*) DESC, c.code LIMIT 1")).scalar_one()
        before = set(conn.execute(text("SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
                                       "WHERE c.code = :c"), {"c": community}).scalars())
    writing(fresh_engine, create_user, "li", PASSWORD, "planner", unit="beijing", display_name="planner li")
    with serve_in_thread(create_app(Settings(database_url=fresh_url))) as base, \
            local_page(width=1300, height=850, token=http_token(base, "li")) as tab:
        page = tab.page
        page.goto(f"{base}/planner?community={community}", wait_until="networkidle")
        page.fill("#reason", "the community's grids redrawn")
        page.click("#propose")
        page.wait_for_selector("#proposal:not([hidden])", timeout=15000)
        assert "Proposal" in page.inner_text("#proposal-info")
        proposed = page.evaluate("state.proposal.getLayers().map((l) => l.feature.geometry)")
        assert len(proposed) >= 1
        inside = shapely.geometry.shape(proposed[0]).representative_point()
        box = page.locator("#map").bounding_box()
        page.mouse.click(*_screen(page, box, inside.x, inside.y))
        wait_for(page, "!document.querySelector('#accept-some').disabled", timeout=5000)
        page.screenshot(path=str(ROOT / "docs" / "planner-proposal.png"))
        page.click("#accept-some")
        wait_for(page, "['Saved', 'Not'].some((w) => document.querySelector('#result').innerText.includes(w))",
                 timeout=20000)
        assert "Saved" in page.inner_text("#result"), page.inner_text("#result")
        with fresh_engine.connect() as conn:
            drawn = conn.execute(text("SELECT count(*) FROM grid_versions WHERE change = 'create' "
                                      "AND author = 'li' AND version = 1")).scalar()
        assert drawn == 1  # one new grid (its neighbours have new versions too, having given up its area)
        page.click("#propose")
        page.wait_for_selector("#proposal:not([hidden])", timeout=15000)
        page.click("#accept-all")
        wait_for(page, "document.querySelector('#result').innerText.includes('grids replace')", timeout=20000)
        assert tab.external_requests == [] and tab.console_errors == []
    with fresh_engine.connect() as conn:
        after = set(conn.execute(text("SELECT g.code FROM grids g JOIN admin_units c ON c.id = g.community_id "
                                      "WHERE c.code = :c"), {"c": community}).scalars())
        authors = set(conn.execute(text("SELECT author FROM grid_versions WHERE code = ANY(:c)"),
                                   {"c": list(after)}).scalars())
    assert after and not after & before and authors == {"li"}  # new codes, all of them the planner's
