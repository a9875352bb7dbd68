"""Figures and runs kept to the caller's jurisdiction, and CSV cells a spreadsheet will not run (issue 18, low)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.db.engine import reading
from gis.dispatch import rules
from gis.dispatch.store import events
from gis.exports import csv_cell, write_rows
from tests.conftest import admin, user_headers

LONG_AGO = datetime.now(UTC) - timedelta(days=30)  # C01: 72 working hours, long since passed


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


@pytest.fixture
def two(divided_engine: Engine) -> list[tuple[str, int]]:
    """(community, overdue event) in each of two communities: dispatched 30 days ago, due long since."""
    with divided_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT DISTINCT ON (c.code) c.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) "
            "FROM grids g JOIN admin_units c ON c.id = g.community_id ORDER BY c.code, g.code LIMIT 2")).all()
    return [(code, events.intake(divided_engine, rules.EventIn(lon=x, lat=y, category="C01", source="hotline"),
                                 now=LONG_AGO).event["id"]) for code, x, y in rows]


def test_a_dispatchers_escalation_run_stays_in_their_unit(client: TestClient, divided_engine: Engine,
                                                          two: list[tuple[str, int]]) -> None:
    (mine, mine_id), (_, theirs_id) = two
    ran = client.post("/escalations/run", headers=user_headers(client, divided_engine, "dispatcher", mine)).json()
    assert [e["id"] for e in ran["events"]] == [mine_id]
    assert reading(divided_engine, events.get_event, theirs_id)["level"] == "grid"  # the other unit's is theirs to run


def test_department_figures_are_the_units_own(client: TestClient, divided_engine: Engine,
                                              two: list[tuple[str, int]]) -> None:
    (mine, _), _ = two
    period = {"by": "department", "start": (LONG_AGO - timedelta(days=1)).isoformat()}
    everyone = client.get("/kpis", params=period).json()["units"]
    unit = client.get("/kpis", params=period, headers=user_headers(client, divided_engine, "leader", mine)).json()
    assert sum(u["reported"] for u in everyone) == 2
    assert sum(u["reported"] for u in unit["units"]) == 1  # not the whole city's


def test_text_a_spreadsheet_would_run_is_written_as_text() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "ok", -3, 4.5)] == \
        ["'=1+1", "'+cmd", "'-2+3", "'@SUM(A1)", "'\t=x", "ok", -3, 4.5]
    out = io.StringIO()
    write_rows(out, [{"name": '=HYPERLINK("http://x","y")', "value": -1, "extra": "left out"}], ["name", "value"])
    assert out.getvalue().splitlines() == ["name,value", '"\'=HYPERLINK(""http://x"",""y"")",-1']
