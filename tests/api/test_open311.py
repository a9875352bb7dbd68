"""Open311 GeoReport v2 on the divided Beijing fixture: what a 311 client sends and reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from tests.conftest import admin, staff_headers


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


@pytest.fixture
def point(divided_engine: Engine) -> tuple[float, float]:
    with divided_engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                     "ORDER BY code LIMIT 1) s")).one()
    return lon, lat


def test_services(client: TestClient) -> None:
    services = client.get("/open311/v2/services.json").json()
    codes = {s["service_code"] for s in services}
    assert {"C01", "E01", "S02"} <= codes
    assert all(s["type"] == "realtime" for s in services)
    metadata = {s["service_code"]: s["metadata"] for s in services}
    assert metadata["C01"] is True and metadata["S01"] is metadata["S02"] is metadata["S03"] is False
    (publish,) = client.get("/open311/v2/services/C01.json").json()["attributes"]
    assert publish["code"] == "publish" and publish["datatype"] == "singlevaluelist"
    assert {v["key"] for v in publish["values"]} == {"true", "false"}
    assert client.get("/open311/v2/services/S03.json").json() == {"service_code": "S03", "attributes": []}
    missing = client.get("/open311/v2/services/Z9.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404


def test_a_client_posts_a_form_and_reads_the_request_back(client: TestClient, point: tuple[float, float],
                                                          divided_engine: Engine) -> None:
    lon, lat = point
    created = client.post("/open311/v2/requests.json", data={
        "service_code": "C01", "lat": str(lat), "long": str(lon), "description": "井盖缺失",
        "email": "resident@example.com", "phone": "13800000000", "first_name": "张", "media_url": "https://x/1.jpg"})
    assert created.status_code == 201, created.text
    (receipt,) = created.json()
    rid = receipt["service_request_id"]
    (request,) = client.get(f"/open311/v2/requests/{rid}.json").json()
    assert request["status"] == "open" and request["service_code"] == "C01"
    assert request["status_notes"].startswith("dispatched") and request["expected_datetime"]
    assert request["agency_responsible"] and request["media_url"] == "https://x/1.jpg"
    assert abs(request["lat"] - lat) < 1e-6 and abs(request["long"] - lon) < 1e-6
    everything = client.get("/open311/v2/requests.json").text + client.get(f"/open311/v2/requests/{rid}.json").text
    assert "example.com" not in everything and "13800000000" not in everything  # never the reporter's contact
    assignee = client.get(f"/events/{rid}").json()["assignee"]["id"]
    member = staff_headers(client, divided_engine, assignee)
    for action, who in (("handle", member), ("verify", client.headers), ("close", client.headers)):
        assert client.post(f"/events/{rid}/{action}", json={"note": f"{action} done"}, headers=who).status_code == 200
    (closed,) = client.get(f"/open311/v2/requests/{rid}.json").json()
    assert closed["status"] == "closed" and closed["status_notes"] == "closed: close done"


def test_filters_and_the_spatial_extension(client: TestClient, point: tuple[float, float]) -> None:
    lon, lat = point
    for code in ("C01", "E01", "E01"):
        client.post("/open311/v2/requests.json", json={"service_code": code, "lat": lat, "long": lon})
    get = lambda **q: client.get("/open311/v2/requests.json", params=q).json()  # noqa: E731
    assert len(get()) == 3
    assert len(get(service_code="E01")) == 2 and len(get(service_code="C01,E01")) == 3
    assert len(get(status="open")) == 3 and get(status="closed") == []
    assert len(get(lat=lat, long=lon, radius=10)) == 3
    assert get(lat=lat + 0.05, long=lon, radius=100) == []
    assert len(get(bbox=f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}")) == 3
    assert get(start_date="2020-01-01T00:00:00Z", end_date="2020-02-01T00:00:00Z") == []


def test_bad_requests_get_the_spec_error_shape(client: TestClient, point: tuple[float, float]) -> None:
    lon, lat = point
    cases = [
        ({"service_code": "C01", "address_string": "新街口"}, "lat and long are required"),
        ({"service_code": "C01", "lat": "north", "long": str(lon)}, "numbers"),
        ({"service_code": "Z99", "lat": str(lat), "long": str(lon)}, "unknown category"),
        ({"lat": str(lat), "long": str(lon)}, "service_code is required"),
        ({"service_code": "C01", "lat": "91", "long": str(lon)}, "out of range"),
    ]
    for form, message in cases:
        response = client.post("/open311/v2/requests.json", data=form)
        assert response.status_code == 400, response.text
        (error,) = response.json()
        assert error["code"] == 400 and message in error["description"]
    assert client.get("/open311/v2/requests.json", params={"status": "pending"}).status_code == 400
    assert client.get("/open311/v2/requests.json", params={"lat": lat}).status_code == 400
    assert client.get("/open311/v2/requests/abc.json").status_code == 400
    assert client.get("/open311/v2/requests/99999.json").status_code == 404
    assert client.get("/open311/v2/requests.json").json() == []


def test_a_311_client_signs_with_the_specs_api_key(client: TestClient, point: tuple[float, float]) -> None:
    lon, lat = point
    token = client.headers["Authorization"].removeprefix("Bearer ")
    anonymous = TestClient(client.app)  # no bearer header: the key travels in the form, as the spec has it
    form = {"service_code": "C02", "lat": str(lat), "long": str(lon)}
    assert anonymous.post("/open311/v2/requests.json", data={**form, "api_key": token}).status_code == 201
    refused = anonymous.post("/open311/v2/requests.json", data={**form, "api_key": "not-a-key"})
    assert refused.status_code == 401 and refused.json()[0]["code"] == 401  # the spec's error shape
    assert anonymous.post("/open311/v2/requests.json", data=form).status_code == 401
