"""The basic patrol shared among k members on real streets (central Nanjing): every street in exactly one part,
each part a closed walk from its start, GeoJSON, GPX and the map page, and bad input refused clearly."""

from __future__ import annotations

from collections.abc import Iterator

import gpxpy
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from gis.db.engine import make_engine
from tests.conftest import admin


@pytest.fixture(scope="module")
def client(nanjing_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=nanjing_url, escalate_every_s=0))) as c:
        yield admin(c)


@pytest.fixture(scope="module")
def grid(nanjing_url: str) -> str:
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        code = conn.exec_driver_sql("SELECT code FROM grids ORDER BY code LIMIT 1 OFFSET 5").scalar_one()
    engine.dispose()
    return str(code)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_k_parts_walk_every_street_once_between_them(client: TestClient, grid: str, k: int) -> None:
    plan = client.get(f"/grids/{grid}/patrols/split", params={"k": k}).json()
    streets = client.get(f"/grids/{grid}/streets").json()["features"]
    required = sum(not s["properties"]["optional"] for s in streets)
    parts = [f for f in plan["features"] if f["properties"]["kind"] == "tour"]
    starts = [f for f in plan["features"] if f["properties"]["kind"] == "start"]
    p = plan["properties"]
    assert len(parts) == len(starts) == p["k"] == k
    assert sum(part["properties"]["streets"] for part in parts) == required  # each street in exactly one part
    for part, start in zip(parts, starts, strict=True):
        line = part["geometry"]["coordinates"]
        assert line[0] == line[-1] == start["geometry"]["coordinates"]  # from its start and back
        assert part["properties"]["length_m"] >= part["properties"]["required_m"] > 0
        q = part["properties"]  # each part's own route: optimal, or a proven bound and its gap
        assert q["optimal"] or (q["lower_bound_m"] is not None and 0 <= q["gap"] < 1)
        assert q["lower_bound_m"] <= q["length_m"] + 1e-6
    longest = max(part["properties"]["length_m"] for part in parts)
    assert p["longest_m"] == pytest.approx(longest)
    assert p["lower_bound_m"] <= longest and 1 <= p["ratio_to_lower_bound"] < 2
    assert p["longest_m"] < p["single_route_m"]  # sharing shortens the longest walk
    one = client.get(f"/grids/{grid}/patrols/basic").json()["properties"]
    assert p["single_route_m"] == pytest.approx(one["length_m"])


def test_gpx_and_the_map_page(client: TestClient, grid: str) -> None:
    gpx = client.get(f"/grids/{grid}/patrols/split", params={"k": 3, "format": "gpx"})
    assert gpx.status_code == 200 and gpx.headers["content-type"].startswith("application/gpx+xml")
    parsed = gpxpy.parse(gpx.text)
    assert len(parsed.tracks) == 3 and len(parsed.waypoints) == 3
    page = client.get(f"/grids/{grid}/patrols/split", params={"k": 3, "format": "html"})
    assert page.status_code == 200 and "basic patrol shared by 3" in page.text and "the lower bound" in page.text


def test_each_member_from_their_own_start(client: TestClient, grid: str) -> None:
    basic = client.get(f"/grids/{grid}/patrols/basic").json()
    line = [f for f in basic["features"] if f["properties"]["kind"] == "step"]
    far = line[len(line) // 2]["geometry"]["coordinates"][0]
    near = line[0]["geometry"]["coordinates"][0]
    starts = f"{near[0]},{near[1]};{far[0]},{far[1]}"
    plan = client.get(f"/grids/{grid}/patrols/split", params={"k": 2, "starts": starts}).json()
    at = sorted(tuple(f["geometry"]["coordinates"]) for f in plan["features"] if f["properties"]["kind"] == "start")
    assert at == sorted([tuple(near), tuple(far)]) and plan["properties"]["own_starts"]


@pytest.mark.parametrize("params, status, message", [
    ({"k": 0}, 422, "greater than or equal to 1"),
    ({"k": 9}, 422, "less than or equal to 8"),
    ({"k": 2, "starts": "118.78,32.04"}, 422, "give one start per member: 2 members, 1 starts"),
    ({"k": 2, "starts": "118.78,32.04;north"}, 422, "member 2's start 'north' is not lon,lat"),
    ({"k": 2, "starts": "118.78,32.04;119.5,32.5"}, 422, "from the grid's walkable streets"),
])
def test_bad_input_is_refused(client: TestClient, grid: str, params: dict[str, object], status: int,
                              message: str) -> None:
    answer = client.get(f"/grids/{grid}/patrols/split", params=params)
    assert answer.status_code == status and message in answer.text, answer.text


def test_a_rural_grid_is_solved_exactly_or_bounded(client: TestClient, nanjing_url: str) -> None:
    """Where a grid's streets fall into pieces, CP-SAT solves the route exactly (or says by how much it may be
    off), never longer than the heuristic's."""
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        codes = [r[0] for r in conn.exec_driver_sql("SELECT code FROM grids ORDER BY code")]
    engine.dispose()
    rural = None
    for code in codes:
        plain = client.get(f"/grids/{code}/patrols/basic", params={"exact_s": 0}).json()["properties"]
        if plain["required_pieces"] > 1:
            rural = code
            break
    assert rural is not None, "the Nanjing demo has grids whose streets fall into pieces"
    assert not plain["optimal"] and plain["gap"] is None and plain["lower_bound_m"] is None
    solved = client.get(f"/grids/{rural}/patrols/basic", params={"exact_s": 10}).json()["properties"]
    assert solved["length_m"] <= plain["length_m"] + 0.1
    assert solved["lower_bound_m"] <= solved["length_m"] + 0.1
    assert solved["optimal"] == (solved["gap"] == 0.0)
    assert solved["covered_edges"] == plain["covered_edges"]
    assert client.get(f"/grids/{rural}/patrols/basic", params={"exact_s": 61}).status_code == 422
