"""The audit log under hostile requests: nothing a client sends stops it (issue 18, item 1).

A NUL in a path, a method longer than the column, a 10 kB path and a byte that is not UTF-8 each used to fail the
whole batch, which was put back at the head of the queue: no line of that worker was ever written again.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.audit import AuditLog
from api.settings import Settings
from gis.access import lines
from gis.access.store import audit as audit_store
from maps.browser import serve_in_thread
from tests.conftest import http_headers


@pytest.fixture
def served(fresh_url: str) -> Iterator[str]:
    with serve_in_thread(create_app(Settings(database_url=fresh_url))) as base:
        yield base


def _raw(base: str, request: bytes) -> bytes:
    """One request as raw bytes on the wire (what no HTTP client library would send), and the answer's first
    line."""
    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=10) as conn:
        conn.sendall(request)
        return conn.recv(200).split(b"\r\n", 1)[0]


def test_hostile_requests_never_stop_the_audit_log(served: str) -> None:
    assert httpx.post(f"{served}/%00", timeout=10).status_code < 500
    assert httpx.request("PROPPATCH", f"{served}/", timeout=10).status_code < 500
    assert httpx.post(f"{served}/{'a' * 10_000}", timeout=10).status_code < 500
    assert httpx.post(f"{served}/%FF%FE", timeout=10).status_code < 500
    answer = _raw(served, b"POST /\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert not answer.startswith(b"HTTP/1.1 5"), answer
    time.sleep(0.5)  # the writer runs every 0.2 s: let it meet the lines above first

    refused = httpx.post(f"{served}/token", data={"username": "nobody", "password": "wrong password"},
                         timeout=30)
    assert refused.status_code == 401
    deadline = time.monotonic() + 1.0
    admin = http_headers(served)
    seen: list[dict[str, object]] = []
    while time.monotonic() < deadline and not any(e["action"] == "sign_in_failed" for e in seen):
        seen = httpx.get(f"{served}/audit", params={"limit": 50}, headers=admin, timeout=10).json()
        time.sleep(0.05)
    failed = [e for e in seen if e["action"] == "sign_in_failed"]
    assert failed and failed[0]["subject"] == "user nobody"
    methods = {e["method"] for e in seen}
    assert "PROPPAT…" in methods  # cut to its column, marked
    paths = [str(e["path"]) for e in seen if e["path"]]
    assert "/\\x00" in paths and any(p.startswith("/aaaa") and len(p) <= lines.LIMITS["path"] for p in paths)
    health = httpx.get(f"{served}/health", timeout=10).json()
    assert health["audit"] == {"queued": 0, "quarantined": 0, "dropped": 0}


def test_a_line_the_database_refuses_is_quarantined_and_the_rest_written(
        fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bypass the cleaning, so that PostgreSQL itself refuses a line (a NUL in jsonb): the writer's last defence.
    monkeypatch.setattr(audit_store, "clean_line", lambda entry: {k: entry.get(k) for k in lines.FIELDS})
    log = AuditLog(fresh_engine)
    log.add(None, "probe", subject="before")
    log.add(None, "probe", subject="bad", detail={"note": "\x00"})
    log.add(None, "probe", subject="after")
    log.flush()
    assert log.figures() == {"queued": 0, "quarantined": 1, "dropped": 0}
    with fresh_engine.connect() as conn:
        written = conn.execute(text("SELECT subject FROM audit_log WHERE action = 'probe' ORDER BY id")).scalars()
        assert list(written) == ["before", "after"]
    log.flush()  # nothing is retried
    assert log.figures()["quarantined"] == 1


def test_the_queue_is_bounded_and_shutdown_waits_a_bounded_time() -> None:
    from gis.db.engine import make_engine

    dead = make_engine("postgresql+psycopg2://gridpatrol@127.0.0.1:1/none")  # nothing listens there
    log = AuditLog(dead, max_queued=3, shutdown_s=2.0)
    for i in range(5):
        log.add(None, "probe", subject=str(i))
    assert [e["subject"] for e in log.queue] == ["2", "3", "4"] and log.dropped == 2
    started = time.monotonic()
    asyncio.run(log.stop())  # the database cannot be reached: it says so and returns
    assert time.monotonic() - started < 2.5
    assert log.figures()["queued"] == 3  # kept (and counted) for a writer that could still reach it
    dead.dispose()


def test_clean_line_keeps_evidence_and_fits_the_columns() -> None:
    line = lines.clean_line({"method": "PROPPATCH", "path": "/\x00\x1b[2J\ud800", "status": 10**12,
                             "username": "u" * 100, "detail": {"k\x00": ["\x00", {"deep": "\ud800"}]}})
    assert line["method"] == "PROPPAT…" and len(line["username"]) == 64
    assert line["path"] == "/\\x00\\x1b[2J?"  # a terminal escape cannot reach whoever lists the log
    assert line["status"] is None
    assert line["detail"] == {"k\\x00": ["\\x00", {"deep": "?"}]}
