"""A city's staff register: staff, grids, roster and users from a CSV or XLSX, all or nothing, row by row.

The register is synthetic (made-up names and numbers) over the Nanjing extract's synthetic official units and grids.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.db.engine import writing
from gis.demo.registers import grids_from_communities
from gis.errors import InputError
from gis.geo.crs import WGS84
from gis.planning.store.grid_register import import_city_grids
from scripts.cli import EXIT_INPUT, main

HEADER = "姓名,电话,岗位,网格编码,职责,用户名,值班日,值班时间\n"


@pytest.fixture
def gridded(official_city: Engine, tmp_path: Path) -> Engine:
    communities = gpd.read_postgis(text("SELECT code, geom FROM admin_units WHERE level = 'community' ORDER BY code"),
                                   official_city, geom_col="geom", crs=WGS84).rename_geometry("geometry")
    path = tmp_path / "grids.geojson"
    pyogrio.write_dataframe(grids_from_communities(communities), path)
    writing(official_city, import_city_grids, path, city="nanjing", author="planner", reason="the city's grids")
    return official_city


def grid_codes(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT code FROM grids ORDER BY code")).scalars())


def register(engine: Engine) -> str:
    """A chief and a member for every grid (the members with a username), and a centre staff member per street."""
    lines = []
    for i, code in enumerate(grid_codes(engine)):
        lines.append(f"网格长{i},139{i:08d},网格长,{code},,,,\n")
        lines.append(f"网格员{i},138{i:08d},网格员,{code},,member{i},1-5,08:30-17:30\n")
    lines.append("中心1,13700000001,综治中心,320102001,,centre1,,\n")
    return HEADER + "".join(lines)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_register_in_gbk_makes_staff_rosters_and_users(gridded: Engine, fresh_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "staff.csv"
    path.write_bytes(register(gridded).encode("gbk"))
    codes = tmp_path / "codes.tsv"
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    status, out, err = run(capsys, "import-staff", str(path), "--city", "nanjing", "--codes-out", str(codes))
    assert status == 0, err
    assert "73 staff (73 new, 0 updated), 72 grid link(s), 432 duty slot(s), 37 new user(s)" in out
    assert "read as GBK" in out and "36 row(s) on a grid gave no duty days or hours" in out
    assert stat.S_IMODE(os.stat(codes).st_mode) == 0o600
    rows = [line.split("\t") for line in codes.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(rows) == 37 and {r[0] for r in rows} >= {"member0", "centre1"}
    with gridded.connect() as conn:
        chiefs = conn.execute(text("SELECT count(*) FROM staff_grids WHERE duty = 'chief'")).scalar()
        slots = conn.execute(text(
            "SELECT min(starts)::text, max(ends)::text, count(DISTINCT weekday) FROM duty_roster r JOIN staff s "
            "ON s.id = r.staff_id WHERE s.role = 'grid_member'")).one()
        centre = conn.execute(text("SELECT role, unit_level, unit_code FROM users WHERE username = 'centre1'")).one()
    assert chiefs == 36 and tuple(slots) == ("08:30:00", "17:30:00", 5)
    assert tuple(centre) == ("dispatcher", "street", "320102001")
    # the same register again: nobody twice, no new users, no codes file
    again = tmp_path / "again.tsv"
    status, out, err = run(capsys, "import-staff", str(path), "--city", "nanjing", "--codes-out", str(again))
    assert status == 0, err
    assert "73 staff (0 new, 73 updated)" in out and "37 existing user(s)" in out
    assert not again.exists()
    # the first sign-in: the code sets the password, once
    username, _, code, _ = next(r for r in rows if r[0] == "member0")
    client = TestClient(create_app(Settings(database_url=fresh_url)))
    with client:
        bad = client.post("/first-sign-in", data={"username": username, "code": "nope", "password": "a-long-secret"})
        assert bad.status_code == 401
        first = client.post("/first-sign-in", data={"username": username, "code": code,
                                                     "password": "a-long-secret"}, follow_redirects=False)
        assert first.status_code == 303
        assert client.post("/token", data={"username": username, "password": "a-long-secret"}).status_code == 200
        spent = client.post("/first-sign-in", data={"username": username, "code": code, "password": "other-secret"})
        assert spent.status_code == 401


def test_bad_rows_are_all_named_and_nothing_is_stored(gridded: Engine, fresh_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    grid = grid_codes(gridded)[0]
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n".join([
        f"甲,13900000001,网格长,{grid},,,,",
        f"乙,13900000002,网格长,{grid},,,,",            # a second chief
        "丙,13900000003,网格员,320102001001999,,,,",     # no such grid
        f"丁,13900000004,厨师,{grid},,,,",                # no such role
        f"戊,not-a-phone,网格员,{grid},,,,",
        f"甲,13900000001,网格员,{grid},,,,",             # the same person twice
        f"己,13900000006,网格员,{grid},,Bad Name,,",
        f"庚,13900000007,网格员,{grid},,,1-5,18:00-08:00",
    ]) + "\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    status, _, err = run(capsys, "import-staff", str(path), "--city", "nanjing")
    assert status == EXIT_INPUT and "nothing stored; 7 problem(s)" in err
    for needle in ("row 3: grid", "row 4: unit 320102001001999", "row 5: role '厨师'", "row 6: phone",
                   "row 7: 甲 (13900000001) repeats row 2", "row 8: username", "row 9: hours"):
        assert needle in err, needle
    with gridded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM staff")).scalar() == 0


def test_xlsx_registers_and_their_merged_headers(gridded: Engine, tmp_path: Path) -> None:
    from openpyxl import Workbook

    from gis.access.store.register import import_staff

    grid = grid_codes(gridded)[0]
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "phone", "role", "unit"])
    sheet.append(["甲", "13900000001", "grid_chief", int(grid)])  # a code the spreadsheet keeps as a number
    good = tmp_path / "staff.xlsx"
    book.save(good)
    report = writing(gridded, import_staff, good, city="nanjing")
    assert (report.new, report.grids_linked) == (1, 1)
    sheet.insert_rows(1)
    sheet["A1"] = "网格员名册"
    sheet.merge_cells("A1:D1")
    merged = tmp_path / "merged.xlsx"
    book.save(merged)
    with pytest.raises(InputError, match="merged cells"):
        writing(gridded, import_staff, merged, city="nanjing")
