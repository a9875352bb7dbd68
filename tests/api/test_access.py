"""Access control: who may sign in, what each role may do, and that no one sees outside their jurisdiction.

The matrix test signs in every role bound to community A (or a grid in it) of the divided Beijing fixture and asks
every reading endpoint — lists, single records, maps, exports, search filters — for what lies in community B. None
of it may come back. A city-bound user of each role sees both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

import api.tokens
from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user, set_active, set_password, signing_key
from gis.db.embedded import EmbeddedPostgres
from gis.db.engine import make_engine, writing
from maps.browser import serve_in_thread
from tests.conftest import ADMIN, PASSWORD, _clone, admin, http_token, sign_in

A, B = "990001001001", "990001001002"  # the fixture's two communities, in street 990001001
STREET, CITY = "990001001", "beijing"


@dataclass
class World:
    url: str
    engine: Engine
    client: TestClient
    grid_a: str
    grid_b: str
    events: dict[str, dict[str, Any]]
    """a: in community A (with a contact), b: in community B, water: B's, gone straight to the water department"""
    staff_b: int


@pytest.fixture(scope="module")
def world(pg_server: EmbeddedPostgres, divided_template: str) -> Iterator[World]:
    name = _clone(pg_server, divided_template)
    url = pg_server.url(name)
    engine = make_engine(url)
    with TestClient(create_app(Settings(database_url=url, escalate_every_s=0, intake_rate=0))) as client:
        admin(client)
        with engine.connect() as conn:
            points = {c: conn.execute(text(
                "SELECT g.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) FROM grids g "
                "JOIN admin_units c ON c.id = g.community_id WHERE c.code = :c ORDER BY g.code LIMIT 1"),
                {"c": c}).one() for c in (A, B)}
        made = {}
        for key, community, category in (("a", A, "C01"), ("b", B, "C01"), ("water", B, "C05")):
            _, lon, lat = points[community]
            answer = client.post("/events", json={
                "location": {"type": "Point", "coordinates": [lon, lat]}, "category": category,
                "source": "hotline", "reporter_contact": f"contact of {key}"})
            assert answer.status_code == 201, answer.text
            made[key] = answer.json()
        yield World(url, engine, client, points[A][0], points[B][0], made, made["b"]["assignee"]["id"])
    engine.dispose()
    pg_server.drop_database(name)


def headers(world: World, role: str, unit: str | None, **extra: Any) -> dict[str, str]:
    name = f"{role}-{(unit or 'all')[-6:]}-{len(extra)}"
    with world.engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM users WHERE username = :n"), {"n": name}).first()
    if not exists:
        writing(world.engine, create_user, name, PASSWORD, role, unit=unit, **extra)
    return sign_in(world.client, name)


def _member_of_a(world: World) -> dict[str, str]:
    staff = world.events["a"]["assignee"]["id"]
    return headers(world, "grid_member", world.grid_a, staff_id=staff)


def scoped_users(world: World) -> list[tuple[str, dict[str, str]]]:
    out = [(f"{role}@{A}", headers(world, role, A)) for role in ("planner", "dispatcher", "leader")]
    out.append((f"grid_member@{world.grid_a}", _member_of_a(world)))
    return out


def codes_in(body: str) -> set[str]:
    return set(re.findall(r"\b99000100100[12]\d{0,3}\b", body))


