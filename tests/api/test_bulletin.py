"""The monthly bulletin on the Nanjing demo with its synthetic month of activity: every figure is the one /kpis,
/coverage, /leaders/figures and /grids/{code}/compliance give for the same unit and month; the workbook and the
printable page hold them; bad input gets a clear 4xx and nothing is generated."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from api.settings import Settings
from gis.db.engine import make_engine
from gis.oversight.bulletin import RANKINGS, ranks
from gis.oversight.store.kpis import kpis, kpis_and_children
from gis.patrol.store.visits import compliance, compliance_many, month_weeks, week_summary
from tests.conftest import admin, user_headers

TZ = ZoneInfo("Asia/Shanghai")


def last_month() -> tuple[str, date, date]:
    first = (datetime.now(TZ).date().replace(day=1) - timedelta(days=1)).replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return f"{first:%Y-%m}", first, last


@pytest.fixture(scope="module")
def client(nanjing_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=nanjing_url, escalate_every_s=0))) as c:
        yield admin(c)


@pytest.fixture(scope="module")
def data(client: TestClient) -> dict:
    month, _, _ = last_month()
    answer = client.get("/bulletins", params={"city": "nanjing", "month": month})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_ranks_share_ties_and_put_the_unranked_last() -> None:
    assert ranks({"a": 0.9, "b": 0.8, "c": 0.9, "d": None, "e": 0.5}, higher_is_better=True) == \
        {"a": 1, "c": 1, "b": 3, "e": 4, "d": None}
    assert ranks({"a": 0.1, "b": 0.3, "c": 0.0}, higher_is_better=False) == {"c": 1, "a": 2, "b": 3}


def test_a_unit_and_its_children_in_one_pass_are_two_calls(nanjing_url: str) -> None:
    _, first, last = last_month()
    start = datetime.combine(first, datetime.min.time(), TZ)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), TZ)
    at = datetime.now(TZ)
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        city = conn.exec_driver_sql("SELECT id FROM admin_units WHERE level = 'city'").scalar_one()
        codes = {level: conn.exec_driver_sql(
            "SELECT code FROM admin_units WHERE level = %(l)s ORDER BY code LIMIT 1", {"l": level}).scalar_one()
            for level in ("district", "street", "community")}
        cases = [("city", "district", None), ("district", "street", codes["district"]),
                 ("street", "community", codes["street"]), ("community", "grid", codes["community"])]
        for by, child, prefix in cases:
            own, children = kpis_and_children(conn, by, child, start, end, now=at, prefix=prefix, city_id=city)
            assert own == kpis(conn, by, start, end, now=at, prefix=prefix, city_id=city), by
            assert children == kpis(conn, child, start, end, now=at, prefix=prefix, city_id=city), by
            assert own and children and own[0]["reported"] >= sum(c["reported"] for c in children)
    engine.dispose()


def test_the_rankings_are_the_apis_figures(client: TestClient, data: dict) -> None:
    month, first, last = last_month()
    assert data["level"] == "district" and len(data["children"]) == 3
    assert data["totals"]["reported"] > 50  # the demo's synthetic month
    start, end = f"{first}T00:00:00+08:00", f"{last + timedelta(days=1)}T00:00:00+08:00"
    kpis = {r["unit"]: r for r in client.get("/kpis", params={"by": "district", "start": start,
                                                                "end": end}).json()["units"]}
    figures = {r["code"]: r for r in client.get("/leaders/figures", params={
        "city": "nanjing", "start": first, "end": last}).json()["rows"]}
    coverage = {r["code"]: r for r in client.get("/coverage", params={
        "city": "nanjing", "by": "district", "start": start, "end": end}).json()["rows"]}
    for child in data["children"]:
        k = kpis.get(child["code"], {})
        for key in ("reported", "closed", "on_time_closure_rate", "closure_rate", "rework_rate", "open_overdue"):
            expected = k.get(key) if k else (0 if key in ("reported", "closed", "open_overdue") else None)
            assert child[key] == expected, (child["code"], key)
        assert child["on_time_closure_rate"] == figures[child["code"]]["on_time_closure_rate"]
        walked = coverage[child["code"]]["walked_share"]
        assert child["walked_share"] == figures[child["code"]]["walked_share"] == walked
    assert any(c["walked_share"] for c in data["children"])  # the synthetic visits were matched
    for measure in RANKINGS:
        rows = data["rankings"][measure.key]
        ranked = [r["rank"] for r in rows]
        known = [x for x in ranked if x is not None]
        assert known == sorted(known) and ranked[:len(known)] == known  # best first, the unranked last
        values = [r["value"] for r in rows if r["rank"] is not None]
        assert values == sorted(values, reverse=measure.higher_is_better)
        for r in rows:  # the change is last month's rank less this month's
            assert r["change"] == (r["previous_rank"] - r["rank"] if r["rank"] and r["previous_rank"] else None)
    # the city's own figures: /kpis by city
    city = client.get("/kpis", params={"by": "city", "start": start, "end": end}).json()["units"]
    assert len(city) == 1 and data["totals"]["on_time_closure_rate"] == city[0]["on_time_closure_rate"]
    assert data["totals"]["reported"] == city[0]["reported"] == sum(c["reported"] for c in data["children"])
    # departments: /kpis by department
    departments = {r["unit"]: r for r in client.get("/kpis", params={"by": "department", "start": start,
                                                                      "end": end}).json()["units"]}
    assert {d["code"] for d in data["departments"]} == set(departments)
    for d in data["departments"]:
        assert d["on_time_closure_rate"] == departments[d["code"]]["on_time_closure_rate"]
    assert data["month"] == month and not data["partial"]
    assert data["summary"]["zh"] and data["summary"]["en"]
    assert any("按期结案率排名第一" in line for line in data["summary"]["zh"])


def test_categories_hot_spots_and_cases(client: TestClient, data: dict, nanjing_url: str) -> None:
    month, first, last = last_month()
    counts = [c["events"] for c in data["categories"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) <= data["totals"]["reported"]
    for c in data["categories"]:
        assert c["trend"][-1] == {"month": month, "events": c["events"]} and len(c["trend"]) == 6
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        top = conn.exec_driver_sql(
            "SELECT category_code, count(*) FROM events WHERE reported_at >= %(a)s AND reported_at < %(b)s "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
            {"a": datetime.combine(first, datetime.min.time(), TZ),
             "b": datetime.combine(last + timedelta(days=1), datetime.min.time(), TZ)}).one()
        for spot in data["hot_spots"]:  # each hot spot holds at least the minimum of events close together
            assert spot["events"] >= data["hot_spot_rule"]["min_events"]
            near = conn.exec_driver_sql(  # of its category, within its spread of its centre
                "SELECT count(*) FROM events WHERE ST_DWithin(geom::geography, ST_MakePoint(%(x)s, %(y)s)::geography,"
                " %(r)s) AND reported_at >= %(a)s AND reported_at < %(b)s AND category_code = %(c)s",
                {"x": spot["lon"], "y": spot["lat"], "r": spot["across_m"] + 1, "c": spot["category"],
                 "a": datetime.combine(first, datetime.min.time(), TZ),
                 "b": datetime.combine(last + timedelta(days=1), datetime.min.time(), TZ)}).scalar()
            assert near >= spot["events"]
    engine.dispose()
    assert (data["categories"][0]["code"], data["categories"][0]["events"]) == (top[0], top[1])
    s = data["supervision"]
    assert s["supervised"] >= 0 and s["hung"] == len(s["hung_cases"])
    for case in s["supervised_cases"] + s["hung_cases"]:
        assert "description" not in case and "reporter_contact" not in case


def test_patrol_compliance_is_the_per_grid_one(client: TestClient, data: dict, nanjing_url: str) -> None:
    month, _, _ = last_month()
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        city_id = conn.exec_driver_sql("SELECT id FROM admin_units WHERE level = 'city'").scalar_one()
        visited = [r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT grid_code FROM patrol_visits ORDER BY 1 LIMIT 12")]
        many = compliance_many(conn, city_id=city_id, weeks=month_weeks(month), month=month)
        assert visited and set(visited) <= set(many)
        for code in visited:
            one = compliance(conn, code, month)
            mine = many[code]
            assert mine["basic_patrols_done"] == one["basic_patrols_done"], code
            assert [w["walked_share"] for w in mine["weeks"]] == [w["walked_share"] for w in one["weeks"]], code
            assert (mine["buildings"], mine["buildings_visited"], mine["full_inspection"]) == \
                (one["buildings"], one["buildings_visited"], one["full_inspection"]), code
        for i, monday in enumerate(month_weeks(month)):  # the big screen's counts of a week are the same
            week = week_summary(conn, city_id=city_id, prefix=None, monday=monday)
            assert week["grids"] == len(many)
            assert week["done"] == sum(g["weeks"][i]["basic_patrol"] == "done" for g in many.values())
            assert week["visited"] == sum(g["weeks"][i]["visits"] > 0 for g in many.values())
    engine.dispose()
    totals = data["patrol"]["totals"]
    assert totals["grids"] == len(many)
    assert totals["basic_done"] == sum(g["basic_patrols_done"] for g in many.values())
    assert totals["inspections_done"] == sum(g["full_inspection"] == "done" for g in many.values())
    # and through the API, for one grid
    code = visited[0]
    api = client.get(f"/grids/{code}/compliance", params={"month": month}).json()
    assert api["basic_patrols_done"] == many[code]["basic_patrols_done"]


def test_the_workbook_and_the_printable_page(client: TestClient, data: dict) -> None:
    month, _, _ = last_month()
    answer = client.get("/bulletins", params={"city": "nanjing", "month": month, "format": "xlsx"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(answer.content))
    names = book.sheetnames
    assert names[0].startswith("概要") and any(n.startswith("区按期结案率") for n in names)
    assert any(n.startswith("部门按期结案率") for n in names) and any(n.startswith("热点") for n in names)
    sheet = book[next(n for n in names if n.startswith("区按期结案率"))]
    first = data["rankings"]["on_time_closure_rate"][0]
    assert sheet["B4"].value == first["name"] and sheet["D4"].value == first["value"]
    assert sheet["D4"].number_format == "0.0%"
    assert sheet._charts, "each ranking sheet carries its chart"
    page = client.get("/bulletins", params={"city": "nanjing", "month": month, "format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "月度考核通报" in page.text and data["summary"]["zh"][0] in page.text
    assert "/static/bulletin/bulletin.css" in page.text
    english = client.get("/bulletins", params={"city": "nanjing", "month": month, "format": "html", "lang": "en"})
    assert "monthly bulletin" in english.text and data["summary"]["en"][0].split(",")[0] in english.text


def test_a_quiet_month_of_a_grid(client: TestClient, nanjing_url: str) -> None:
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        grid = conn.exec_driver_sql("SELECT code FROM grids ORDER BY code LIMIT 1").scalar_one()
    engine.dispose()
    for format in ("json", "xlsx", "html"):  # the demo's activity is recent: January had nothing
        answer = client.get("/bulletins", params={"unit": grid, "month": "2026-01", "format": format})
        assert answer.status_code == 200, answer.text
    data = client.get("/bulletins", params={"unit": grid, "month": "2026-01"}).json()
    assert data["level"] is None and data["children"] == [] and data["totals"]["reported"] == 0
    assert data["totals"]["on_time_closure_rate"] is None and data["categories"] == [] and data["hot_spots"] == []
    assert data["summary"]["zh"] == [f"2026-01 月{data['unit']['name']}共受理事件 0 件。",
                                     "每周基础巡查完成 0/5 网格周，月度全面巡查完成 0/1 个网格。"]


def test_bad_input_gets_a_clear_answer(client: TestClient, nanjing_url: str) -> None:
    future = (datetime.now(TZ).date().replace(day=1) + timedelta(days=40)).strftime("%Y-%m")
    answer = client.get("/bulletins", params={"city": "nanjing", "month": future})
    assert answer.status_code == 422 and "has not begun" in answer.text
    assert client.get("/bulletins", params={"city": "nanjing", "month": "2026-13"}).status_code == 422
    assert client.get("/bulletins", params={"city": "nanjing", "month": "last"}).status_code == 422
    assert client.get("/bulletins", params={"unit": "999999"}).status_code == 404
    engine = make_engine(nanjing_url)
    with engine.connect() as conn:
        districts = [r[0] for r in conn.exec_driver_sql(
            "SELECT code FROM admin_units WHERE level = 'district' ORDER BY code")]
    leader = user_headers(client, engine, "leader", districts[0])
    answer = client.get("/bulletins", params={"unit": districts[1]}, headers=leader)
    assert answer.status_code == 403 and "outside your jurisdiction" in answer.text
    own = client.get("/bulletins", headers=leader)  # a district leader's default: their own district
    assert own.status_code == 200 and own.json()["unit"]["code"] == districts[0]
    screen = user_headers(client, engine, "screen", districts[0])
    answer = client.get("/bulletins", headers=screen)
    assert answer.status_code == 403 and "big screen only" in answer.text
    engine.dispose()
