"""OGC API — Features as GDAL's OAPIF driver (the one QGIS uses) reads it, signed in with a bearer token, and as the
standard says: paging by next links, bbox and its CRS, datetime, output CRSs, and 400s in the OGC exception format."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.engine import writing
from maps.browser import serve_in_thread
from tests.conftest import PASSWORD, http_token
from tests.db.test_events import inner_point, report


@pytest.fixture
def served(divided_url: str, divided_engine: Engine) -> Iterator[tuple[str, str]]:
    writing(divided_engine, create_user, "qgis", PASSWORD, "admin", unit=None)
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        yield base, http_token(base, "qgis")


GDAL_READ = """
import json, sys
import pyogrio
url, token, names = sys.argv[1], sys.argv[2], sys.argv[3:]
pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token, "GDAL_HTTP_TIMEOUT": "60"})
out = {"layers": sorted(name for name, _ in pyogrio.list_layers(url))}
for name in names:
    frame = pyogrio.read_dataframe(url, layer=name)
    out[name] = {"columns": list(frame.columns), "crs": frame.crs.to_string() if frame.crs else None,
                 "rows": json.loads(frame.drop(columns="geometry").to_json(orient="records"))}
print(json.dumps(out))
"""


def gdal_read(url: str, token: str, names: list[str]) -> tuple[Any, ...]:
    """GDAL's reading of ``url`` (its layers, and the named ones' columns, CRS and rows), signed in with ``token``."""
    done = subprocess.run([sys.executable, "-c", GDAL_READ, url, token, *names], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    return (set(out["layers"]), *(out[n] for n in names))


def get(base: str, token: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_gdal_opens_the_collections_signed_in(served: tuple[str, str], divided_engine: Engine) -> None:
    base, token = served
    _, lon, lat = inner_point(divided_engine)
    assert httpx.post(f"{base}/events", json=report(lon, lat), headers={"Authorization": f"Bearer {token}"},
                      timeout=10).status_code == 201
    with divided_engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM grids")).scalar_one()
    # QGIS's "Authorization: Bearer" in GDAL's terms (GDAL_HTTP_AUTH=BEARER, GDAL 3.9+), in a process of its own:
    # pyogrio holds the interpreter while GDAL fetches a page, and this test's server runs in this process
    layers, frame, events = gdal_read(f"OAPIF:{base}/ogc", token, ["grids", "events"])
    assert layers == {"grids", "admin_units", "buildings", "key_places", "events"}
    assert len(frame["rows"]) == grids and all(len(r["code"]) == 15 for r in frame["rows"])
    assert frame["crs"] in ("OGC:CRS84", "EPSG:4326")  # longitude first, WGS-84
    assert len(events["rows"]) == 1 and "reporter_contact" not in events["columns"]
    assert "description" not in events["columns"] and events["rows"][0]["category"] == "C01"


def test_items_page_filter_and_project_as_the_standard_says(served: tuple[str, str], divided_engine: Engine) -> None:
    base, token = served
    landing = get(base, token, "/ogc/").json()
    assert {link["rel"] for link in landing["links"]} >= {"self", "service-desc", "conformance", "data"}
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in get(base, token, "/ogc/conformance").json()[
        "conformsTo"]
    first = get(base, token, "/ogc/collections/grids/items", limit="2")
    assert first.headers["content-type"].startswith("application/geo+json")
    page = first.json()
    assert page["numberReturned"] == 2
    following = next(link["href"] for link in page["links"] if link["rel"] == "next")
    second = httpx.get(following, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert {f["id"] for f in second["features"]}.isdisjoint(f["id"] for f in page["features"])
    # bbox around one grid's point finds it; in EPSG:4326 the axes are latitude first, in and out
    code, lon, lat = inner_point(divided_engine)
    box = f"{lon - 1e-4},{lat - 1e-4},{lon + 1e-4},{lat + 1e-4}"
    found = get(base, token, "/ogc/collections/grids/items", bbox=box).json()["features"]
    assert code in {f["properties"]["code"] for f in found}
    flipped = get(base, token, "/ogc/collections/grids/items", bbox=f"{lat - 1e-4},{lon - 1e-4},{lat + 1e-4},"
                  f"{lon + 1e-4}", **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326",
                                      "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"})
    assert flipped.headers["content-crs"] == "<http://www.opengis.net/def/crs/EPSG/0/4326>"
    ring = flipped.json()["features"][0]["geometry"]["coordinates"][0][0]
    assert 39 < ring[0][0] < 41 and 115 < ring[0][1] < 118  # Beijing: latitude first
    metres = get(base, token, "/ogc/collections/grids/items", limit="1",
                 crs="http://www.opengis.net/def/crs/EPSG/0/3857").json()["features"][0]["geometry"]
    assert metres["coordinates"][0][0][0][0] > 1e7  # Web Mercator metres
    # datetime: the grids' versions are of today, so none were made before 2000
    assert get(base, token, "/ogc/collections/grids/items", datetime="../2000-01-01T00:00:00Z").json()[
        "numberReturned"] == 0
    one = get(base, token, f"/ogc/collections/grids/items/{found[0]['id']}").json()
    assert one["properties"]["code"] == found[0]["properties"]["code"]


@pytest.mark.parametrize(("path", "params", "status", "words"), [
    ("/ogc/collections/grids/items", {"bbox": "1,2,3"}, 400, "4 or 6"),
    ("/ogc/collections/grids/items", {"bbox": "a,b,c,d"}, 400, "4 or 6"),
    ("/ogc/collections/grids/items", {"bbox": "0,50,1,40"}, 400, "south edge"),
    ("/ogc/collections/grids/items", {"datetime": "yesterday"}, 400, "RFC 3339"),
    ("/ogc/collections/grids/items", {"datetime": "2026-12-02T00:00:00Z/2026-12-01T00:00:00Z"}, 400, "ends before"),
    ("/ogc/collections/grids/items", {"crs": "http://www.opengis.net/def/crs/EPSG/0/2385"}, 400, "CRS84"),
    ("/ogc/collections/grids/items", {"limit": "-1"}, 400, "limit"),
    ("/ogc/collections/rivers/items", {}, 404, "no collection 'rivers'"),
    ("/ogc/collections/grids/items/99999999", {}, 404, "no feature"),
])
def test_bad_parameters_get_ogc_exceptions(served: tuple[str, str], path: str, params: dict[str, str], status: int,
                                           words: str) -> None:
    base, token = served
    answer = get(base, token, path, **params)
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"code", "description"} and words in body["description"]


def test_another_community_sees_none_of_these_features(served: tuple[str, str], divided_engine: Engine) -> None:
    base, _ = served
    code, lon, lat = inner_point(divided_engine)
    with divided_engine.connect() as conn:
        other = conn.execute(text("SELECT code FROM admin_units WHERE level = 'community' AND code <> left(:g, 12) "
                                  "ORDER BY code LIMIT 1"), {"g": code}).scalar()
    writing(divided_engine, create_user, "next-door", PASSWORD, "dispatcher", unit=other)
    theirs = http_token(base, "next-door")
    box = f"{lon - 1e-4},{lat - 1e-4},{lon + 1e-4},{lat + 1e-4}"
    seen = get(base, theirs, "/ogc/collections/grids/items", bbox=box).json()["features"]
    assert code not in {f["properties"]["code"] for f in seen}
    assert httpx.get(f"{base}/ogc/collections", timeout=10).status_code == 401


def test_ogc_api_tiles_serve_the_same_tiles(served: tuple[str, str], divided_engine: Engine) -> None:
    from gis.geo.tiles import tile_of

    base, token = served
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in get(base, token, "/ogc/conformance").json()[
        "conformsTo"]
    scheme = get(base, token, "/ogc/tileMatrixSets/WebMercatorQuad").json()
    assert scheme["tileMatrices"][15]["matrixWidth"] == 2 ** 15 and scheme["crs"].endswith("EPSG/0/3857")
    listed = get(base, token, "/ogc/collections/grids/tiles").json()["tilesets"]
    assert listed[0]["dataType"] == "vector" and listed[0]["tileMatrixSetURI"].endswith("WebMercatorQuad")
    template = next(link["href"] for link in get(base, token, "/ogc/collections/grids/tiles/WebMercatorQuad").json()[
        "links"] if link["rel"] == "item")
    _, lon, lat = inner_point(divided_engine)
    x, y = tile_of(lon, lat, 15)
    via_ogc = httpx.get(template.format(tileMatrix=15, tileRow=y, tileCol=x),
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert via_ogc.status_code == 200 and via_ogc.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert via_ogc.content == get(base, token, f"/tiles/grids/15/{x}/{y}.mvt").content != b""
    for path, status in (("/ogc/collections/grids/tiles/WorldCRS84Quad", 404), ("/ogc/tileMatrixSets/Other", 404),
                         ("/ogc/collections/grids/tiles/WebMercatorQuad/15/x/1", 400),
                         ("/ogc/collections/grids/tiles/WebMercatorQuad/3/8/0", 400),
                         ("/ogc/collections/rivers/tiles", 404)):
        answer = get(base, token, path)
        assert answer.status_code == status and set(answer.json()) == {"code", "description"}, path