def test_no_token_is_401_except_health_and_open311_reads(world: World) -> None:
    anonymous = TestClient(world.client.app)
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/open311/v2/services.json").status_code == 200
    assert anonymous.get("/open311/v2/requests.json").status_code == 200
    public = anonymous.get(f"/open311/v2/requests/{world.events['a']['id']}.json").text
    assert "contact of" not in public  # the public endpoints never carry personal data
    for method, path in (("GET", "/grids"), ("GET", "/events"), ("GET", f"/events/{world.events['a']['id']}"),
                         ("GET", "/kpis"), ("GET", "/cities"), ("POST", "/events"), ("GET", "/me"),
                         ("GET", f"/grids/{world.grid_a}/patrols/basic"), ("GET", "/leaders/figures"),
                         ("POST", "/open311/v2/requests.json")):
        answer = anonymous.request(method, path)
        assert answer.status_code == 401, (method, path, answer.status_code)
    assert anonymous.get("/grids").headers["www-authenticate"] == "Bearer"
    # a browser opening a page goes to the sign-in form, and back afterwards
    page = anonymous.get("/leaders?city=beijing", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fleaders%3Fcity%3Dbeijing"


def test_wrong_expired_and_revoked_tokens_are_401(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = world.client
    assert client.post("/token", data={"username": ADMIN, "password": "wrong"}).status_code == 401
    assert client.post("/token", data={"username": "nobody", "password": PASSWORD}).status_code == 401
    bad = client.get("/grids", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and "not valid" in bad.json()["detail"]
    key = writing(world.engine, signing_key)
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = jwt.encode({"sub": "1", "ver": 1, "exp": past}, key, algorithm="HS256")
    answer = client.get("/grids", headers={"Authorization": f"Bearer {expired}"})
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]
    guess = "a guessed key of thirty-two bytes or more"
    forged = jwt.encode({"sub": "1", "ver": 1, "exp": past + timedelta(hours=1)}, guess, algorithm="HS256")
    assert client.get("/grids", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    # a password reset, or disabling the account, signs the user out everywhere
    monkeypatch.setattr(api.tokens, "USER_TTL_S", 0.0)
    writing(world.engine, create_user, "li", PASSWORD, "leader", unit=CITY)
    token = sign_in(client, "li")
    assert client.get("/me", headers=token).json()["role"] == "leader"
    writing(world.engine, set_password, "li", "a brand new secret")
    assert client.get("/me", headers=token).status_code == 401
    token = sign_in(client, "li", "a brand new secret")
    writing(world.engine, set_active, "li", False)
    assert client.get("/me", headers=token).status_code == 401
    assert client.post("/token", data={"username": "li", "password": "a brand new secret"}).status_code == 401


def test_each_sign_in_gets_a_token_of_its_own(world: World) -> None:
    """Two sign-ins of one user within the same second (``iat`` counts seconds) get two tokens, both valid: a
    token names a session, and a session's changes steer only its own reads (api.consistency)."""
    first, second = (world.client.post("/token", data={"username": ADMIN, "password": PASSWORD}) for _ in range(2))
    tokens = [a.json()["access_token"] for a in (first, second)]
    assert tokens[0] != tokens[1]
    for token in tokens:
        assert world.client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_token_accepted_before_is_refused_once_it_expires(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = world.client
    soon = datetime.now(UTC) + timedelta(minutes=5)
    token = jwt.encode({"sub": "1", "ver": 1, "exp": soon}, writing(world.engine, signing_key), algorithm="HS256")
    assert client.get("/grids", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    later = soon.timestamp() + 1
    monkeypatch.setattr(api.tokens.time, "time", lambda: later)  # the service remembers the token as checked
    answer = client.get("/grids", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_roles_may_do_only_their_work(world: World) -> None:
    client = world.client
    leader = headers(world, "leader", CITY)
    planner = headers(world, "planner", CITY)
    member = _member_of_a(world)
    department = headers(world, "department", CITY, department="water")
    event = world.events["a"]["id"]
    assert client.post("/divisions", json={"city": CITY}, headers=leader).status_code == 403
    assert client.post(f"/events/{event}/handle", json={}, headers=leader).status_code == 403
    assert client.post(f"/events/{event}/handle", json={}, headers=planner).status_code == 403
    assert client.post("/escalations/run", headers=member).status_code == 403
    assert client.put(f"/grids/{world.grid_a}/streets/optional", json={"segments": [], "reason": "x"},
                      headers=member).status_code == 403
    assert client.post(f"/grids/{world.grid_a}/visits", headers=leader, json={
        "kind": "basic", "started_at": "2026-11-01T08:00:00Z", "ended_at": "2026-11-01T09:00:00Z"}).status_code == 403
    assert client.get("/leaders/figures", headers=department).status_code == 403
    assert client.get("/audit", headers=leader).status_code == 403
    refused = client.post("/staff", json={"name": "x", "role": "grid_member"}, headers=planner)
    assert refused.status_code == 403 and "dispatcher" in refused.json()["detail"]
    # and nothing they tried was stored
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM staff WHERE name = 'x'")).scalar() == 0


def test_no_one_sees_outside_their_jurisdiction(world: World) -> None:
    client = world.client
    ev_b, water = world.events["b"]["id"], world.events["water"]["id"]
    with world.engine.connect() as conn:
        b_point = conn.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
                                    "WHERE code = :c"), {"c": world.grid_b}).one()
        b_buildings = {r[0] for r in conn.execute(text(
            "SELECT b.id FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.code LIKE :p"), {"p": B + "%"})}
        b_places = {r[0] for r in conn.execute(text(
            "SELECT k.id FROM key_places k WHERE ST_Intersects(k.geom, (SELECT geom FROM admin_units WHERE code = :c)) "
            "AND NOT ST_Intersects(k.geom, (SELECT geom FROM admin_units WHERE code = :a))"), {"c": B, "a": A})}
    assert b_buildings and world.events["b"]["grid"].startswith(B)
    checked = 0
    for who, auth in scoped_users(world):
        prefix = A if not who.startswith("grid_member") else world.grid_a

        def get(path: str, who: str = who, auth: dict[str, str] = auth, **params: Any) -> Any:
            return client.get(path, params=params, headers=auth)

        # lists and search filters
        listed = get("/events", limit=1000).json()
        assert listed and all(e["grid"].startswith(prefix) for e in listed), who
        assert all("reporter_contact" not in e for e in listed)
        assert get("/events", unit=B).status_code == 403
        assert get("/events", grid=world.grid_b).status_code == 403
        for layer in ("/grids", "/admin-units"):
            found = get(layer, limit=10_000).json()["features"]
            assert found or (layer == "/admin-units" and prefix == world.grid_a)  # no unit lies inside a grid
            assert all(f["properties"]["code"].startswith(prefix) for f in found if f["properties"]["code"]), who
        assert not {f["id"] for f in get("/buildings", limit=10_000).json()["features"]} & b_buildings
        assert not {f["id"] for f in get("/key-places", limit=10_000).json()["features"]} & b_places
        # single records: 404, as if they did not exist
        for path in (f"/events/{ev_b}", f"/events/{ev_b}/history", f"/events/{water}",
                     f"/staff/{world.staff_b}/events"):
            assert get(path).status_code == 404, (who, path)
        # by code: 403
        for path in (f"/grids/{world.grid_b}/patrols/basic", f"/grids/{world.grid_b}/streets",
                     f"/grids/{world.grid_b}/history", f"/grids/{world.grid_b}/compliance?month=2026-11",
                     f"/grids/{world.grid_b}/schedule?month=2026-11"):
            assert client.get(path, headers=auth).status_code == 403, (who, path)
        assert get("/grid-at", lon=b_point[0], lat=b_point[1]).json()["grid"] is None
        # figures, maps and exports
        kpis = get("/kpis", by="grid", start="2020-01-01T00:00:00Z").json()["units"]
        assert kpis and all(u["unit"].startswith(prefix) for u in kpis)
        if not who.startswith("grid_member"):
            coverage = get("/coverage", city=CITY, by="grid").json()["rows"]
            assert coverage and all(r["code"].startswith(prefix) for r in coverage)
            assert get("/coverage", city=CITY, by="street").status_code == 403
        table = get("/leaders/figures").json()
        assert table["unit"]["code"] == prefix and all(r["code"].startswith(prefix) for r in table["rows"])
        assert get("/leaders/figures", unit=B).status_code == 403
        for page in (get("/leaders").text, get("/leaders", grids="1").text, get("/").text,
                     get("/leaders/figures", format="csv").text, get("/grids/export", city=CITY).text):
            # codes inside the jurisdiction, or of the units above it (a grid's own community): nothing of B
            assert {c for c in codes_in(page) if not (c.startswith(prefix) or prefix.startswith(c))} == set(), who
            assert "contact of" not in page
        checked += 1
    assert checked == 4


def test_department_sees_only_what_went_or_was_escalated_to_it(world: World) -> None:
    client = world.client
    water = headers(world, "department", CITY, department="water")
    listed = client.get("/events", headers=water).json()
    assert [e["id"] for e in listed] == [world.events["water"]["id"]]
    assert client.get(f"/events/{world.events['a']['id']}", headers=water).status_code == 404
    mine = client.get(f"/events/{world.events['water']['id']}", headers=water).json()
    assert mine["reporter_contact"] == "contact of water"  # the department handles it
    assert client.get("/kpis", params={"by": "grid"}, headers=water).status_code == 403
    own = client.get("/kpis", params={"by": "department", "start": "2020-01-01T00:00:00Z"}, headers=water).json()
    assert [u["unit"] for u in own["units"]] == ["water"]


def test_city_users_see_the_whole_city_and_contacts_only_when_handling(world: World) -> None:
    client = world.client
    ids = {e["id"] for e in world.events.values()}
    for role in ("planner", "dispatcher", "leader"):
        auth = headers(world, role, CITY)
        assert {e["id"] for e in client.get("/events", headers=auth).json()} == ids
        one = client.get(f"/events/{world.events['b']['id']}", headers=auth).json()
        assert ("reporter_contact" in one) == (role == "dispatcher"), role
    member = _member_of_a(world)
    assert client.get(f"/events/{world.events['a']['id']}", headers=member).json()["reporter_contact"] == "contact of a"


def test_every_change_and_every_read_of_personal_data_is_audited(world: World) -> None:
    client = world.client
    dispatcher = headers(world, "dispatcher", A)
    event = world.events["a"]["id"]
    client.get(f"/events/{event}", headers=dispatcher)
    client.post(f"/events/{event}/suspend", json={"note": "waiting for parts"}, headers=dispatcher)
    client.post(f"/events/{event}/resume", json={}, headers=dispatcher)
    lines = client.get("/audit", params={"username": f"dispatcher-{A[-6:]}-0"}).json()
    seen = [(e["action"], e["method"], e["path"], e["status"]) for e in lines[::-1]]
    assert ("read_personal", "GET", f"/events/{event}", None) in seen
    assert ("change", "POST", f"/events/{event}/suspend", 200) in seen
    assert ("change", "POST", f"/events/{event}/resume", 200) in seen
    assert any(e["action"] == "sign_in" for e in lines)
    # refused changes are there too, with who tried
    leader = headers(world, "leader", A)
    client.post(f"/events/{event}/close", json={}, headers=leader)
    tried = client.get("/audit", params={"username": f"leader-{A[-6:]}-0"}).json()
    assert any(e["path"] == f"/events/{event}/close" and e["status"] == 403 for e in tried)
    assert all(e["detail"] is None or "contact of" not in str(e["detail"]) for e in lines)


def test_intake_is_rate_limited_per_client(divided_url: str, divided_engine: Engine) -> None:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0, intake_rate=0.5,
                                        intake_burst=3))) as client:
        admin(client)
        with divided_engine.connect() as conn:
            lon, lat = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                                         "FROM grids LIMIT 1) s")).one()
        body = {"location": {"type": "Point", "coordinates": [lon, lat]}, "category": "C02", "source": "hotline"}
        answers = [client.post("/events", json=body) for _ in range(5)]
        assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
        assert int(answers[3].headers["retry-after"]) >= 1 and "too many requests" in answers[3].json()["detail"]
        other = user_headers_for(client, divided_engine)  # another client has its own allowance
        assert client.post("/events", json=body, headers=other).status_code == 201
        spec = client.post("/open311/v2/requests.json", data={"service_code": "C02", "lat": lat, "long": lon})
        assert spec.status_code == 429 and spec.json()[0]["code"] == 429
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 4  # the refused ones stored nothing


