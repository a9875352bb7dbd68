"""Issue 24: the service on a three-node Patroni cluster (etcd, streaming replication, one synchronous standby),
started by the suite itself: reads from replicas give the primary's figures, a stale replica is left out, a
reader's own change is never missing, a write refused by a replica goes to the primary, the service starts with a
node down, the background run holds one lock, and with etcd gone a write is told 503 instead of hanging.

The failover drill itself (SIGKILL of the primary under load) is ``make failover-drill`` (bench/failover_drill.py),
not part of the suite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import api.tokens
from api.app import create_app
from api.settings import Settings
from gis.db.backup import backup, restore
from gis.db.cluster import LocalCluster
from gis.db.engine import make_engine, refused_read_only, writing
from gis.db.migrate import upgrade
from gis.db.replicas import ReadRouter, split_hosts
from gis.db.singleton import BackgroundLock
from tests.conftest import sign_in

DB = "gridpatrol_cluster_test"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, nanjing_url: str) -> Iterator[LocalCluster]:
    """A cluster of the suite's own, holding a copy of the Nanjing test city (figures worth comparing)."""
    here = LocalCluster.for_data_dir(tmp_path_factory.mktemp("cluster-var"))
    here.up(timeout_s=180)
    dump = tmp_path_factory.mktemp("dump") / "nanjing.dump"
    backup(nanjing_url, dump)
    here.create_database(DB)
    write, _ = here.urls(DB)
    restore(write, dump)
    engine = make_engine(write)
    upgrade(engine)
    engine.dispose()
    yield here
    here.down()
    import shutil

    shutil.rmtree(here.root, ignore_errors=True)


