"""Request bodies (issue 18, item 7): one limit per route, enforced while reading (413), and no body read before
the sign-in is checked where the protocol allows."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from api.app import create_app
from api.limits import DEFAULT_BODY, MAX_GPX_BYTES, body_limit
from api.settings import Settings
from maps.browser import serve_in_thread
from tests.conftest import http_headers


@pytest.fixture
def served(fresh_url: str) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(database_url=fresh_url))) as base:
        yield base


def _first_line(base: str, head: bytes, timeout: float = 5.0) -> bytes:
    """Send only a request's head (its body promised, never sent): the answer must come without it."""
    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as conn:
        conn.sendall(head)
        return conn.recv(300).split(b"\r\n", 1)[0]


def test_no_body_is_read_before_the_sign_in(served: str) -> None:
    started = time.monotonic()
    line = _first_line(served, b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 100000\r\n\r\n")
    assert line.startswith(b"HTTP/1.1 401") and time.monotonic() - started < 2
    forged = _first_line(served, b"POST /grids/merge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer forged\r\n"
                                 b"Content-Length: 50\r\n\r\n")
    assert forged.startswith(b"HTTP/1.1 401")


def test_a_body_over_its_routes_limit_is_refused_as_it_arrives(served: str) -> None:
    token = http_headers(served)["Authorization"].encode()
    declared = _first_line(served, b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: " + token +
                           f"\r\nContent-Length: {DEFAULT_BODY + 1}\r\n\r\n".encode())
    assert declared.startswith(b"HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the guard counts what arrives
        for _ in range(40):
            yield b"x" * 65536

    chunked = httpx.post(f"{served}/events", content=chunks(), timeout=30,
                         headers={**http_headers(served), "content-type": "application/json"})
    assert chunked.status_code == 413 and "1 MB" in chunked.json()["detail"]
    small = httpx.post(f"{served}/events", json={"location": None}, headers=http_headers(served), timeout=10)
    assert small.status_code == 422  # under the limit: the route's own checks


def test_each_route_has_its_limit() -> None:
    assert body_limit("POST", "/grids/320102001001001/visits/gpx") == MAX_GPX_BYTES
    assert body_limit("POST", "/events/bulk") > body_limit("POST", "/photos") > DEFAULT_BODY
    assert body_limit("POST", "/events") == DEFAULT_BODY


def test_a_change_signed_by_the_cookie_must_come_from_the_services_pages(served: str) -> None:
    from api.session import TOKEN_COOKIE

    token = http_headers(served)["Authorization"].split()[1]
    cookie = {"cookie": f"{TOKEN_COOKIE}={token}", "content-type": "application/json"}
    body = b'{"location": null}'
    assert httpx.post(f"{served}/events", content=body, headers=cookie, timeout=10).status_code == 403
    elsewhere = httpx.post(f"{served}/events", content=body, timeout=10,
                           headers={**cookie, "origin": "http://evil.example"})
    assert elsewhere.status_code == 403 and "Origin" in elsewhere.json()["detail"]
    here = httpx.post(f"{served}/events", content=body, timeout=10, headers={**cookie, "origin": served})
    assert here.status_code == 422  # let through: the route's own check of the body
    bearer = httpx.post(f"{served}/events", content=body, timeout=10,
                        headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    assert bearer.status_code == 422  # a token a client sends itself needs no Origin
