"""Open311 without signing in: what the public sees, and what it never sees (issue 18, item 2); and the spec's XML.

Before, the public reads gave out every event of every city: disputes, police incidents and residents in need
(whose exact points locate vulnerable people), descriptions and internal notes, 7-decimal coordinates and photo
keys, and ``service_request_id=1,…,1000`` walked the table.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from tests.conftest import sign_in, user_headers

REQUEST_ELEMENTS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                    "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"}


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield c  # not signed in: each test signs its own requests


@pytest.fixture
def grids(divided_engine: Engine) -> list[tuple[str, str, float, float]]:
    """(grid, community, lon, lat) of a point inside each of the first and the last grid."""
    with divided_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, c.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
            "JOIN admin_units c ON c.id = g.community_id ORDER BY g.code")).all()
    assert rows[0][1] != rows[-1][1], "the fixture should have two communities"
    return [tuple(rows[0]), tuple(rows[-1])]  # type: ignore[list-item]


def _post(client: TestClient, key: str, code: str, lon: float, lat: float, **extra: str) -> str:
    answer = client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": code, "lat": repr(lat), "long": repr(lon), "description": f"secret {code}",
        "email": "resident@example.com", "media_url": f"photo:{code}", **extra})
    assert answer.status_code == 201, answer.text
    return str(answer.json()[0]["service_request_id"])


def test_the_public_sees_public_categories_coarsened_and_only_what_was_published(
        client: TestClient, grids: list[tuple[str, str, float, float]]) -> None:
    key = sign_in(client)["Authorization"].split()[1]
    _, _, lon, lat = grids[0]
    ids = {code: _post(client, key, code, lon, lat) for code in ("S01", "S02", "S03", "C02")}
    ids["C01"] = _post(client, key, "C01", lon, lat, **{"attribute[publish]": "true"})

    public = client.get("/open311/v2/requests.json").json()
    assert {r["service_code"] for r in public} == {"C01", "C02"}  # never a dispute, a police case, a person
    for r in public:
        assert round(r["lat"], 3) == r["lat"] and round(r["long"], 3) == r["long"]  # about 100 m
        assert abs(r["lat"] - lat) < 0.0006 and abs(r["long"] - lon) < 0.0006
        assert r["agency_responsible"] and r["requested_datetime"] and r["status"] == "open"
    by_code = {r["service_code"]: r for r in public}
    assert by_code["C02"]["description"] == "" and by_code["C02"]["media_url"] is None  # not published
    assert by_code["C01"]["description"] == "secret C01" and by_code["C01"]["media_url"] == "photo:C01"
    assert "example.com" not in client.get("/open311/v2/requests.json").text
    for code in ("S01", "S02", "S03"):  # as if it did not exist
        assert client.get(f"/open311/v2/requests/{ids[code]}.json").status_code == 404
    walk = ",".join(str(i) for i in range(1, 1001))
    refused = client.get("/open311/v2/requests.json", params={"service_request_id": walk})
    assert refused.status_code == 400 and "at most 100" in refused.json()[0]["description"]
    few = client.get("/open311/v2/requests.json", params={"service_request_id": ",".join(ids.values())}).json()
    assert {r["service_code"] for r in few} == {"C01", "C02"}


def test_a_signed_in_caller_sees_their_jurisdiction_in_full(
        client: TestClient, divided_engine: Engine, grids: list[tuple[str, str, float, float]]) -> None:
    key = sign_in(client)["Authorization"].split()[1]
    (_, community_a, lon, lat), (_, community_b, _, _) = grids
    dispute = _post(client, key, "S01", lon, lat)
    lamp = _post(client, key, "C02", lon, lat)
    inside = user_headers(client, divided_engine, "dispatcher", community_a)
    outside = user_headers(client, divided_engine, "dispatcher", community_b)
    (mine,) = client.get(f"/open311/v2/requests/{dispute}.json", headers=inside).json()
    assert mine["description"] == "secret S01" and abs(mine["lat"] - lat) < 1e-6
    assert client.get(f"/open311/v2/requests/{dispute}.json", headers=outside).status_code == 404
    (theirs,) = client.get(f"/open311/v2/requests/{lamp}.json", headers=outside).json()
    assert theirs["description"] == "" and round(theirs["lat"], 3) == theirs["lat"]  # the public's view
    bad = client.get("/open311/v2/requests.json", headers={"Authorization": "Bearer forged"})
    assert bad.status_code == 401  # a token that does not check is refused, not read as the public


def _xml(answer: object) -> ET.Element:
    assert answer.headers["content-type"].startswith("text/xml")  # type: ignore[attr-defined]
    body = answer.content  # type: ignore[attr-defined]
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(body)


def test_every_endpoint_speaks_the_specs_xml(client: TestClient, grids: list[tuple[str, str, float, float]]) -> None:
    found = _xml(client.get("/open311/discovery.xml"))
    assert found.tag == "discovery" and found.find("changeset") is not None
    (endpoint,) = found.find("endpoints")  # type: ignore[union-attr]
    assert endpoint.tag == "endpoint" and endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert {f.text for f in endpoint.find("formats")} == {"text/xml", "application/json"}  # type: ignore[union-attr]
    assert endpoint.findtext("url", "").endswith("/open311/v2")
    assert client.get("/open311/discovery.json").json()["endpoints"][0]["type"] == "production"

    services = _xml(client.get("/open311/v2/services.xml"))
    assert services.tag == "services" and {c.tag for c in services} == {"service"}
    first = services[0]
    assert [c.tag for c in first] == ["service_code", "service_name", "description", "metadata", "type",
                                      "keywords", "group"]
    definition = _xml(client.get("/open311/v2/services/C01.xml"))
    assert definition.tag == "service_definition" and definition.findtext("service_code") == "C01"
    attribute = definition.find("attributes/attribute")
    assert attribute is not None and attribute.findtext("code") == "publish"
    assert attribute.findtext("variable") == "true" and attribute.findtext("datatype") == "singlevaluelist"
    assert {v.findtext("key") for v in attribute.findall("values/value")} == {"true", "false"}

    key = sign_in(client)["Authorization"].split()[1]
    _, _, lon, lat = grids[0]
    made = client.post("/open311/v2/requests.xml", data={"api_key": key, "service_code": "C02", "lat": repr(lat),
                                                         "long": repr(lon), "description": "灯不亮 \x01"})
    assert made.status_code == 201
    receipt = _xml(made).find("request")
    assert receipt is not None and receipt.findtext("service_request_id", "").isdigit()
    listing = _xml(client.get("/open311/v2/requests.xml", headers=sign_in(client)))
    assert listing.tag == "service_requests"
    (request,) = [r for r in listing if r.findtext("service_request_id") == receipt.findtext("service_request_id")]
    assert {c.tag for c in request} == REQUEST_ELEMENTS
    assert request.findtext("description") == "灯不亮 "  # a control character XML cannot hold is left out

    error = client.get("/open311/v2/requests/abc.xml")
    assert error.status_code == 400
    (line,) = _xml(error)
    assert line.tag == "error" and line.findtext("code") == "400" and line.findtext("description")
    assert client.get("/open311/v2/services.csv").status_code == 404
    unsigned = client.post("/open311/v2/requests.xml", data={"service_code": "C02", "lat": "1", "long": "1"})
    assert unsigned.status_code == 401 and _xml(unsigned)[0].findtext("code") == "401"
