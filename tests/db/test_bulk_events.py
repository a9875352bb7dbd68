"""Bulk intake of historic events, on the divided Beijing fixture."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pandas as pd
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from api.settings import Settings
from gis.db.engine import make_engine, reading
from gis.db.migrate import alembic_config, upgrade
from gis.dispatch import rules
from gis.dispatch.store import bulk, events
from gis.dispatch.store.bulk import MAX_PARTS, _lock_references, bulk_intake, read_events_file
from gis.errors import ConflictError, InputError
from gis.geo.coords import from_wgs84
from gis.oversight.store import kpis as oversight
from tests.conftest import admin


@pytest.fixture
def client(divided_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as c:
        yield admin(c)


def points(engine: Engine, n: int) -> list[tuple[str, float, float]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(  # type: ignore[misc]
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM grids ORDER BY code) s "
            "LIMIT :n"), {"n": n})]


def test_a_csv_file_is_placed_like_single_reports(divided_engine: Engine) -> None:
    rows = points(divided_engine, 5)
    gx, gy = from_wgs84(rows[1][1], rows[1][2], "gcj02")
    csv = "\n".join([
        "category,lon,lat,crs,priority,source,description,reported_at,closed_at",
        f"C01,{rows[0][1]},{rows[0][2]},,,,井盖,2026-10-01T08:00:00+08:00,2026-10-02T08:00:00+08:00",
        f"E01,{gx},{gy},gcj02,urgent,hotline,垃圾,2026-10-01T09:00:00+08:00,2026-10-01T20:00:00+08:00",
        f"S02,{rows[2][1]},{rows[2][2]},wgs84,high,video,,2026-10-03T09:00:00Z,",
        f"C05,{rows[3][1]},{rows[3][2]},,,,,,",
    ]).encode()
    frame = read_events_file(csv, "old.csv")
    report = bulk_intake(divided_engine, frame, source_name="old.csv")
    assert report.stored == 4 and report.in_grid == 4 and report.closed == 2
    with divided_engine.connect() as conn:
        got = conn.execute(text("""
            SELECT e.grid_code, e.state, e.closed_on_time, e.queue, s.role, e.department_code,
                   (SELECT count(*) FROM event_transitions t WHERE t.event_id = e.id), e.id
            FROM events e LEFT JOIN staff s ON s.id = e.assignee_staff_id ORDER BY e.id""")).all()
    assert [g[0] for g in got] == [r[0] for r in rows[:4]]  # the GCJ-02 row lands where its WGS-84 point is
    assert got[0][1:3] == ("closed", True)  # closed within C01's 72 h
    assert got[1][1:3] == ("closed", False)  # E01 urgent: 4 h, closed after 11 h
    assert got[2][3:5] == ("police", "police") and got[2][1] == "dispatched"
    assert got[3][3] == "department" and got[3][5] == "water"
    assert all(g[6] == 0 for g in got)  # no rows of steps: the import is one record per file and state
    for eid, state in ((got[0][7], "closed"), (got[2][7], "dispatched")):  # and each history begins with it
        (step,) = reading(divided_engine, events.history, eid)
        assert step["action"] == "import" and step["to"] == state and step["note"] == "imported from old.csv"
        assert step["actor"] == "gridpatrol" and step["role"] == "system"
    with divided_engine.connect() as conn:
        records = conn.execute(text("SELECT source_name, state, rows FROM event_imports ORDER BY state")).all()
    assert [tuple(r) for r in records] == [("old.csv", "closed", 2), ("old.csv", "dispatched", 2)]
    with divided_engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT input_crs, input_lon, input_lat, to_char(reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
            "to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM events ORDER BY id")).all()
    assert stored[0][3:] == ("2026-10-01 00:00:00", "2026-10-02 00:00:00")  # +08:00 read as such, kept exactly
    assert stored[1][:3] == ("gcj02", gx, gy)  # the coordinates as reported are kept beside the converted point
    assert stored[2][3:] == ("2026-10-03 09:00:00", None)
    # the file was staged in a schema of its own, gone with the transaction; a refused file leaves none either
    with pytest.raises(InputError, match="outside the service area"):
        bulk_intake(divided_engine, read_events_file(b"category,lon,lat\nC01,0.0,0.0\n", "far.csv"))
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'gridpatrol_import_%'")
                            ).scalar() == 0


def test_without_a_superuser_the_import_runs_with_the_per_row_foreign_key_checks(divided_url: str,
                                                                                divided_engine: Engine) -> None:
    # The service's role may set session_replication_role (the embedded server grants it), so the import checks
    # the foreign keys set-based; under an ordinary role PostgreSQL's own per-row checks run: the same result.
    superuser = make_engine(divided_url.replace("//gridpatrol_service@", "//gridpatrol@"))
    with superuser.begin() as conn:
        conn.execute(text("DROP ROLE IF EXISTS gp_importer"))
        conn.execute(text("CREATE ROLE gp_importer LOGIN"))
        conn.execute(text("GRANT ALL ON ALL TABLES IN SCHEMA public TO gp_importer"))
        conn.execute(text("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO gp_importer"))
    importer = make_engine(divided_url.replace("//gridpatrol_service@", "//gp_importer@"))
    try:
        rows = points(divided_engine, 3)
        csv = "\n".join(["category,lon,lat"] + [f"C01,{x},{y}" for _, x, y in rows]).encode()
        report = bulk_intake(importer, read_events_file(csv, "a.csv"))
        assert report.stored == 3 and report.in_grid == 3
        with importer.connect() as conn:
            assert conn.execute(text("SELECT current_setting('is_superuser')")).scalar() == "off"
            assert conn.execute(text("SELECT has_parameter_privilege('session_replication_role', 'SET')")).scalar() \
                is False
            # nor may it create a schema: it staged the file in temporary tables
            assert conn.execute(text("SELECT has_database_privilege(current_database(), 'CREATE')")).scalar() is False
            assert conn.execute(text("SELECT array_agg(grid_code ORDER BY id) FROM events")).scalar() == [
                r[0] for r in rows]
    finally:
        importer.dispose()
        with superuser.begin() as conn:
            conn.execute(text("DROP OWNED BY gp_importer"))
            conn.execute(text("DROP ROLE gp_importer"))
        superuser.dispose()


def test_a_row_the_events_would_refer_to_that_is_gone_stops_the_import(divided_engine: Engine) -> None:
    # What a grid deleted between placement and insert looks like to the set-based foreign-key check.
    with divided_engine.begin() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cur.execute("CREATE TEMP TABLE units ON COMMIT DROP AS SELECT -1 AS grid_id, NULL::int AS community_id, "
                    "NULL::int AS street_id, NULL::int AS city_id, NULL::int AS chief_id, NULL::int AS police_id")
        with pytest.raises(ConflictError, match="1 grids row"):
            _lock_references(cur, ["C01"])


def test_geojson_and_the_api(client: TestClient, divided_engine: Engine) -> None:
    rows = points(divided_engine, 3)
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
         "properties": {"category": "E03", "reported_at": "2026-11-01T10:00:00Z"}} for _, x, y in rows]}
    response = client.post("/events/bulk", params={"format": "geojson"}, content=json.dumps(collection))
    assert response.status_code == 201, response.text
    assert response.json()["stored"] == 3 and response.json()["in_grid"] == 3


def test_a_file_with_bad_rows_is_refused_whole(client: TestClient, divided_engine: Engine) -> None:
    (_, x, y), = points(divided_engine, 1)
    bad = "\n".join(["category,lon,lat,priority,reported_at",
                     f"C01,{x},{y},normal,2026-10-01T08:00:00Z",
                     f"C01,abc,{y},normal,",
                     f"C01,{x},{y},asap,",
                     f"C01,{x},{y},normal,yesterday",
                     f"C01,{x},999,normal,"]).encode()
    with pytest.raises(InputError) as info:
        read_events_file(bad, "bad.csv")
    message = str(info.value)
    assert "4 problem(s)" in message and "row 2" in message and "row 3" in message and "row 4" in message
    cases = [
        (bad, "csv", "problem"),
        (b"category,lon\nC01,1", "csv", "lacks the column"),
        (f"category,lon,lat\nZZ9,{x},{y}".encode(), "csv", "unknown category"),
        (b"category,lon,lat\nC01,0.0,0.0", "csv", "outside the service area"),
        (b"{not json", "geojson", "not a readable GeoJSON"),
        (b"", "csv", "empty"),
    ]
    for body, kind, message in cases:
        response = client.post("/events/bulk", params={"format": kind}, content=body)
        assert response.status_code == 422 and message in response.text, response.text
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 0


def _historic_file(engine: Engine, n: int) -> bytes:
    """``n`` grids' points, each reported in October; every other one closed the next day (on time or not)."""
    lines = ["category,lon,lat,priority,description,reported_at,closed_at"]
    for i, (_, x, y) in enumerate(points(engine, n)):
        category = ("C01", "E01", "S02", "C05")[i % 4]  # the grid chief, urgent, police, department
        closed = f"2026-10-{2 + i % 5:02d}T08:00:00Z" if i % 2 == 0 else ""
        lines.append(f"{category},{x},{y},{'urgent' if i % 3 == 0 else 'normal'},{'旧案' if i % 5 else ''},"
                     f"2026-10-01T{i % 24:02d}:00:00Z,{closed}")
    return "\n".join(lines).encode()


