"""The two everyday situations a newcomer meets, through the real command line.

1. A checkout in a directory the unprivileged server user cannot enter (as root, ``/root/gridpatrol``: ``/root`` is
   0700 on Debian).
2. A second checkout's database while another one's server is up on the same port (the suite's own, here).

Both start a second embedded cluster with ``gridpatrol db start`` run from that checkout, as ``make run`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gis.db.embedded import EmbeddedPostgres
from gis.db.engine import make_engine
from tests.conftest import ROOT


@pytest.fixture
def hidden_checkout() -> Iterator[Path]:
    """A checkout's directory inside a home of mode 0700, as root's is."""
    home = Path(tempfile.mkdtemp(prefix="gp-home-"))
    home.chmod(0o700)
    checkout = home / "gridpatrol"
    checkout.mkdir()
    yield checkout
    server = EmbeddedPostgres.for_data_dir(checkout / "var")
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


def _gridpatrol(checkout: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GRIDPATROL_DATA_DIR")}
    env["GRIDPATROL_PG_PORT"] = str(port)
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, run from the other one's directory
    return subprocess.run([sys.executable, "-m", "scripts.cli", "db", *args], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def test_a_checkout_in_a_closed_home_beside_a_running_server(hidden_checkout: Path,
                                                            pg_server: EmbeddedPostgres) -> None:
    assert pg_server.status() == "running"
    assert not os.stat(hidden_checkout.parent).st_mode & 0o007  # nobody but its owner may enter the home
    started = _gridpatrol(hidden_checkout, pg_server.port, "start")  # the same port as the suite's server
    assert started.returncode == 0, started.stdout + started.stderr
    assert "started" in started.stdout
    status = _gridpatrol(hidden_checkout, pg_server.port, "status")
    assert status.returncode == 0 and status.stdout.startswith("running"), status.stdout + status.stderr

    theirs = EmbeddedPostgres.for_data_dir(hidden_checkout / "var", port=pg_server.port)
    assert theirs.pgdata != pg_server.pgdata and theirs.socket_dir != pg_server.socket_dir
    if os.geteuid() == 0:  # out of the closed home, where the server's user can reach it
        assert not theirs.root.is_relative_to(hidden_checkout.parent)
    for server in (theirs, pg_server):  # both answer, each on its own socket
        engine = make_engine(server.url("postgres", superuser=True))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_setting('data_directory')")).scalar_one() == str(server.pgdata)
        engine.dispose()

    stopped = _gridpatrol(hidden_checkout, pg_server.port, "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert pg_server.status() == "running"  # the other server was never touched
