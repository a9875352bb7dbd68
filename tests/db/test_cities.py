"""Any city with no code edited: ``city add``/``set`` store settings as data, and an import of an extract under an
unseen city matches its districts to GB/T 2260 codes and says what it assumed."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from scripts.cli import EXIT_INPUT, main
from tests.conftest import BEIJING, NANJING


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def districts(url: str) -> list[tuple[str, str | None]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, code FROM admin_units WHERE level = 'district' ORDER BY name")).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_an_unseen_city_from_settings_to_district_codes(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The Nanjing extract imported under a city the code has never heard of: its districts match by name."""
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, out, err = run(capsys, "city", "add", "nj", "--code", "320100", "--default-storeys", "5",
                         "--m2-per-household", "80")
    assert code == 0, err
    assert "nj: 南京市 / Nj, code 320100" in out and "5 storeys" in out and "import-osm FILE --city nj" in out
    code, out, err = run(capsys, "import-osm", str(NANJING), "--city", "nj")
    assert code == 0, err
    assert "assumed: untyped buildings without building:levels have 5 storeys" in out
    assert "assumed: 80 m² of floor area per household" in out
    assert "district 玄武区 → 320102 (exact)" in out
    assert districts(fresh_url) == [("玄武区", "320102"), ("秦淮区", "320104"), ("鼓楼区", "320106")]
    code, out, _ = run(capsys, "city", "list")
    assert code == 0 and "nj" in out and "320100" in out and "南京市" in out


def test_unmatched_districts_are_reported_and_mapped_by_hand(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Under the wrong city nothing matches; the report says how to map each, and a hand mapping then holds."""
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, out, err = run(capsys, "import-osm", str(NANJING), "--city", "sp", "--code", "220300")
    assert code == 0, err
    assert "district '玄武区' matches no county of the city in GB/T 2260; map it by hand: " \
           "gridpatrol city set sp --district '玄武区=CODE', then import again" in out
    assert districts(fresh_url) == [("玄武区", None), ("秦淮区", None), ("鼓楼区", None)]
    code, out, err = run(capsys, "city", "set", "sp", "--district", "玄武区=220302")
    assert code == 0, err
    assert "玄武区=220302" in out
    code, out, err = run(capsys, "import-osm", str(NANJING), "--city", "sp")
    assert code == 0, err
    assert "district 玄武区 → 220302 (by hand)" in out
    assert ("玄武区", "220302") in districts(fresh_url)
    code, _, err = run(capsys, "city", "set", "sp", "--district", "秦淮区=320104")
    assert code == EXIT_INPUT and "not a county of 四平市 (220300)" in err


def test_settings_are_data_the_next_import_uses(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A place outside China says so; halving the floor area per household roughly doubles the estimate."""
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, out, err = run(capsys, "import-osm", str(BEIJING), "--city", "testland", "--outside-china")
    assert code == 0, err
    assert "outside China: no GB/T 2260 code, so districts get synthetic codes beginning with 99" in out
    engine = create_engine(fresh_url)
    total = "SELECT sum(households_est) FROM buildings"
    with engine.connect() as conn:
        before = conn.execute(text(total)).scalar_one()
        assert conn.execute(text("SELECT code FROM admin_units WHERE level = 'city'")).scalar() is None
    assert run(capsys, "city", "set", "Testland", "--m2-per-household", "45")[0] == 0
    code, out, err = run(capsys, "import-osm", str(BEIJING), "--city", "testland")
    assert code == 0, err
    assert "45 m²" in out
    with engine.connect() as conn:
        after = conn.execute(text(total)).scalar_one()
        stored = conn.execute(text("SELECT key, m2_per_household FROM city_settings")).one()
    engine.dispose()
    assert before > 100 and after == pytest.approx(2 * before, rel=0.02)
    assert tuple(stored) == ("testland", 45.0)
    code, out, _ = run(capsys, "city", "show", "testland")
    assert code == 0 and "code none (outside China)" in out and "45 m²" in out


def test_a_second_city_may_not_take_a_stored_name_or_code(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    assert run(capsys, "city", "add", "siping", "--code", "220300")[0] == 0
    code, _, err = run(capsys, "city", "add", "sp2", "--code", "220300")
    assert code == EXIT_INPUT and "already stored as 'siping'" in err
    code, out, _ = run(capsys, "city", "add", "siping", "--code", "220300", "--timezone", "Asia/Harbin")
    assert code == 0 and "timezone Asia/Harbin" in out  # adding again is idempotent: it updates


def test_a_city_s_time_zone_counts_its_patrol_weeks(divided_engine: Engine, divided_url: str,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Compliance weeks and months are the city's own: its setting, else the service's zone."""
    from gis.planning.store.city import grid_timezone

    with divided_engine.connect() as conn:
        code = conn.execute(text("SELECT code FROM grids ORDER BY code LIMIT 1")).scalar_one()
        assert grid_timezone(conn, code) == "Asia/Shanghai"
        assert grid_timezone(conn, "999999999999999") is None
    monkeypatch.setenv("DATABASE_URL", divided_url)
    assert run(capsys, "city", "set", "beijing", "--timezone", "Asia/Urumqi")[0] == 0
    with divided_engine.connect() as conn:
        assert grid_timezone(conn, code) == "Asia/Urumqi"
