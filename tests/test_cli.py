"""The command line: exit codes and one-line errors, and a real import through it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gis.db.engine import writing
from scripts.cli import EXIT_DATABASE, EXIT_INPUT, main
from tests.conftest import BEIJING


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_through_the_cli(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    code, out, err = run(capsys, "import-osm", str(BEIJING), "--city", "Beijing", "--code", "110000")
    assert code == 0, err
    assert "buildings" in out and "households" in out and "walk edges" in out
    assert "write to database" in err or "done" in err  # the progress bar
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings")).scalar() > 200
    engine.dispose()


@pytest.mark.parametrize("args, message", [
    (["import-osm", "data/nowhere.osm", "--city", "beijing"], "no such file"),
    (["import-osm", str(BEIJING), "--city", "atlantis"], "city 'atlantis' is new: give its GB/T 2260 code"),
    (["import-osm", str(BEIJING), "--city", "atlantis", "--code", "990100"], "not in the GB/T 2260 table"),
    (["import-osm", str(BEIJING), "--city", "beijing", "--code", "110000", "--district", "海淀区=320102"],
     "320102 is not a county of 北京市 (110000)"),
    (["city", "add", "x", "--code", "110000", "--default-storeys", "0"], "--default-storeys 0: give 1–60"),
    (["city", "add", "x", "--code", "110000", "--timezone", "Mars/Olympus"], "not a time zone name"),
    (["city", "add", "朝阳"], "'朝阳' is no prefecture"),
    (["city", "set", "nowhere", "--code", "110000"], "no city 'nowhere'"),
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
    code, _, err = run(capsys, "import-osm", str(cut), "--city", "beijing", "--code", "110000")
    assert code == EXIT_INPUT and "not a readable OSM file" in err
    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM admin_units")).scalar() == 0
    engine.dispose()


def test_unreachable_database_is_exit_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://gridpatrol@127.0.0.1:1/gridpatrol")
    code, _, err = run(capsys, "import-osm", str(BEIJING), "--city", "beijing", "--code", "110000")
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


def test_events_through_the_cli(divided_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", divided_url)
    engine = create_engine(divided_url)
    with engine.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                 "ORDER BY code LIMIT 1) s")).one()
    engine.dispose()
    events = tmp_path / "events.csv"
    events.write_text("category,lon,lat,reported_at,closed_at\n"
                      f"C01,{x},{y},2026-10-01T08:00:00Z,2026-10-01T20:00:00Z\n"
                      f"E01,{x},{y},2026-10-02T08:00:00Z,\n")
    code, out, err = run(capsys, "import-events", str(events))
    assert code == 0, err
    assert "stored 2 events" in out and "1 closed" in out
    code, out, err = run(capsys, "escalate")
    assert code == 0 and "escalated 1 overdue event(s)" in out  # E01's 48 h passed long ago
    report = tmp_path / "kpis.csv"
    code, out, err = run(capsys, "kpis", "--by", "street", "--start", "2026-09-01", "--end", "2026-11-01",
                         "--csv", str(report))
    assert code == 0, err
    lines = report.read_text().splitlines()
    assert lines[0].startswith("unit,reported,dispatched,due") and len(lines) == 2
    assert lines[1].split(",")[1:3] == ["2", "2"]
    events.write_text("category,lon,lat\nC01,north,39.9\n")
    code, _, err = run(capsys, "import-events", str(events))
    assert code == EXIT_INPUT and "row 1" in err and "Traceback" not in err
    code, _, err = run(capsys, "kpis", "--start", "last week")
    assert code == EXIT_INPUT and "ISO 8601" in err
    # the month's bulletin: a workbook (and its summary on the terminal), or a clear refusal
    book = tmp_path / "bulletin.xlsx"
    code, out, err = run(capsys, "bulletin", "--city", "beijing", "--month", "2026-10", "--out", str(book))
    assert code == 0, err
    assert "2026-10 月" in out and "共受理事件 2 件" in out and f"wrote {book}" in err
    from openpyxl import load_workbook
    assert load_workbook(book).sheetnames[0].startswith("概要")
    for args, message in ((["--month", "2099-01"], "2099-01 has not begun"), (["--month", "26-10"], "YYYY-MM"),
                          (["--out", str(tmp_path / "b.pdf")], ".xlsx, .html or .json"),
                          (["--unit", "999999"], "no district, street or community with code 999999")):
        code, _, err = run(capsys, "bulletin", "--city", "beijing", *args)
        assert code == EXIT_INPUT and message in err and "Traceback" not in err, err
    assert not (tmp_path / "b.pdf").exists()
    # the working calendar the deadlines count
    code, out, err = run(capsys, "calendar", "show", "--city", "beijing", "--year", "2026")
    assert code == 0, err
    assert "2026-10-01  day off" in out and "2026-10-10  working" in out and "08:30-12:00" in out
    code, out, err = run(capsys, "calendar", "add", "--city", "beijing", "--day", "2099-03-17", "--name", "城市日",
                         "--year", "2099")
    assert code == 0 and "2099-03-17  day off  城市日  (the city's own)" in out, err
    code, _, err = run(capsys, "calendar", "add", "--city", "beijing", "--day", "2020-03-17", "--name", "past")
    assert code == EXIT_INPUT and "not after today" in err and "Traceback" not in err
    code, out, err = run(capsys, "calendar", "national")
    assert code == 0 and "0 new day(s)" in out, err


def test_patrol_through_the_cli(divided_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", divided_url)
    engine = create_engine(divided_url)
    with engine.connect() as conn:
        code = conn.execute(text("SELECT code FROM grids ORDER BY code LIMIT 1 OFFSET 2")).scalar_one()
    engine.dispose()
    gpx = tmp_path / "route.gpx"
    status, out, err = run(capsys, "patrol", "--grid", code, "--gpx", str(gpx))
    assert status == 0, err
    assert f"grid {code}: basic patrol" in out and "street segments" in out
    assert gpx.read_text().count("<trkpt") > 2
    status, _, err = run(capsys, "patrol", "--grid", code, "--base", "east")
    assert status == EXIT_INPUT and "--base is lon,lat" in err
    status, _, err = run(capsys, "patrol", "--grid", "123456789012345")
    assert status == EXIT_INPUT and "no grid 123456789012345" in err
    status, out, err = run(capsys, "patrol", "--grid", code, "--budget", "30", "--gpx", str(tmp_path / "b.gpx"))
    assert status == 0, err
    assert f"grid {code}: 30-minute round" in out and "risk covered" in out
    status, _, err = run(capsys, "patrol", "--grid", code, "--budget", "0")
    assert status == EXIT_INPUT and "time budget must be more than 0" in err
    parts = tmp_path / "parts.gpx"
    status, out, err = run(capsys, "patrol", "--grid", code, "--share", "2", "--gpx", str(parts))
    assert status == 0, err
    assert f"grid {code}: basic patrol shared by 2: the longest part" in out and out.count("  part ") == 2
    assert parts.read_text().count("<trk>") == 2
    for args, message in ((["--share", "0"], "k (the members or shifts sharing the patrol) is 1 to 8"),
                          (["--share", "2", "--budget", "30"], "different patrols: give one")):
        status, _, err = run(capsys, "patrol", "--grid", code, *args)
        assert status == EXIT_INPUT and message in err, err
    # a planner marks a street optional: the basic patrol no longer requires it
    status, out, err = run(capsys, "streets", "--grid", code)
    assert status == 0 and "0 optional" in out, err
    first = out.split()[0]
    status, _, err = run(capsys, "streets", "--grid", code, "--optional", first)
    assert status == EXIT_INPUT and "--author and --reason" in err
    status, out, err = run(capsys, "streets", "--grid", code, "--optional", first, "--author", "Li", "--reason",
                           "gated compound")
    assert status == 0 and "1 optional" in out and "optional (gated compound)" in out, err
    status, out, err = run(capsys, "patrol", "--grid", code)
    assert status == 0 and "1 optional segment(s) not required" in out, err
    status, _, err = run(capsys, "streets", "--grid", code, "--optional", "7-8", "--author", "Li", "--reason", "x")
    assert status == EXIT_INPUT and "u-v-key" in err


def test_the_demo_serves_nanjing_and_stops_its_database_on_sigterm() -> None:
    """What `make run` runs, on a private cluster and port: load, staff, serve; SIGTERM (as `kill`, systemd and
    docker send) stops the server and the embedded database with it."""
    import os
    import shutil
    import signal
    import subprocess
    import time

    import httpx2 as httpx

    from gis.db.embedded import EmbeddedPostgres
    from tests.conftest import ROOT

    data = ROOT / "var" / f"test-demo-{os.getpid()}"
    env = {**os.environ, "GRIDPATROL_DATA_DIR": str(data), "GRIDPATROL_PG_PORT": "54391", "GRIDPATROL_PORT": "8791"}
    env.pop("DATABASE_URL", None)
    demo = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gridpatrol"), "demo"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if httpx.get("http://127.0.0.1:8791/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            raise AssertionError("the demo did not come up")
        assert httpx.get("http://127.0.0.1:8791/grids", timeout=10).status_code == 401  # sign in first
        # the demo made one account per role and keeps their passwords in its data directory
        accounts = {line.split("\t")[0]: line.split("\t") for line in
                    (data / "demo-users.txt").read_text(encoding="utf-8").splitlines()}
        assert {"admin", "planner", "dispatcher", "leader", "member", "department"} <= set(accounts)
        signed = httpx.post("http://127.0.0.1:8791/token", timeout=30,
                            data={"username": "leader", "password": accounts["leader"][1]})
        assert signed.status_code == 200, signed.text
        grids = httpx.get("http://127.0.0.1:8791/grids", params={"limit": 1}, timeout=10,
                          headers={"Authorization": f"Bearer {signed.json()['access_token']}"}).json()
        assert grids["numberMatched"] >= 80
        demo.send_signal(signal.SIGTERM)
        out, _ = demo.communicate(timeout=60)
        assert "synthetic demo staff" in out and "stopped embedded PostgreSQL" in out
        assert accounts["admin"][1] in out  # the passwords were shown to whoever ran it
        assert EmbeddedPostgres.for_data_dir(data, port=54391).status() != "running"
    finally:
        if demo.poll() is None:
            demo.kill()
        server = EmbeddedPostgres.for_data_dir(data, port=54391)
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def test_visits_through_the_cli(divided_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime, timedelta

    import gpxpy.gpx

    from gis.db.engine import make_engine
    from gis.patrol.store.plans import plan_basic

    monkeypatch.setenv("DATABASE_URL", divided_url)
    engine = make_engine(divided_url)
    with engine.connect() as conn:
        code = conn.execute(text("SELECT code FROM grids ORDER BY code LIMIT 1 OFFSET 2")).scalar_one()
    route = plan_basic(engine, code)
    engine.dispose()
    gpx = gpxpy.gpx.GPX()
    gpx.tracks.append(gpxpy.gpx.GPXTrack())
    gpx.tracks[0].segments.append(gpxpy.gpx.GPXTrackSegment())
    start = datetime.now(UTC) - timedelta(hours=1)
    for f in route["features"]:
        if f["properties"]["kind"] == "step":
            for x, y in f["geometry"]["coordinates"]:
                gpx.tracks[0].segments[0].points.append(gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x, time=start))
    path = tmp_path / "walk.gpx"
    path.write_text(gpx.to_xml())
    status, out, err = run(capsys, "log-visit", "--grid", code, "--gpx", str(path))
    assert status == 0, err
    assert "street segments walked (100%" in out
    month = start.strftime("%Y-%m")
    status, out, err = run(capsys, "compliance", "--grid", code, "--month", month)
    assert status == 0 and out.startswith("grid,month,week_of") and "basic patrol done in" in err
    status, out, err = run(capsys, "compliance", "--grid", code, "--month", month, "--schedule")
    assert status == 0 and "basic" in out
    status, _, err = run(capsys, "log-visit", "--grid", code, "--gpx", str(tmp_path / "missing.gpx"))
    assert status == EXIT_INPUT and "cannot read" in err
    status, _, err = run(capsys, "compliance", "--grid", code, "--month", "13/2026")
    assert status == EXIT_INPUT and "YYYY-MM" in err


def test_coverage_through_the_cli(divided_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", divided_url)
    out_file = tmp_path / "coverage.csv"
    status, out, err = run(capsys, "coverage", "--city", "beijing", "--by", "community", "--csv", str(out_file))
    assert status == 0, err
    assert "community row(s)" in out and out_file.read_text().startswith("level,code,name,grids")
    status, _, err = run(capsys, "coverage", "--city", "beijing", "--minutes", "soon")
    assert status == EXIT_INPUT and "--minutes" in err


def test_users_through_the_cli(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from gis.access.store.users import authenticate
    from gis.db.engine import make_engine

    monkeypatch.setenv("DATABASE_URL", fresh_url)
    monkeypatch.setenv("GRIDPATROL_PASSWORD", "first password")
    code, out, err = run(capsys, "users", "add", "Chen", "--role", "admin", "--name", "陈")
    assert code == 0 and "added chen: admin" in out, err
    status, _, err = run(capsys, "users", "add", "liu", "--role", "leader")
    assert status == EXIT_INPUT and "--unit" in err  # a leader is bound to a unit
    status, _, err = run(capsys, "users", "add", "chen", "--role", "admin")
    assert status == EXIT_INPUT and "taken" in err
    monkeypatch.setenv("GRIDPATROL_PASSWORD", "second password")
    assert run(capsys, "users", "passwd", "chen")[0] == 0
    engine = make_engine(fresh_url)
    try:
        assert writing(engine, authenticate, "chen", "first password") is None
        assert writing(engine, authenticate, "CHEN", "second password") is not None
        assert run(capsys, "users", "disable", "chen")[0] == 0
        assert writing(engine, authenticate, "chen", "second password") is None
    finally:
        engine.dispose()
    code, out, _ = run(capsys, "users", "list")
    assert code == 0 and "chen" in out and "disabled" in out
    status, _, err = run(capsys, "users", "passwd", "nobody")
    assert status == EXIT_INPUT and "no user" in err
    monkeypatch.setenv("GRIDPATROL_PASSWORD", "short")
    status, _, err = run(capsys, "users", "passwd", "chen")
    assert status == EXIT_INPUT and "at least 8" in err


def test_backup_and_restore_round_trip(divided_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import text

    from gis.db.engine import make_engine

    monkeypatch.setenv("DATABASE_URL", divided_url)
    engine = make_engine(divided_url)

    def snapshot() -> tuple[object, ...]:
        with engine.connect() as conn:
            return tuple(conn.execute(text(q)).all() for q in (
                "SELECT code, version, ST_AsText(geom) FROM grids ORDER BY code",
                "SELECT count(*), sum(households) FROM buildings",
                "SELECT username, role, password_hash FROM users ORDER BY username",
                "SELECT id, state, grid_code FROM events ORDER BY id"))

    try:
        before = snapshot()
        dump = tmp_path / "backups" / "gridpatrol.dump"
        code, out, err = run(capsys, "db", "backup", str(dump))
        assert code == 0 and dump.stat().st_size > 10_000 and "restore it with" in out, err
        assert dump.stat().st_mode & 0o777 == 0o600  # the city's data and password hashes: the owner's only
        with engine.begin() as conn:  # damage: an edit, a deletion
            conn.execute(text("UPDATE grids SET name = 'changed' WHERE code = (SELECT min(code) FROM grids)"))
            conn.execute(text("DELETE FROM users"))
        assert snapshot() != before
        status, _, err = run(capsys, "db", "restore", str(dump))
        assert status == EXIT_INPUT and "--yes" in err  # not without saying so
        code, out, err = run(capsys, "db", "restore", str(dump), "--yes")
        assert code == 0 and "restored" in out, err
        engine.dispose()
        assert snapshot() == before
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM grids WHERE name = 'changed'")).scalar() == 0
        # a file that is not a backup: refused, the database untouched
        bogus = tmp_path / "not-a-dump"
        bogus.write_text("SELECT 1;")
        status, _, err = run(capsys, "db", "restore", str(bogus), "--yes")
        assert status == EXIT_INPUT and "not a gridpatrol backup" in err
        truncated = tmp_path / "cut.dump"
        truncated.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
        status, _, err = run(capsys, "db", "restore", str(truncated), "--yes")
        assert status == EXIT_INPUT and "restore failed" in err
        engine.dispose()
        assert snapshot() == before  # all or nothing
    finally:
        engine.dispose()


def test_audit_log_through_the_cli(fresh_url: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import text

    from gis.db.engine import make_engine

    monkeypatch.setenv("DATABASE_URL", fresh_url)
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as conn:  # a year of lines: one a day at midday, the newest half a day old
            conn.execute(text("INSERT INTO audit_log (at, username, role, action, method, path, status, subject) "
                              "SELECT now() - (d + 0.5) * interval '1 day', 'li', 'dispatcher', 'change', 'POST', "
                              "'/events', 201, '/events/' || d FROM generate_series(0, 364) d"))

        def lines() -> int:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'change'")).scalar_one())

        code, out, err = run(capsys, "audit", "prune", "--keep-days", "90")
        assert code == 0 and "deleted 275 audit line(s)" in out, err  # days 90..364
        assert lines() == 90
        for args, message in ((["--before", "2999-01-01"], "in the future"), (["--before", "01/02/2026"], "YYYY-MM-DD"),
                              ([], "either --before"), (["--keep-days", "0"], "at least 1"),
                              (["--before", "2026-01-01", "--keep-days", "3"], "either --before")):
            status, _, err = run(capsys, "audit", "prune", *args)
            assert status == EXIT_INPUT and message in err, (args, err)
        assert lines() == 90  # a refused prune deletes nothing
        code, out, _ = run(capsys, "audit", "list", "--limit", "3")
        assert code == 0 and "prune" in out.splitlines()[0] and "audit_log" in out  # the pruning is in the log
        status, _, err = run(capsys, "audit", "list", "--limit", "-1")
        assert status == EXIT_INPUT and "the limit is 1 to 10,000" in err
        code, out, _ = run(capsys, "audit", "list", "--subject", "/events/7")
        assert code == 0 and len(out.splitlines()) == 1 and "li" in out
    finally:
        engine.dispose()


def test_backups_pass_the_password_in_the_environment_not_on_argv() -> None:
    from gis.db.backup import libpq_env

    env = libpq_env("postgresql+psycopg2://city:s3cret@db.example/gridpatrol?sslmode=require")
    assert env == {"PGHOST": "db.example", "PGUSER": "city", "PGPASSWORD": "s3cret", "PGDATABASE": "gridpatrol"}
    local = libpq_env("postgresql+psycopg2://gridpatrol@/gp?host=/var/lib/gridpatrol/x/run&port=54329")
    assert local == {"PGHOST": "/var/lib/gridpatrol/x/run", "PGPORT": "54329", "PGUSER": "gridpatrol",
                     "PGDATABASE": "gp"}


def test_a_cluster_url_with_no_reachable_node_names_every_node(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24: a multi-host DATABASE_URL none of whose nodes answers: a clear startup message naming each node
    and what it said, exit 3, within the connect timeout (not minutes)."""
    import socket
    import time

    ports = []
    for _ in range(3):  # ports nothing listens on
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    hosts = "&".join(f"host=127.0.0.1:{p}" for p in ports)
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg2://gridpatrol_service:x@/gridpatrol?{hosts}"
                                       "&connect_timeout=3&target_session_attrs=read-write")
    started = time.monotonic()
    code, _, err = run(capsys, "migrate")
    assert code == EXIT_DATABASE and time.monotonic() - started < 15
    assert "no node of the cluster" in err and all(f"127.0.0.1:{p}" in err for p in ports), err
    assert "target_session_attrs=read-write" in err and "Connection refused" in err
