"""Stored XSS through OpenStreetMap names (issue 18, item 3), tried in headless Chromium on every map page.

Anyone may edit a name upstream. A school, a street, a building and a district of central Nanjing are renamed to a
string that breaks out of HTML, of a JavaScript template literal (folium's ``Tooltip``) and of ``innerHTML``
(``GeoJsonTooltip``); the extract is imported, divided and staffed like any other. On each page no dialog may open
and nothing may go wrong in the console (a script the Content-Security-Policy refused says so there), every
tooltip is opened, and the name must show as the text it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.app import create_app
from api.settings import Settings
from gis.db.embedded import EmbeddedPostgres
from maps.browser import local_page, serve_in_thread
from tests.conftest import NANJING, NANJING_CITY, divided_city, http_token

EVIL = "</script><img src=x onerror=alert(1)>${alert(2)}`'\""
SEEN = EVIL.replace("\\", "")  # what a person must read: the string itself


def _renamed(osm: str) -> str:
    """The extract with one school, one street, one building and one district named ``EVIL``."""
    value = html.escape(EVIL, quote=True)
    done: set[str] = set()

    def element(match: re.Match[str]) -> str:
        body = match.group(0)
        kind = ("school" if 'k="amenity" v="school"' in body else
                "district" if 'k="admin_level" v="6"' in body and match.group(1) == "relation" else
                "street" if 'k="highway"' in body and match.group(1) == "way" else
                "building" if 'k="building"' in body and match.group(1) == "way" else None)
        if kind is None or kind in done or 'k="name"' not in body:
            return body
        done.add(kind)
        return re.sub(r'<tag k="name" v="[^"]*"/>', f'<tag k="name" v="{value}"/>', body, count=1)

    out = re.sub(r"<(way|relation)\b.*?</\1>", element, osm, flags=re.S)
    assert done == {"school", "street", "building", "district"}, done
    return out


@pytest.fixture(scope="module")
def hostile(pg_server: EmbeddedPostgres, template_db: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, dict[str, str]]]:
    path = Path(tmp_path_factory.mktemp("osm")) / "nanjing-hostile.osm"
    path.write_text(_renamed(NANJING.read_text(encoding="utf-8")), encoding="utf-8")
    name, engine, _ = divided_city(pg_server, template_db, path, NANJING_CITY)
    url = pg_server.url(name)
    with engine.connect() as conn:
        school_grid = conn.execute(text(
            "SELECT g.code FROM grids g JOIN key_places k ON ST_Intersects(g.geom, k.geom) "
            "WHERE k.name = :n ORDER BY g.code LIMIT 1"), {"n": EVIL}).scalar_one()
        street_grid = conn.execute(text(
            "SELECT g.code FROM grids g JOIN road_edges e ON ST_Intersects(g.geom, e.geom) "
            "WHERE e.name = :n AND e.network = 'walk' ORDER BY g.code LIMIT 1"), {"n": EVIL}).scalar_one()
        district = conn.execute(text("SELECT code FROM admin_units WHERE level = 'district' AND name = :n"),
                                {"n": EVIL}).scalar_one()
    engine.dispose()
    yield url, {"school_grid": school_grid, "street_grid": street_grid, "district": district}
    pg_server.drop_database(name)


_OPEN_TOOLTIPS = """() => {
  const map = Object.values(window).find(v => window.L && v instanceof L.Map);
  const texts = [];
  const hostile = l => l.feature && Object.values(l.feature.properties || {}).some(v => String(v).includes('onerror'));
  const where = l => l.getLatLng ? l.getLatLng() : (l.getBounds ? l.getBounds().getCenter() : null);
  const read = t => { const el = t && t.getElement && t.getElement(); if (el) texts.push(el.textContent); };
  const visit = (layer, group) => {
    if (!layer._map) return;  // a layer switched off in the layer control
    if (layer.getTooltip && layer.getTooltip() && !layer.eachLayer) {
      layer.openTooltip(where(layer) || undefined); read(layer.getTooltip());
    }
    if (group && hostile(layer)) {  // what hovering does: the group's tooltip, its content made for this feature
      const content = group.getTooltip()._content;
      read(L.tooltip().setLatLng(where(layer)).setContent(typeof content === 'function' ? content(layer) : content)
           .addTo(map));
    }
    if (layer.eachLayer) layer.eachLayer(child => visit(child, layer.getTooltip && layer.getTooltip() ? layer : group));
  };
  map.eachLayer(layer => visit(layer, null));
  return texts;
}"""


def test_hostile_names_show_as_text_on_every_map_page(hostile: tuple[str, dict[str, str]]) -> None:
    url, where = hostile
    with serve_in_thread(create_app(Settings(database_url=url, escalate_every_s=0))) as base:
        token = http_token(base)
        pages = {
            "city map": "/?city=nanjing",
            "leaders, the city's districts": "/leaders?city=nanjing",
            "leaders, the district's streets": f"/leaders?unit={where['district']}",
            "leaders, a grid and its key places": f"/leaders?unit={where['school_grid']}",
            "basic patrol by the school": f"/grids/{where['school_grid']}/patrols/basic?format=html",
            "basic patrol along the street": f"/grids/{where['street_grid']}/patrols/basic?format=html",
            "full inspection": f"/grids/{where['school_grid']}/patrols/inspection?format=html",
        }
        nameless = {"full inspection"}  # its stops are buildings by number: no name to show, still safe
        with local_page(token=token) as tab:
            dialogs: list[str] = []
            tab.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            for label, path in pages.items():
                answer = tab.page.goto(f"{base}{path}", wait_until="networkidle", timeout=60_000)
                assert answer is not None and answer.status == 200, (label, answer and answer.status)
                assert "'nonce-" in answer.headers["content-security-policy"]
                tooltips = tab.page.evaluate(_OPEN_TOOLTIPS)
                shown = tab.page.evaluate("() => document.body.innerText") + "\n".join(tooltips)
                assert label in nameless or SEEN in shown, f"{label}: the name is not shown as text"
                assert tab.page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0, label
                assert dialogs == [], f"{label}: a dialog opened: {dialogs}"
                assert tab.console_errors == [], f"{label}: {tab.console_errors}"
                assert tab.external_requests == [], label