_CONTENT = ("category_code, priority, source, description, input_crs, input_lon, input_lat, ST_AsText(geom), city_id, "
            "grid_id, grid_code, community_id, street_id, queue, assignee_staff_id, department_code, assignment_rule, "
            "flagged, state, reported_at, dispatched_at, due_at, closed_at, closed_on_time")


def test_a_files_closed_cases_go_into_archive_partitions_and_read_as_before(divided_engine: Engine) -> None:
    data = _historic_file(divided_engine, 12)
    plain = bulk_intake(divided_engine, read_events_file(data, "a.csv"), source_name="a.csv")
    archived = bulk_intake(divided_engine, read_events_file(data, "b.csv"), source_name="b.csv", archive_min_rows=1)
    assert plain.archives == [] and plain.stored == 12 and plain.closed == 6
    assert archived.stored == 12 and archived.closed == 6
    assert len(archived.archives) == min(len(os.sched_getaffinity(0)), MAX_PARTS)  # one per processor, side by side
    with divided_engine.connect() as conn:
        def content(source: str) -> list[tuple[object, ...]]:
            return [tuple(r) for r in conn.execute(text(
                f"SELECT {_CONTENT} FROM events WHERE import_id IN (SELECT id FROM event_imports "
                "WHERE source_name = :s) ORDER BY grid_code, reported_at"), {"s": source})]
        assert content("b.csv") == content("a.csv")  # where the rows are kept changes nothing they say
        (closed_record,) = conn.execute(text(
            "SELECT id FROM event_imports WHERE source_name = 'b.csv' AND state = 'closed'")).scalars()
        partitions = conn.execute(text(
            "SELECT c.oid::regclass::text, pg_get_expr(c.relpartbound, c.oid), a.id, a.import_id, a.rows "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN event_archives a "
            "ON c.relname = 'events_archive_' || a.id WHERE i.inhparent = 'events'::regclass ORDER BY a.id")).all()
        assert [p[0] for p in partitions] == [a.removeprefix("public.") for a in archived.archives]
        assert all(bound == f"FOR VALUES IN ({key})" and record == closed_record for _, bound, key, record, _ in
                   partitions)
        assert sum(p[4] for p in partitions) == 6
        where = conn.execute(text(
            "SELECT e.tableoid::regclass::text LIKE 'events_archive_%', e.state, count(*) FROM events e "
            "JOIN event_imports i ON i.id = e.import_id WHERE i.source_name = 'b.csv' GROUP BY 1, 2 ORDER BY 1")).all()
        assert [tuple(r) for r in where] == [(False, "dispatched", 6), (True, "closed", 6)]
        # each archive has the events table's indexes and keys, every key checked, and holds closed cases only
        parents = conn.execute(text("SELECT count(*) FROM pg_index WHERE indrelid = 'events'::regclass")).scalar_one()
        for table in archived.archives:
            indexes = conn.execute(text(f"SELECT count(*) FROM pg_index WHERE indrelid = '{table}'::regclass"))
            keys = conn.execute(text(f"SELECT count(*) FROM pg_constraint WHERE conrelid = '{table}'::regclass "
                                     "AND contype = 'f' AND convalidated"))
            assert parents >= 11  # the indexes of migrations 0005–0035 (a partitioned table has no primary key)
            assert (indexes.scalar_one(), keys.scalar_one()) == (parents + 1, 8)  # its primary key and the parent's
        with pytest.raises(IntegrityError, match="violates check constraint"):
            conn.execute(text(f"UPDATE {archived.archives[0]} SET state = 'dispatched'"))
        conn.rollback()
        old = conn.execute(text(f"SELECT id FROM {archived.archives[0]} ORDER BY id LIMIT 1")).scalar_one()
        # nothing left of the import's staging and building
        assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'gridpatrol_import%'"
                                 )).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'events_pending%'")).scalar() == 0
    # an archived case reads, lists and counts like any other, and, being closed, takes no further step
    assert reading(divided_engine, events.get_event, old)["state"] == "closed"
    (step,) = reading(divided_engine, events.history, old)
    assert step["action"] == "import" and step["note"] == "imported from b.csv"
    with pytest.raises(ConflictError):
        events.act(divided_engine, old, "rework", actor="x", role="centre_staff")
    start, end = pd.Timestamp("2026-10-01", tz="UTC"), pd.Timestamp("2026-11-01", tz="UTC")
    figures = {k["unit"]: k for k in reading(divided_engine, oversight.kpis, "street", start, end)}
    assert sum(k["closed"] for k in figures.values()) == 12  # both files' closed cases
    assert sum(k["dispatched"] for k in figures.values()) == 24


