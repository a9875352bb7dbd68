"""The API fuzzed from its own OpenAPI schema (schemathesis): no generated request gets a 5xx.

Every operation of ``/openapi.json`` is called with requests generated from its schema — valid ones and ones
that break it — signed in as an admin (so the requests get past the sign-in to the code behind it), and again
with fewer examples as a grid member bound to one grid (so they meet the jurisdiction checks), on the
divided Beijing fixture with events. The last test checks that the run made at least ``MIN_REQUESTS`` requests.

Two adjustments keep the run within minutes, and neither hides an error class: the solvers' search time
(``time_limit_s``) is capped at 0.2 s, and the slow planners (a city's division, the patrol solvers, coverage)
get fewer examples than the rest. The assignment stream and the console's live queue are left out: they are
endless responses by design (``limit`` unset), tested in tests/db/test_events.py and tests/maps/test_console.py.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.embedded import EmbeddedPostgres
from gis.db.engine import make_engine, writing
from maps.browser import serve_in_thread
from tests.conftest import PASSWORD, _clone, http_headers

MIN_REQUESTS = 2000
SLOW = r"^/(divisions|coverage|leaders.*|grids/\{code\}/(patrols/.*|streets.*|visits.*|compliance|schedule)|)$"
CALLS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@dataclass
class Fuzzed:
    base: str
    headers: dict[str, str]
    scoped: dict[str, str]
    """A grid member's, bound to one grid: the requests meet the jurisdiction checks (403, 404) too."""


@pytest.fixture(scope="module")
def fuzzed(pg_server: EmbeddedPostgres, divided_template: str) -> Iterator[Fuzzed]:
    """The service, served on loopback over a database of its own with an event in every grid."""
    name = _clone(pg_server, divided_template)
    url = pg_server.url(name)
    with serve_in_thread(create_app(Settings(database_url=url, escalate_every_s=0, intake_rate=0))) as base:
        headers = http_headers(base)
        engine = make_engine(url)
        with engine.connect() as conn:  # some events, so ids and grids have something behind them
            points = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p "
                                       "FROM grids ORDER BY code) s")).all()
            grid, staff = conn.execute(text("SELECT g.code, sg.staff_id FROM grids g JOIN staff_grids sg ON "
                                            "sg.grid_id = g.id AND sg.duty = 'member' ORDER BY g.code LIMIT 1")).one()
        writing(engine, create_user, "fuzz-member", PASSWORD, "grid_member", unit=grid, staff_id=staff)
        engine.dispose()
        for lon, lat in points:
            httpx.post(f"{base}/events", headers=headers, timeout=10, json={
                "location": {"type": "Point", "coordinates": [lon, lat]}, "category": "C02", "source": "hotline"})
        yield Fuzzed(base, headers, http_headers(base, "fuzz-member"))
    pg_server.drop_database(name)


# the service's own schema, as /openapi.json serves it (building the app connects to nothing)
schema = schemathesis.openapi.from_dict(create_app(Settings(database_url="postgresql://unused/none")).openapi()) \
    .exclude(path_regex=r"/events/(stream|live)$")


def _call(case: schemathesis.Case, fuzzed: Fuzzed, headers: dict[str, str] | None = None) -> None:
    if isinstance(case.query, dict) and "time_limit_s" in case.query:
        with contextlib.suppress(TypeError, ValueError):  # a non-number stays: the API must refuse it with a 422
            case.query["time_limit_s"] = min(float(case.query["time_limit_s"]), 0.2)
    response = case.call(base_url=fuzzed.base, headers=fuzzed.headers if headers is None else headers,
                         timeout=120)
    CALLS[case.operation.label] += 1
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, (f"{case.method} {case.formatted_path} {case.query} {case.body!r}: "
                                        f"{response.status_code} {response.text[:800]}")


@schema.exclude(path_regex=SLOW).parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_gets_a_server_error(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    _call(case, fuzzed)


@schema.include(path_regex=SLOW).parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_to_the_planners_gets_a_server_error(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    _call(case, fuzzed)


@schema.exclude(path_regex=SLOW).parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_of_a_grid_member_gets_a_server_error(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    _call(case, fuzzed, fuzzed.scoped)


@schema.exclude(path_regex=SLOW).parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_without_a_sign_in_gets_a_server_error(case: schemathesis.Case, fuzzed: Fuzzed) -> None:
    _call(case, fuzzed, {})


RAW = [  # what no schema generates: bytes on the wire a client library would not send
    b"GET /%00 HTTP/1.1", b"GET /events?state=%00 HTTP/1.1", b"GET /grids?bbox=%FF%FE HTTP/1.1",
    b"GET /\xff\xfe HTTP/1.1", b"GET /open311/v2/requests.json?service_code=%C0%80 HTTP/1.1",
    b"PROPFIND / HTTP/1.1", b"BREW /events HTTP/1.1", b"TRACE /health HTTP/1.1", b"OPTIONS * HTTP/1.1",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1", b"DELETE /grids/%00 HTTP/1.1",
]


def _raw(base: str, head: bytes, extra: bytes = b"", body: bytes = b"") -> bytes:
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=15) as conn:
        conn.sendall(head.replace(b"\\xff\\xfe", b"\xff\xfe") + b"\r\nHost: x\r\n" + extra +
                     b"Connection: close\r\n\r\n" + body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer.split(b"\r\n", 1)[0]


def test_raw_requests_get_no_server_error_no_hang_and_lose_no_audit_line(fuzzed: Fuzzed) -> None:
    lines = [_raw(fuzzed.base, head) for head in RAW]
    lines.append(_raw(fuzzed.base, b"GET /health HTTP/1.1", b"X-Big: " + b"b" * 60_000 + b"\r\n"))
    lines.append(_raw(fuzzed.base, b"POST /events HTTP/1.1", b"Content-Length: 3000000\r\n"))
    lines.append(_raw(fuzzed.base, b"POST /token HTTP/1.1", b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: 12\r\n", b"username=%00"))
    for head, line in zip([*RAW, b"big header", b"big body", b"NUL form"], lines, strict=True):
        assert line.startswith(b"HTTP/1.1 ") and not line.startswith(b"HTTP/1.1 5"), (head[:60], line)
    import time

    httpx.post(f"{fuzzed.base}/token", data={"username": "after-the-noise", "password": "wrong password"}, timeout=10)
    deadline = time.monotonic() + 1.0
    found: list[dict[str, object]] = []
    while time.monotonic() < deadline and not found:
        found = [e for e in httpx.get(f"{fuzzed.base}/audit", params={"limit": 200},
                                      headers=fuzzed.headers, timeout=10).json()
                 if e["subject"] == "user after-the-noise"]
        time.sleep(0.05)
    assert found, "the failed sign-in after the raw requests is not in the audit log within a second"
    health = httpx.get(f"{fuzzed.base}/health", timeout=10).json()
    assert health["audit"]["quarantined"] == 0 and health["audit"]["dropped"] == 0


def test_the_run_made_enough_requests() -> None:
    total = sum(CALLS.values())
    assert len(CALLS) >= 40, sorted(CALLS)  # every operation was called
    assert total >= MIN_REQUESTS, f"{total} requests: {CALLS.most_common()}"
    assert sum(n for s, n in STATUSES.items() if s >= 500) == 0
    print(f"\nschemathesis: {total} requests over {len(CALLS)} operations; statuses {dict(sorted(STATUSES.items()))}")
