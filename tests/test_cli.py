"""The command line: exit codes and one-line errors, and a real import through it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from scripts.cli import EXIT_DATABASE, EXIT_INPUT, main
from tests.conftest import BEIJING


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_through_the_cli(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, out, err = run(capsys, "import-osm", str(BEIJING), "--city", "Beijing")
    assert code == 0, err
    assert "buildings" in out and "households" in out and "walk edges" in out
    assert "write to database" in err or "done" in err  # the progress bar
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings")).scalar() > 200
    engine.dispose()


@pytest.mark.parametrize("args, message", [
    (["import-osm", "data/nowhere.osm", "--city", "beijing"], "no such file"),
    (["import-osm", str(BEIJING), "--city", "atlantis"], "unknown city 'atlantis'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                          fresh_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, _, err = run(capsys, *args)
    assert code == EXIT_INPUT
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_truncated_file_is_exit_2_and_writes_nothing(tmp_path: Path, fresh_url: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.osm"
    cut.write_bytes(BEIJING.read_bytes()[:500_000])
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, _, err = run(capsys, "import-osm", str(cut), "--city", "beijing")
    assert code == EXIT_INPUT and "not a readable OSM file" in err
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM admin_units")).scalar() == 0
    engine.dispose()


def test_unreachable_database_is_exit_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://gridpatrol@127.0.0.1:1/gridpatrol")
    code, _, err = run(capsys, "import-osm", str(BEIJING), "--city", "beijing")
    assert code == EXIT_DATABASE
    assert "cannot reach the database" in err and "Traceback" not in err


def test_db_commands_with_an_outside_server_start_nothing(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, out, _ = run(capsys, "db", "start")
    assert code == 0 and "starts or stops nothing" in out
    code, out, _ = run(capsys, "db", "status")
    assert code == 0 and "reachable" in out


def test_db_status_of_the_embedded_server(pg_server, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    code, out, _ = run(capsys, "db", "status")
    assert code == 0 and out.startswith("running")
