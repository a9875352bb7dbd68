"""The embedded server's lifecycle, on a throwaway cluster of its own (the suite's server is never disturbed)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import time
from collections.abc import Iterator

import psycopg2
import pytest

from gis.db.embedded import OS_USER, SERVICE_ROLE, EmbeddedPostgres
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def scratch() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres.for_data_dir(ROOT / "var" / f"scratch-{os.getpid()}", port=54399)
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def test_first_start_initialises_and_second_is_a_no_op(scratch: EmbeddedPostgres) -> None:
    assert scratch.status() == "absent"
    assert scratch.start() is True
    assert scratch.status() == "running"
    assert scratch.start() is False
    assert scratch.create_database("probe") is True
    assert scratch.create_database("probe") is False
    conn = psycopg2.connect(host=str(scratch.socket_dir), port=scratch.port, user="gridpatrol", dbname="probe")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')")
            listen, sockets = cur.fetchone()
            cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
            postgis = cur.fetchone()
    finally:
        conn.close()
    assert postgis is not None  # the extension comes with the database
    assert listen == ""  # no TCP at all: the private socket only
    assert scratch.socket_dir.stat().st_mode & 0o777 == 0o700
    assert sockets == str(scratch.socket_dir)
    assert list(scratch.socket_dir.glob(".s.PGSQL.*"))


def test_the_server_never_runs_as_root(scratch: EmbeddedPostgres) -> None:
    scratch.start()
    pid = int((scratch.pgdata / "postmaster.pid").read_text().split()[0])
    owner = pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
    # As root, the cluster belongs to and runs as the unprivileged system user; otherwise as the caller.
    assert owner == (OS_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)
    assert owner != "root"


def test_a_killed_server_leaves_a_stale_pid_that_start_recovers(scratch: EmbeddedPostgres) -> None:
    scratch.start()
    pid = int((scratch.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while scratch.status() == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert scratch.status() == "stopped"
    assert (scratch.pgdata / "postmaster.pid").exists()
    time.sleep(1.0)  # let the orphaned backends notice their postmaster is gone
    assert scratch.start() is True
    assert scratch.status() == "running"


def test_a_pid_file_naming_another_process_is_recovered(scratch: EmbeddedPostgres) -> None:
    scratch.stop()
    (scratch.pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{scratch.pgdata}\n")
    assert scratch.status() == "stopped"
    assert scratch.start() is True
    assert scratch.stop() is True
    assert scratch.stop() is False
    assert scratch.status() == "stopped"


def test_the_service_connects_as_an_owner_that_is_no_superuser(scratch: EmbeddedPostgres) -> None:
    """Issue 18, item 9: the service connected as the trust-auth superuser, which may read the token key of any
    database, run COPY … TO PROGRAM, and more."""
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    from gis.db.engine import make_engine

    scratch.start()
    scratch.create_database("owned")
    engine = make_engine(scratch.url("owned"))
    try:
        with engine.connect() as conn:
            who, superuser = conn.execute(text("SELECT current_user, current_setting('is_superuser')")).one()
            assert who == SERVICE_ROLE and superuser == "off"
            owner = conn.execute(text("SELECT pg_get_userbyid(datdba) FROM pg_database "
                                      "WHERE datname = current_database()")).scalar_one()
            assert owner == SERVICE_ROLE
            conn.execute(text("CREATE TABLE mine (x int)"))  # it owns the schema's objects
            assert conn.execute(text("SELECT PostGIS_Version()")).scalar()  # the extension is there to use
            with pytest.raises(ProgrammingError, match=r"permission denied|must be superuser"):
                conn.execute(text("COPY (SELECT 1) TO PROGRAM 'true'"))
    finally:
        engine.dispose()
