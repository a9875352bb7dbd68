"""The response models (api/schemas.py) say what the endpoints really answer: real answers of each main endpoint,
on the divided Beijing fixture, validated against the model the OpenAPI schema names for them, with no field the
model does not declare (a model allows extra fields so that none is lost on the way out: this is what keeps them
declared)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import schemas
from api.app import create_app
from api.settings import Settings
from tests.conftest import admin, staff_headers, user_headers


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def undeclared(value: Any, path: str = "") -> list[str]:
    """The fields of a validated answer that its models do not declare, with where they are."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        if not isinstance(value, schemas.CoverageRow):  # its validator admits only the per-minute reach columns
            found += [f"{path}.{k}" for k in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += undeclared(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += undeclared(item, f"{path}.{key}")
    return found


def conforms(model: Any, body: Any) -> Any:
    value = TypeAdapter(model).validate_python(body)
    assert not undeclared(value), f"{model}: fields no model declares: {undeclared(value)[:10]}"
    return value


def test_the_schema_names_a_model_for_each_main_resource(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def ref(path: str, method: str = "get", status: str = "200", media: str = "application/json") -> str:
        schema = paths[path][method]["responses"][status]["content"][media]["schema"]
        return str(schema.get("$ref") or schema["items"]["$ref"]).rsplit("/", 1)[1]

    assert ref("/events") == ref("/events/{event_id}") == ref("/events", "post", "201") == "Event"
    assert ref("/events/{event_id}/{action}", "post") == "Event"
    assert ref("/grids", media="application/geo+json") == "GridLayer"
    assert ref("/admin-units", media="application/geo+json") == "UnitLayer"
    assert ref("/cities") == "City"
    assert ref("/grids/{code}/reshape", "post") == "GridChange"
    assert ref("/grids/{code}/patrols/basic") == "BasicPatrol"
    assert ref("/grids/{code}/patrols/inspection") == "Inspection"
    assert ref("/grids/{code}/patrols/split") == "SharedPatrol"
    assert ref("/grids/{code}/visits", "post", "201") == ref("/visits/{visit_id}") == "Visit"
    assert ref("/grids/{code}/compliance") == "Compliance"
    assert ref("/kpis") == "Kpis"
    assert ref("/templates") == "Template" and ref("/events/selection", "post") == "BulkSteps"
    assert ref("/events/{event_id}/surroundings") == "Surroundings"
    assert ref("/cities/{city}/calendar") == "WorkingCalendar"
    assert ref("/coverage") == "Coverage"


def test_real_answers_conform_to_their_models(client: TestClient, divided_engine: Engine) -> None:
    with divided_engine.connect() as conn:
        code, lon, lat, grid_id = conn.execute(text(
            "SELECT g.code, ST_X(p), ST_Y(p), g.id FROM (SELECT g.*, ST_PointOnSurface(g.geom) p FROM grids g) g "
            "JOIN buildings b ON b.grid_id = g.id GROUP BY g.code, g.p, g.id ORDER BY count(*) DESC LIMIT 1")).one()
        member = conn.execute(text("SELECT staff_id FROM staff_grids WHERE grid_id = :g AND duty = 'member'"),
                              {"g": grid_id}).scalar_one()
        building = conn.execute(text("SELECT id FROM buildings WHERE grid_id = :g LIMIT 1"), {"g": grid_id}).scalar()

    # events, round the loop
    posted = client.post("/events", json={"location": {"type": "Point", "coordinates": [lon, lat]},
                                          "category": "C01", "source": "resident_app", "description": "井盖缺失",
                                          "reporter_contact": "138 0000 0000", "photos": ["https://x.example/1.jpg"]})
    assert posted.status_code == 201, posted.text
    event = conforms(schemas.Event, posted.json())
    assert event.reporter_contact == "138 0000 0000" and event.assignee is not None
    assert event.assignee is not None
    member_headers = staff_headers(client, divided_engine, event.assignee.id)
    centre = user_headers(client, divided_engine, "dispatcher", "beijing")
    second = client.post("/events", json={"location": {"type": "Point", "coordinates": [lon, lat]},
                                          "category": "C02", "source": "hotline"}).json()  # not a duplicate
    for action, body, who in [("handle", {"note": "换了井盖", "photos": ["https://x.example/2.jpg"]}, member_headers),
                              ("verify", {}, centre), ("close", {"evaluation": 5}, centre)]:
        answer = client.post(f"/events/{second['id']}/{action}", json=body, headers=who)
        assert answer.status_code == 200, answer.text
        conforms(schemas.Event, answer.json())
    assert answer.json()["evaluation"] == 5
    conforms(list[schemas.EventStep], client.get(f"/events/{second['id']}/history").json())
    listed = client.get("/events", params={"limit": 50}).json()
    conforms(list[schemas.Event], listed)
    assert not any("reporter_contact" in e for e in listed)  # a list carries no contacts: absent, not null
    conforms(schemas.Event, client.get(f"/events/{event.id}").json())
    suspended = client.post(f"/events/{event.id}/suspend", json={"note": "等待材料"})
    assert suspended.status_code == 200, suspended.text
    conforms(schemas.Event, suspended.json())
    steps = conforms(list[schemas.EventStep], client.get(f"/events/{event.id}/history").json())
    assert [s.action for s in steps][-1] == "suspend"
    conforms(list[schemas.Category], client.get("/categories").json())
    conforms(schemas.Escalations, client.post("/escalations/run").json())
    assert event.assignee is not None
    conforms(list[schemas.Event], client.get(f"/staff/{event.assignee.id}/events").json())
    kpis = conforms(schemas.Kpis, client.get("/kpis", params={"by": "community"}).json())
    assert kpis.units and kpis.units[0].reported >= 1
    # the console's own: templates, a selection's preview, a case on its map, the working calendar
    conforms(list[schemas.Template], client.get("/templates").json())
    conforms(schemas.BulkSteps, client.post("/events/selection", json={"ids": [event.id], "action": "accept"}).json())
    conforms(schemas.Surroundings, client.get(f"/events/{event.id}/surroundings").json())
    options = conforms(schemas.DispatchOptions, client.get(f"/events/{event.id}/dispatch-options").json())
    assert options.people and options.people[0].duty is not None and options.departments
    conforms(schemas.WorkingCalendar, client.get("/cities/beijing/calendar", params={"year": 2026}).json())

    # cities, units, grids
    conforms(list[schemas.City], client.get("/cities").json())
    conforms(schemas.UnitLayer, client.get("/admin-units", params={"limit": 50}).json())
    grids = conforms(schemas.GridLayer, client.get("/grids", params={"limit": 500}).json())
    conforms(schemas.BuildingLayer, client.get("/buildings", params={"limit": 200}).json())
    conforms(schemas.KeyPlaceLayer, client.get("/key-places", params={"limit": 200}).json())
    conforms(list[schemas.GridVersion], client.get(f"/grids/{code}/history").json())
    conforms(schemas.GridAt, client.get("/grid-at", params={"lon": lon, "lat": lat}).json())
    other = next(f.properties for f in grids.features if f.properties is not None and f.properties.code != code)
    dry = client.delete(f"/grids/{other.code}", params={"version": other.version, "reason": "check", "dry_run": True})
    assert dry.status_code == 200, dry.text
    conforms(schemas.GridChange, dry.json())
    done = client.delete(f"/grids/{code}", params={"version": 1, "reason": "the answer's shape"})
    assert done.status_code == 200, done.text
    change = conforms(schemas.GridChange, done.json())
    assert change.moves and change.staff and change.events  # the open event moved with its grid

    # patrols and visits on a grid that is still there
    code = change.grids[0].code
    conforms(schemas.BasicPatrol, client.get(f"/grids/{code}/patrols/basic").json())
    conforms(schemas.Inspection, client.get(f"/grids/{code}/patrols/inspection").json())
    conforms(schemas.SharedPatrol, client.get(f"/grids/{code}/patrols/split", params={"k": 2}).json())
    conforms(schemas.BudgetedRound, client.get(f"/grids/{code}/patrols/budgeted", params={"minutes": 20}).json())
    streets = conforms(schemas.GridStreets, client.get(f"/grids/{code}/streets").json())
    marked = client.put(f"/grids/{code}/streets/optional", json={"segments": [streets.features[0].properties.id],
                                                                 "reason": "a private lane"})
    assert marked.status_code == 200, marked.text
    conforms(schemas.GridStreets, marked.json())
    start = datetime.now(UTC) - timedelta(hours=1)
    track = [[lon - 0.0005, lat], [lon, lat], [lon + 0.0005, lat]]
    logged = client.post(f"/grids/{code}/visits", json={
        "kind": "basic", "staff_id": member, "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=30)).isoformat(), "buildings": [building] if building else [],
        "track": {"type": "LineString", "coordinates": track},
        "position": {"type": "Point", "coordinates": [lon, lat]}})
    assert logged.status_code == 201, logged.text
    visit = conforms(schemas.Visit, logged.json())
    conforms(schemas.Visit, client.get(f"/visits/{visit.id}").json())
    month = start.strftime("%Y-%m")
    conforms(schemas.Compliance, client.get(f"/grids/{code}/compliance", params={"month": month}).json())
    conforms(schemas.Schedule, client.get(f"/grids/{code}/schedule", params={"month": month}).json())
    coverage = conforms(schemas.Coverage, client.get("/coverage", params={"city": "beijing", "by": "community",
                                                                         "minutes": "1,3"}).json())
    assert coverage.rows and "households_police_3min" in (coverage.rows[0].model_extra or {})
    conforms(schemas.Me, client.get("/me").json())


def test_an_undeclared_field_is_caught() -> None:
    with pytest.raises(AssertionError, match="surprise"):
        conforms(schemas.Kpis, {"by": "grid", "start": "2026-12-01T00:00:00+00:00", "end": "2026-12-04T00:00:00+00:00",
                                "units": [], "surprise": 1})
    with pytest.raises(ValueError, match="undeclared coverage fields"):
        schemas.CoverageRow.model_validate({**{k: 0 for k in schemas.CoverageRow.model_fields}, "level": "grid",
                                            "code": "1", "name": "x", "households_police_3min": 1, "odd": 2})
