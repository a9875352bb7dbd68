from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from gis.planning.store.importer import ImportReport
from tests.conftest import admin


@pytest.fixture(scope="module")
def client(beijing_db: tuple[str, ImportReport]) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=beijing_db[0], default_city="beijing"))) as c:
        yield admin(c)


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["postgis"].startswith("3.")


def test_health_reports_a_dead_database_as_503() -> None:
    settings = Settings(database_url="postgresql+psycopg2://gridpatrol@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as c:
        response = c.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}  # no host, port or driver text


def test_buildings_are_a_geojson_feature_collection(client: TestClient,
                                                    beijing_db: tuple[str, ImportReport]) -> None:
    response = client.get("/buildings", params={"limit": 10000})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    total = beijing_db[1].counts["buildings"].total
    assert body["numberMatched"] == body["numberReturned"] == len(body["features"]) == total
    feature = body["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    props = feature["properties"]
    assert {"households", "households_est", "households_source", "use", "levels"} <= set(props)
    assert props["households_source"] == "estimate"
    assert sum(f["properties"]["households"] for f in body["features"]) == beijing_db[1].households


def test_bbox_filters_and_paging_walks_every_feature(client: TestClient) -> None:
    everything = client.get("/buildings", params={"limit": 10000}).json()
    west = client.get("/buildings", params={"bbox": "116.3440,39.9976,116.3500,40.0089", "limit": 10000}).json()
    assert 0 < west["numberMatched"] < everything["numberMatched"]
    for f in west["features"]:
        lons = [pt[0] for ring in f["geometry"]["coordinates"][0] for pt in ring]
        assert min(lons) <= 116.3500
    ids, offset = [], 0
    while True:
        page = client.get("/buildings", params={"limit": 50, "offset": offset}).json()
        ids += [f["id"] for f in page["features"]]
        assert page["numberMatched"] == everything["numberMatched"]
        if page["numberReturned"] < 50:
            break
        offset += 50
    assert ids == [f["id"] for f in everything["features"]]  # no feature lost or repeated across pages


@pytest.mark.parametrize("bbox, reason", [
    ("116.36,39.99,116.34,40.01", "min ≤ max"),
    ("116.34,39.99,116.36", "four numbers"),
    ("116.34,39.99,116.36,40.01,5", "four numbers"),
    ("a,b,c,d", "must be numbers"),
    ("116.34,95,116.36,96", "latitudes"),
    ("-190,39,116,40", "longitudes"),
    ("nan,39,116,40", "finite"),
])
def test_bad_bbox_is_422_with_the_reason(client: TestClient, bbox: str, reason: str) -> None:
    response = client.get("/buildings", params={"bbox": bbox})
    assert response.status_code == 422
    assert reason in response.json()["detail"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 10001}, {"limit": "ten"}, {"offset": -1}])
def test_bad_paging_is_422(client: TestClient, params: dict) -> None:
    response = client.get("/key-places", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] in params


def test_other_layers(client: TestClient) -> None:
    places = client.get("/key-places", params={"kind": "police"}).json()
    assert places["numberMatched"] >= 1
    assert {f["properties"]["kind"] for f in places["features"]} == {"police"}
    assert all(f["geometry"]["type"] == "Point" for f in places["features"])
    units = client.get("/admin-units", params={"level": "city"}).json()
    assert [f["properties"]["name"] for f in units["features"]] == ["北京市"]
    assert client.get("/grids").json()["numberMatched"] == 0
    cities = client.get("/cities").json()
    assert cities[0]["name"] == "北京市" and cities[0]["buildings"] > 200


def test_unknown_city_is_404_with_what_exists(client: TestClient) -> None:
    response = client.get("/buildings", params={"city": "atlantis"})
    assert response.status_code == 404
    assert "Beijing" in response.json()["detail"]
    assert client.get("/buildings", params={"city": "beijing"}).json()["numberMatched"] > 200
    assert client.get("/", params={"city": "atlantis"}).status_code == 404


def test_bad_enum_filters_are_422(client: TestClient) -> None:
    assert client.get("/admin-units", params={"level": "planet"}).status_code == 422
    assert client.get("/buildings", params={"use": "castle"}).status_code == 422


def test_openapi_and_docs_are_served_locally(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/health", "/buildings", "/key-places", "/admin-units", "/grids"} <= set(spec["paths"])
    docs = client.get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert "cdn.jsdelivr" not in docs
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