def test_an_archive_goes_back_into_the_events_table_on_downgrade(divided_engine: Engine) -> None:
    report = bulk_intake(divided_engine, read_events_file(_historic_file(divided_engine, 8), "c.csv"),
                         archive_min_rows=1)
    assert report.archives
    with divided_engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(text(f"SELECT id, {_CONTENT} FROM events ORDER BY id"))]
    config = alembic_config(divided_engine.url.render_as_string(hide_password=False))
    with divided_engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0011")
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'events'")).scalar_one() == "r"
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'events_archive%'")).scalar() == 0
        assert [tuple(r) for r in conn.execute(text(f"SELECT id, {_CONTENT} FROM events ORDER BY id"))] == before
    upgrade(divided_engine)
    with divided_engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(f"SELECT id, {_CONTENT} FROM events ORDER BY id"))] == before
        assert conn.execute(text("SELECT DISTINCT tableoid::regclass::text FROM events")).scalars().all() == [
            "events_live"]


def test_an_archived_import_that_fails_leaves_nothing(divided_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition built and committed, then the import fails (here: the second builder, after building its
    table): the events table never showed any of it, and the staging schema and the built tables are gone."""
    real = bulk._build_part

    def fails_after_building(*args: object) -> int:
        rows = real(*args)  # type: ignore[arg-type]
        if args[4] == 1:  # the second partition
            raise RuntimeError("the builder's connection was lost")
        return rows

    monkeypatch.setattr(bulk, "_build_part", fails_after_building)
    monkeypatch.setattr(bulk, "MAX_PARTS", 2)
    monkeypatch.setattr(bulk.os, "sched_getaffinity", lambda pid: {0, 1})
    with pytest.raises(RuntimeError, match="connection was lost"):
        bulk_intake(divided_engine, read_events_file(_historic_file(divided_engine, 8), "d.csv"), archive_min_rows=1)
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM event_imports")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM event_archives")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'events\\_pending%' "
                                 "OR relname LIKE 'events\\_archive%'")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'gridpatrol_import%'"
                                 )).scalar() == 0


def test_what_a_dead_import_left_is_swept_and_a_running_ones_is_not(divided_engine: Engine) -> None:
    dead, running = "0123456789ab", "ba9876543210"
    with divided_engine.begin() as conn:
        for token in (dead, running):
            conn.execute(text(f"CREATE SCHEMA gridpatrol_import_{token}"))
            conn.execute(text(f"CREATE TABLE events_pending_{token}_0 (LIKE events)"))
    with divided_engine.connect() as holder:  # the running import holds its advisory lock
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": bulk._guard(running)})
        report = bulk_intake(divided_engine, read_events_file(_historic_file(divided_engine, 8), "e.csv"),
                             archive_min_rows=1)
        assert report.archives
        with divided_engine.connect() as conn:
            left = set(conn.execute(text(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'gridpatrol_import%' UNION ALL "
                "SELECT relname FROM pg_class WHERE relname LIKE 'events_pending%' AND relkind = 'r'")).scalars())
        assert left == {f"gridpatrol_import_{running}", f"events_pending_{running}_0"}
        holder.execute(text("SELECT pg_advisory_unlock_all()"))
        holder.commit()


def test_while_the_archives_are_built_intake_goes_on_and_nothing_of_the_file_shows(
        divided_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the built partitions and the import's commit: a report placed then is stored at once, and the
    events table holds none of the file; after the commit, all of it."""
    real = bulk._build_part
    seen: list[tuple[int, int]] = []
    (_, x, y), = points(divided_engine, 1)

    def build_then_look(*args: object) -> int:
        rows = real(*args)  # type: ignore[arg-type]
        if args[4] == 0:  # the first partition is built and committed, not attached
            reported = events.intake(divided_engine, rules.EventIn(lon=x, lat=y, category="C01", source="hotline"))
            with divided_engine.connect() as conn:
                seen.append((reported.event["id"], conn.execute(text(
                    "SELECT count(*) FROM events WHERE import_id IS NOT NULL")).scalar_one()))
        return rows

    monkeypatch.setattr(bulk, "_build_part", build_then_look)
    report = bulk_intake(divided_engine, read_events_file(_historic_file(divided_engine, 10), "f.csv"),
                         archive_min_rows=1)
    assert report.archives and report.stored == 10
    ((live_id, during),) = seen
    assert during == 0
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events WHERE import_id IS NOT NULL")).scalar_one() == 10
        assert conn.execute(text("SELECT tableoid::regclass::text FROM events WHERE id = :i"), {"i": live_id}
                            ).scalar_one() == "events_live"


def test_rows_outside_every_grid_are_placed_as_intake_places_them(divided_engine: Engine) -> None:
    """Points 20 m outside the grids (the nearest grid takes them) and 400 m outside (a street's centre queue):
    bulk and single intake agree on each."""
    with divided_engine.connect() as conn:
        pts = [tuple(r) for r in conn.execute(text("""
            WITH u AS (SELECT ST_Union(geom) AS g FROM grids),
            rings AS (SELECT d, ST_Boundary(ST_Buffer(u.g::geography, d)::geometry) AS b
                      FROM u, (VALUES (20), (400)) v(d))
            SELECT d, ST_X(p.geom), ST_Y(p.geom) FROM rings, LATERAL (
                SELECT (ST_DumpPoints(ST_Segmentize(b, 0.001))).geom) p
            ORDER BY d, ST_X(p.geom)""")).all()]
    near = [p for p in pts if p[0] == 20][::25][:6]
    far = [p for p in pts if p[0] == 400][::25][:6]
    assert len(near) == 6 and len(far) >= 3
    rows = near + far
    csv = "\n".join(["category,lon,lat"] + [f"C01,{x},{y}" for _, x, y in rows]).encode()
    report = bulk_intake(divided_engine, read_events_file(csv, "edge.csv"))
    assert report.in_grid == 0 and report.nearest == 6 and report.street_queue == len(far)
    with divided_engine.connect() as conn:
        bulk_placed = [tuple(r) for r in conn.execute(text(
            "SELECT grid_code, queue, street_id, flagged FROM events ORDER BY input_lon, input_lat"))]
    singles = [events.intake(divided_engine, rules.EventIn(lon=x, lat=y, category="E03", source="hotline")).event
               for _, x, y in sorted(rows, key=lambda r: (r[1], r[2]))]
    with divided_engine.connect() as conn:
        street_ids = dict(conn.execute(text("SELECT code, id FROM admin_units WHERE level = 'street'")).all())
    assert bulk_placed == [(e["grid"], e["queue"], street_ids[e["street"]], e["flagged"]) for e in singles]


def test_a_file_reaching_into_another_unit_is_refused_whole(client: TestClient, divided_engine: Engine) -> None:
    """Issue 18, item 5: a dispatcher bound to one community loaded closed cases into a rival's figures."""
    from tests.conftest import user_headers

    with divided_engine.connect() as conn:
        (mine, x1, y1), (theirs, x2, y2) = conn.execute(text(
            "SELECT DISTINCT ON (c.code) c.code, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) "
            "FROM grids g JOIN admin_units c ON c.id = g.community_id ORDER BY c.code, g.code LIMIT 2")).all()
    dispatcher = user_headers(client, divided_engine, "dispatcher", mine)
    header = "category,lon,lat,reported_at,closed_at"
    closed = "2026-10-01T08:00:00Z,2026-10-01T09:00:00Z"
    with divided_engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
    refused = client.post("/events/bulk", headers=dispatcher,
                          content=f"{header}\nC01,{x1},{y1},{closed}\nC01,{x2},{y2},{closed}\n")
    assert refused.status_code == 403 and "rows [2]" in refused.json()["detail"], refused.text
    with divided_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == before  # nothing stored
    far = client.post("/events/bulk", headers=dispatcher, content=f"{header}\nC01,{x2 + 0.0004},{y2},{closed}\n")
    assert far.status_code == 403  # near the rival's grid: still theirs
    assert client.post("/events/bulk", headers=dispatcher,
                       content=f"{header}\nC01,{x1},{y1},{closed}\n").status_code == 201
    assert theirs != mine