def port_of(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT inet_server_port()")).scalar_one())


def wait_for(check, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def settings_for(cluster: LocalCluster, **extra: object) -> Settings:
    write, read = cluster.urls(DB)
    return Settings(database_url=write, read_url=read, escalate_every_s=0, **extra)  # type: ignore[arg-type]


def test_the_cluster_has_a_primary_a_synchronous_standby_and_a_replica(cluster: LocalCluster) -> None:
    wait_for(lambda: sorted(m.role for m in cluster.members()) == ["leader", "replica", "sync_standby"], 60,
             f"roles: {cluster.members()}")
    assert all(m.state in ("running", "streaming") for m in cluster.members())
    assert len(split_hosts(cluster.urls(DB)[1])) == 3


def test_reads_from_a_replica_give_the_primarys_figures(cluster: LocalCluster) -> None:
    with TestClient(create_app(settings_for(cluster))) as client:
        headers = sign_in(client)
        reads: ReadRouter = client.app.state.reads  # type: ignore[attr-defined]
        primary = port_of(client.app.state.engine)  # type: ignore[attr-defined]
        wait_for(lambda: len(reads.usable()) == 2, 20, f"replicas not in use: {reads.report()}")
        assert primary not in {port_of(r.engine) for r in reads.usable()}
        assert port_of(reads.engine()) != primary
        figures = client.get("/leaders/figures", headers=headers)
        assert figures.status_code == 200, figures.text
        health = client.get("/health").json()
        assert sum(r["used"] for r in health["replicas"]) == 2 and "url" not in health["replicas"][0]
    # the same figures from the primary alone
    only_primary = Settings(database_url=cluster.urls(DB)[0], escalate_every_s=0)
    with TestClient(create_app(only_primary)) as client:
        again = client.get("/leaders/figures", headers=sign_in(client))
    assert again.status_code == 200
    assert again.json() == figures.json() and len(figures.json()["rows"]) > 0


def test_a_stale_replica_is_left_out_and_the_reader_sees_their_own_change(cluster: LocalCluster) -> None:
    """Replay paused on both replicas: within the setting they still serve others, but not the one who wrote;
    past it, they serve nobody."""
    settings = settings_for(cluster, replica_max_lag_s=4.0)
    standbys = [m.name for m in cluster.members() if m.role != "leader"]
    cluster.maintenance(True)  # else Patroni resumes a paused replay at once
    for name in standbys:
        with cluster.connect(name) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_wal_replay_pause()")
    try:
        with TestClient(create_app(settings)) as writer, TestClient(create_app(settings)) as other:
            mine, theirs = sign_in(writer), sign_in(other)
            other.cookies.clear()  # signing in is a change too (it is audited): this reader has changed nothing
            box = writer.get("/leaders/grids/extent", headers=mine).json()["bbox"]
            lon, lat = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            posted = writer.post("/open311/v2/requests.json", headers=mine, data={
                "service_code": "C01", "lat": str(lat), "long": str(lon), "description": "井盖破损 (cluster test)"})
            assert posted.status_code in (200, 201), posted.text
            request_id = posted.json()[0]["service_request_id"]
            # the writer: at once, from the primary (their own change is never missing)
            seen = writer.get(f"/open311/v2/requests/{request_id}.json", headers=mine)
            assert seen.status_code == 200, seen.text
            # another reader, within the setting: a replica, which has not replayed it yet
            reads: ReadRouter = other.app.state.reads  # type: ignore[attr-defined]
            wait_for(lambda: len(reads.usable()) == 2, 10, f"{reads.report()}")
            assert other.get(f"/open311/v2/requests/{request_id}.json", headers=theirs).status_code == 404
            # past the setting: the replicas are left out, every read goes to the primary
            wait_for(lambda: not reads.usable(), 15, f"stale replicas still used: {reads.report()}")
            assert other.get(f"/open311/v2/requests/{request_id}.json", headers=theirs).status_code == 200
            health = other.get("/health").json()
            assert all(not r["used"] for r in health["replicas"]) and any(
                (r["staleness_s"] or 0) > 4 for r in health["replicas"])
    finally:
        for name in standbys:
            with cluster.connect(name) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_wal_replay_resume()")
        cluster.maintenance(False)


def test_a_write_refused_by_a_replica_is_retried_on_the_primary(cluster: LocalCluster) -> None:
    """A replica refuses a write plainly (SQLSTATE 25006, the pool's connections dropped); the write URL, with
    the replicas named first, is refused by each (not read-write) and lands on the primary."""
    members = cluster.members()
    leader = next(m for m in members if m.role == "leader")
    replicas = [m for m in members if m.role != "leader"]
    write, _ = cluster.urls(DB)
    base = write.split("?")[0]
    on_replica = make_engine(f"{base}?host=127.0.0.1:{replicas[0].port}&connect_timeout=3")
    insert = "INSERT INTO service_keys (name, value) VALUES ('cluster-test', 'x') ON CONFLICT (name) DO NOTHING"

    def store(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(text(insert))

    with pytest.raises(DBAPIError) as refused:
        writing(on_replica, store)
    assert refused_read_only(refused.value) and refused.value.connection_invalidated
    on_replica.dispose()
    hosts = "&".join(f"host=127.0.0.1:{m.port}" for m in [*replicas, leader])
    engine = make_engine(f"{base}?{hosts}&connect_timeout=3&target_session_attrs=read-write")
    assert port_of(engine) == leader.port
    writing(engine, store)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM service_keys WHERE name = 'cluster-test'")).scalar() == 1
        conn.execute(text("DELETE FROM service_keys WHERE name = 'cluster-test'"))
        conn.commit()
    engine.dispose()


def test_a_refused_write_through_the_api_is_a_503_with_retry_after(cluster: LocalCluster) -> None:
    """The service's write pool on a replica (as a connection kept from before a failover would be): a write is
    answered 503 with Retry-After, never a 500, and nothing is stored; through the write URL the same request is
    stored on the primary."""
    replica = next(m for m in cluster.members() if m.role != "leader")
    write, _ = cluster.urls(DB)
    stale = write.split("?")[0] + f"?host=127.0.0.1:{replica.port}&connect_timeout=3"
    day = {"day": "2031-01-02", "working": False, "name": "集群测试"}
    with TestClient(create_app(settings_for(cluster))) as c:
        headers = sign_in(c)  # signing in writes too: through the cluster's write URL
    with TestClient(create_app(Settings(database_url=stale, escalate_every_s=0)), raise_server_exceptions=False) as c:
        answer = c.post("/cities/nanjing/calendar/days", headers=headers, json=day)
        assert answer.status_code == 503, answer.text
        assert answer.headers.get("Retry-After")
        assert c.app.state.audit.figures()["quarantined"] == 0  # type: ignore[attr-defined]
    with TestClient(create_app(settings_for(cluster))) as c:
        answer = c.post("/cities/nanjing/calendar/days", headers=headers, json=day)
        assert answer.status_code == 201, answer.text
        assert c.delete("/cities/nanjing/calendar/days/2031-01-02", headers=headers).status_code == 204


def test_the_service_starts_and_answers_with_one_node_of_three_down(cluster: LocalCluster) -> None:
    victim = next(m.name for m in cluster.members() if m.role == "replica")
    cluster.kill_node(victim)
    try:
        started = time.monotonic()
        with TestClient(create_app(settings_for(cluster))) as client:
            assert time.monotonic() - started < 20  # a dead node costs its connect timeout, not minutes
            headers = sign_in(client)
            assert client.get("/health").status_code == 200
            assert client.get("/leaders/figures", headers=headers).status_code == 200
            reads: ReadRouter = client.app.state.reads  # type: ignore[attr-defined]
            assert sum(not r["reachable"] for r in reads.report()) == 1
    finally:
        cluster.start_node(victim)
        cluster.wait_healthy(timeout_s=90, replicas=2)


def test_reads_keep_answering_when_a_replica_dies_under_them(cluster: LocalCluster,
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Both replicas' pools hold connections; one replica's machine dies: the reads that meet its dead
    connections are tried again elsewhere before anyone sees a 503, and so is a change's sign-in check (the
    user's record, read from a replica)."""
    with TestClient(create_app(settings_for(cluster))) as client, \
            TestClient(create_app(settings_for(cluster))) as writer:
        headers = sign_in(client)
        client.cookies.clear()
        mine = sign_in(writer)
        writer.cookies.clear()
        box = client.get("/leaders/grids/extent", headers=headers).json()["bbox"]
        reads: ReadRouter = client.app.state.reads  # type: ignore[attr-defined]
        checks: ReadRouter = writer.app.state.reads  # type: ignore[attr-defined]
        wait_for(lambda: len(reads.usable()) == 2 and len(checks.usable()) == 2, 20, f"{reads.report()}")
        monkeypatch.setattr(api.tokens, "USER_TTL_S", 0.0)  # every request reads the user's record
        for _ in range(6):  # connections on both replicas
            assert client.get("/leaders/grids/extent", headers=headers).status_code == 200
            assert writer.get("/me", headers=mine).status_code == 200
        for router in (reads, checks):  # the monitors pause: the requests, not a probe, meet the dead connections
            router.every_s = 3600.0
        time.sleep(1.5)
        victim = next(m.name for m in cluster.members() if m.role != "leader")
        cluster.kill_node(victim)
        try:
            answers = [client.get("/leaders/grids/extent", headers=headers).status_code for _ in range(8)]
            assert answers == [200] * 8, answers
            # a request did meet a dead connection, and was answered anyway: in the route (answered again by
            # RetryReads) or in its sign-in check (asked again), whichever took the dead connection first
            lost = [r for r in caplog.records if (r.name == "api.errors" and "/leaders/grids/extent" in r.getMessage())
                    or (r.name == "api.tokens" and "connection was lost" in r.getMessage())]
            assert lost
            assert sum(not r["reachable"] for r in reads.report()) == 1
            for i in range(4):  # changes: their sign-in checks meet the dead connections
                posted = writer.post("/open311/v2/requests.json", headers=mine, data={
                    "service_code": "C01", "lat": str((box[1] + box[3]) / 2), "long": str((box[0] + box[2]) / 2),
                    "description": f"井盖破损 (replica lost, {i})"})
                assert posted.status_code in (200, 201), posted.text
            assert sum(not r["reachable"] for r in checks.report()) == 1
            # a pool that held no connection to the dead replica: its reads and checks are refused at connect,
            # which SQLAlchemy does not call a disconnect, and the replica is left out all the same (CI once saw
            # every request answered 503: a check's pool had only ever connected to the other replica)
            for app in (client.app, writer.app):
                app.state.tokens.close()  # type: ignore[attr-defined]
                for replica in app.state.reads.replicas:  # type: ignore[attr-defined]
                    replica.engine.dispose()
                    replica.reachable = True  # as the paused monitor last saw them
            answers = [client.get("/leaders/grids/extent", headers=headers).status_code for _ in range(8)]
            assert answers == [200] * 8, answers
            assert sum(not r["reachable"] for r in reads.report()) == 1
        finally:
            cluster.start_node(victim)
            cluster.wait_healthy(timeout_s=90, replicas=2)


def test_busy_read_pools_do_not_age_the_replicas(cluster: LocalCluster) -> None:
    """Every pooled connection to every replica held by slow reads (a leader's heavy pages) while the primary
    takes writes: the monitor's figures come over its own connections, so the replicas stay fresh and in use."""
    write, read = cluster.urls(DB)
    primary = make_engine(write)
    router = ReadRouter.build(primary, read, max_lag_s=2.0, connections=1)
    held = []
    try:
        wait_for(lambda: len(router.usable()) == 2, 20, f"{router.report()}")
        held = [r.engine.connect() for r in router.replicas]  # every replica pool's only connection
        with primary.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS probe_test (at timestamptz)"))
        until = time.monotonic() + 5.0  # well past the setting of 2 s
        while time.monotonic() < until:
            with primary.begin() as conn:  # WAL moves on: a replica whose figure is not renewed turns stale
                conn.execute(text("INSERT INTO probe_test VALUES (now())"))
            time.sleep(0.1)
        assert len(router.usable()) == 2, router.report()
        assert all(r["staleness_s"] is not None and r["staleness_s"] <= 2.0 for r in router.report()
                   if r["role"] == "standby"), router.report()
    finally:
        for conn in held:
            conn.close()
        router.close()
        with primary.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS probe_test"))
        primary.dispose()


def test_background_work_runs_on_one_instance_and_moves_when_it_dies(cluster: LocalCluster) -> None:
    write, _ = cluster.urls(DB)
    engines = [make_engine(write) for _ in range(3)]
    locks = [BackgroundLock(e, "escalation run") for e in engines]
    held = [lock.held() for lock in locks]
    assert held.count(True) == 1
    assert [lock.held() for lock in locks] == held  # the holder keeps it, the others keep skipping
    locks[held.index(True)].release()  # its instance dies: its session ends
    again = [lock.held() for i, lock in enumerate(locks) if i != held.index(True)]
    assert again.count(True) == 1
    for lock in locks:
        lock.release()
    for e in engines:
        e.dispose()


def test_with_etcd_gone_a_write_is_told_503_and_nothing_hangs(cluster: LocalCluster) -> None:
    """Patroni demotes a primary that cannot renew its leader key (its TTL, 20 s): the service still starts, a
    write is answered 503 with Retry-After at once (no node takes writes), and reads go on from the replicas."""
    with TestClient(create_app(settings_for(cluster))) as client:
        headers = sign_in(client)
    cluster.stop_etcd(kill=True)
    try:
        wait_for(lambda: _read_only_everywhere(cluster), 60, "the primary did not turn read-only without etcd")
        with TestClient(create_app(settings_for(cluster)), raise_server_exceptions=False) as client:
            started = time.monotonic()
            day = {"day": "2031-01-03", "working": False, "name": "无主库"}
            answer = client.post("/cities/nanjing/calendar/days", headers=headers, json=day)
            assert answer.status_code == 503 and answer.headers.get("Retry-After"), answer.text
            assert time.monotonic() - started < 15
            reads: ReadRouter = client.app.state.reads  # type: ignore[attr-defined]
            wait_for(lambda: len(reads.usable()) >= 2, 10, f"no replica in use: {reads.report()}")
            figures = client.get("/leaders/figures", headers=headers)
            assert figures.status_code == 200 and figures.json()["rows"]
            health = client.get("/health")
            assert health.status_code == 503 and health.headers.get("Retry-After")
            assert health.json()["database"] == "unreachable" and len(health.json()["replicas"]) == 3
    finally:
        cluster.start_etcd()
        cluster.wait_healthy(timeout_s=120, replicas=2)


def _read_only_everywhere(cluster: LocalCluster) -> bool:
    for name in ("n1", "n2", "n3"):
        try:
            with cluster.connect(name) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                if not cur.fetchone()[0]:
                    return False
        except Exception:
            continue
    return True


def test_the_cluster_dir_is_out_of_the_checkout(cluster: LocalCluster) -> None:
    state = cluster.state_file.stat()
    assert oct(state.st_mode & 0o777) == "0o600"
    assert Path(cluster.root).is_dir()