def user_headers_for(client: TestClient, engine: Engine) -> dict[str, str]:
    writing(engine, create_user, "hotline-2", PASSWORD, "dispatcher", unit=CITY)
    return sign_in(client, "hotline-2")


def test_bad_users_are_refused_clearly(fresh_engine: Engine) -> None:
    from gis.errors import ConflictError, InputError, NotFoundError

    writing(fresh_engine, create_user, "wang", PASSWORD, "admin")
    with pytest.raises(ConflictError, match="taken"):
        writing(fresh_engine, create_user, "WANG", PASSWORD, "admin")
    with pytest.raises(InputError, match="at least 8"):
        writing(fresh_engine, create_user, "zhao", "short", "admin")
    with pytest.raises(InputError, match="unknown role"):
        writing(fresh_engine, create_user, "zhao", PASSWORD, "king")
    with pytest.raises(InputError, match="bound to a unit"):
        writing(fresh_engine, create_user, "zhao", PASSWORD, "leader")
    with pytest.raises(NotFoundError, match="no grid, unit or city"):
        writing(fresh_engine, create_user, "zhao", PASSWORD, "leader", unit="123456")
    with pytest.raises(InputError, match="username"):
        writing(fresh_engine, create_user, "with space", PASSWORD, "admin")


def test_a_crowd_of_requests_does_not_starve_its_own_sign_in_checks(fresh_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A request takes its database connection before its user is checked (a route's dependencies in order). With
    every connection of the pool held by a request waiting for its check, a check that needed one of them waited
    for ever: under load every request stalled for the pool's 30 s and was answered 500, each time the users'
    cache expired. The checks have their own connections now."""
    monkeypatch.setattr(api.tokens, "USER_TTL_S", 0.0)  # every request checks its user afresh
    with serve_in_thread(create_app(Settings(database_url=fresh_url, db_connections=2, escalate_every_s=0))) as base:
        headers = {"Authorization": f"Bearer {http_token(base)}"}

        def tile(_: int) -> int:
            return httpx.get(f"{base}/tiles/admin_units/10/0/0.mvt", headers=headers, timeout=90).status_code

        with ThreadPoolExecutor(12) as crowd:
            answers = list(crowd.map(tile, range(36)))
    assert answers == [200] * 36
