"""A grid's figures on its row (migration 0033), kept by triggers: after every kind of write to the buildings and the
cases they equal the figures counted afresh from those tables, with the service's own definitions (open states,
overdue), on the divided Beijing fixture; the tiles carry them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.access.store.users import create_user
from gis.db.engine import writing
from gis.dispatch import rules
from gis.dispatch.queries import OPEN_STATES_SQL, OVERDUE_SQL
from gis.dispatch.store import events
from gis.geo.tiles import tile_of
from gis.planning.queries import GRID_OPEN, GRID_OVERDUE, GRID_PENDING
from gis.planning.store.figures import fold_case_changes
from maps.browser import serve_in_thread
from tests.conftest import PASSWORD, ROOT, http_token
from tests.db.test_events import DAYTIME, inner_point
from tests.db.test_tiles import fetch, read_tile

COUNTED = f"""
    SELECT g.id,
           coalesce((SELECT sum(b.households) FROM buildings b WHERE b.grid_id = g.id), 0)::int,
           (SELECT count(*) FROM buildings b WHERE b.grid_id = g.id)::int,
           (SELECT count(*) FROM events e WHERE e.grid_id = g.id AND e.archive = 0
              AND e.state IN {OPEN_STATES_SQL})::int,
           (SELECT count(*) FROM events e WHERE e.grid_id = g.id AND e.archive = 0 AND e.state IN {OPEN_STATES_SQL}
              AND {OVERDUE_SQL})::int
    FROM grids g ORDER BY g.id"""
"""Each grid's households, buildings, open and open-overdue cases, counted afresh."""
STORED = (f"SELECT g.id, g.households, g.buildings, {GRID_OPEN.format(alias='g')}, {GRID_OVERDUE.format(alias='g')} "
          f"FROM grids g {GRID_PENDING.format(alias='g')} ORDER BY g.id")
"""The same, as a reader reads them: the grid's row, and the cases' changes not yet folded into it."""


def figures(engine: Engine) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    with engine.connect() as conn:
        counted = [tuple(r) for r in conn.execute(text(COUNTED))]
        stored = [tuple(r) for r in conn.execute(text(STORED))]
    return counted, stored


def assert_kept(engine: Engine) -> list[tuple[int, ...]]:
    """The figures as read equal those counted afresh, before and after the cases' changes are folded in."""
    counted, stored = figures(engine)
    assert stored == counted, [(c, s) for c, s in zip(counted, stored, strict=True) if c != s][:5]
    with engine.begin() as conn:
        fold_case_changes(conn)
        assert conn.execute(text("SELECT count(*) FROM grid_case_changes")).scalar_one() == 0
    counted, stored = figures(engine)
    assert stored == counted, [(c, s) for c, s in zip(counted, stored, strict=True) if c != s][:5]
    return stored


def reported(engine: Engine, rank: int, n: int) -> tuple[int, list[int]]:
    """``n`` reports of different categories (not duplicates of each other) at a point of the ``rank``-th grid,
    through the intake, each then due on 30 November (past): the grid's id and the cases' ids."""
    code, lon, lat = inner_point(engine, rank)
    with engine.connect() as conn:
        grid = conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": code}).scalar_one()
        kinds = conn.execute(text("SELECT code FROM categories ORDER BY code LIMIT :n"), {"n": n}).scalars().all()
    ids = [int(events.intake(engine, rules.EventIn(lon=lon, lat=lat, category=kind, source="hotline"),
                             now=DAYTIME).event["id"]) for kind in kinds]
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM events WHERE id = ANY(:ids) AND state = 'dispatched' "
                                 "AND grid_id = :g"), {"ids": ids, "g": grid}).scalar_one() == n
        conn.execute(text("UPDATE events SET due_at = '2026-11-30T00:00:00Z' WHERE id = ANY(:ids)"), {"ids": ids})
    return int(grid), ids


def test_the_open_states_are_the_services(divided_engine: Engine) -> None:
    """The triggers' SQL names the same open states as the rest of the service."""
    sql = (ROOT / "gis/planning/sql/grid_figures.sql").read_text()
    assert " ".join(OPEN_STATES_SQL.split()) in " ".join(sql.split())
    assert "('dispatched', 'handled')" in sql and "e.state IN ('dispatched', 'handled')" in OVERDUE_SQL


def test_the_figures_follow_the_buildings(divided_engine: Engine) -> None:
    stored = assert_kept(divided_engine)  # as the import and the division left them
    assert sum(row[1] for row in stored) > 0 and sum(row[2] for row in stored) > 0
    with divided_engine.begin() as conn:
        first, second = conn.execute(text("SELECT id FROM grids ORDER BY id LIMIT 2")).scalars()
        # one statement moves every building of one grid to another, one changes households, one deletes
        conn.execute(text("UPDATE buildings SET grid_id = :b WHERE grid_id = :a"), {"a": first, "b": second})
        conn.execute(text("UPDATE buildings SET households_override = households + 7 WHERE id IN "
                          "(SELECT id FROM buildings WHERE grid_id IS NOT NULL ORDER BY id LIMIT 5)"))
        conn.execute(text("DELETE FROM buildings WHERE id IN (SELECT id FROM buildings WHERE grid_id = :b "
                          "ORDER BY id LIMIT 3)"), {"b": second})
        conn.execute(text("UPDATE buildings SET name = 'renamed' WHERE grid_id = :b"), {"b": second})
    after = assert_kept(divided_engine)
    assert next(r for r in after if r[0] == first)[1:3] == (0, 0)
    # a grid deleted: its buildings' grid_id is set NULL by the foreign key, and the others' figures stay right
    with divided_engine.begin() as conn:
        conn.execute(text("DELETE FROM staff_grids WHERE grid_id = :b"), {"b": second})
        conn.execute(text("DELETE FROM grids WHERE id = :b"), {"b": second})
    assert_kept(divided_engine)


def test_the_figures_follow_the_cases(divided_engine: Engine) -> None:
    grid, ids = reported(divided_engine, 0, 4)
    other, _ = reported(divided_engine, 1, 2)
    stored = {r[0]: r for r in assert_kept(divided_engine)}
    assert stored[grid][3] == 4 and stored[grid][4] == 4  # due on 30 November: past
    # the loop's own steps: handled (still open), verified, closed
    with divided_engine.connect() as conn:
        assignee = conn.execute(text("SELECT assignee_staff_id FROM events WHERE id = :i"), {"i": ids[0]}).scalar()
    events.act(divided_engine, ids[0], "handle", actor="m", role="grid_member", note="修好了", actor_staff_id=assignee)
    events.act(divided_engine, ids[0], "verify", actor="c", role="centre_staff")
    assert {r[0]: r for r in assert_kept(divided_engine)}[grid][3:] == (4, 3)
    events.act(divided_engine, ids[0], "close", actor="c", role="centre_staff")
    assert {r[0]: r for r in assert_kept(divided_engine)}[grid][3:] == (3, 3)
    with divided_engine.begin() as conn:
        # two deadlines equal (all are: 30 November), then one of them moves: the other stays (a multiset)
        conn.execute(text("UPDATE events SET due_at = now() + interval '3 days' WHERE id = :i"), {"i": ids[1]})
        # a case moved to another grid, by the live partition itself; a case's text alone; a case deleted
        conn.execute(text("UPDATE events_live SET grid_id = :o WHERE id = :i"), {"o": other, "i": ids[3]})
        conn.execute(text("UPDATE events SET description = 'x' WHERE id = ANY(:ids)"), {"ids": ids})
    kept = {r[0]: r for r in assert_kept(divided_engine)}
    assert kept[grid][3:] == (2, 1) and kept[other][3:] == (3, 3)
    with divided_engine.connect() as conn:
        dues = conn.execute(text("SELECT open_dues FROM grids WHERE id = :g"), {"g": grid}).scalar_one()
    assert len(dues) == 2 and dues == sorted(dues)
    with divided_engine.begin() as conn:
        conn.execute(text("TRUNCATE events CASCADE"))
    assert all(r[3:] == (0, 0) for r in assert_kept(divided_engine))


def test_the_deadlines_are_a_multiset(divided_engine: Engine) -> None:
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    with divided_engine.connect() as conn:
        apply = text("SELECT grid_dues_apply(CAST(:d AS timestamptz[]), CAST(:a AS timestamptz[]), "
                     "CAST(:r AS timestamptz[]))")
        assert conn.execute(apply, {"d": [t2, t2], "a": [t1], "r": [t2]}).scalar_one() == [t1, t2]
        assert conn.execute(apply, {"d": [t1], "a": None, "r": [t1]}).scalar_one() is None
        assert conn.execute(apply, {"d": None, "a": [t2, t1], "r": None}).scalar_one() == [t1, t2]


def test_writers_on_the_same_grids_neither_wait_nor_deadlock(divided_engine: Engine) -> None:
    """The intake's case: two transactions change cases of the same two grids, in opposite orders. Each change is
    appended, so neither waits for the other (when the grid's row was updated in place, the second waited, and two
    such transactions deadlocked), and both count."""
    first_grid, first_ids = reported(divided_engine, 0, 2)
    second_grid, second_ids = reported(divided_engine, 1, 2)
    closing = "UPDATE events SET state = 'closed', closed_at = now() WHERE id = :i"
    with divided_engine.connect() as one, divided_engine.connect() as two:
        one.execute(text(closing), {"i": first_ids[0]})
        two.execute(text(closing), {"i": second_ids[0]})
        done = threading.Event()

        def other_order() -> None:  # would wait for ``one``'s grid, which waits for ``two``'s: a deadlock
            two.execute(text(closing), {"i": first_ids[1]})
            done.set()

        thread = threading.Thread(target=other_order)
        thread.start()
        one.execute(text(closing), {"i": second_ids[1]})
        thread.join(timeout=30)
        assert done.is_set()  # it went through while ``one`` was still open
        one.commit()
        two.commit()
    kept = {r[0]: r for r in assert_kept(divided_engine)}
    assert kept[first_grid][3] == 0 and kept[second_grid][3] == 0


def test_a_fold_is_one_transaction_and_one_at_a_time(divided_engine: Engine) -> None:
    grid, _ = reported(divided_engine, 0, 2)
    with divided_engine.connect() as reader, divided_engine.connect() as folder:
        reader.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
        before = reader.execute(text(STORED)).all()
        assert fold_case_changes(folder) > 0
        with divided_engine.begin() as other:  # a second folder while the first is under way: a no-op
            assert fold_case_changes(other) == 0
        folder.commit()
        assert reader.execute(text(STORED)).all() == before  # its snapshot: the changes appended, not yet folded
        reader.commit()
    assert {r[0]: r for r in assert_kept(divided_engine)}[grid][3] == 2


def test_the_tiles_carry_the_figures(divided_engine: Engine, divided_url: str, tmp_path: Path) -> None:
    grid, _ = reported(divided_engine, 0, 3)
    with divided_engine.begin() as conn:  # one of the three not yet due
        conn.execute(text("UPDATE events SET due_at = now() + interval '1 hour' WHERE id = "
                          "(SELECT max(id) FROM events WHERE grid_id = :g)"), {"g": grid})
    stored = {r[0]: r for r in assert_kept(divided_engine)}
    writing(divided_engine, create_user, "tiler", PASSWORD, "admin", unit=None)
    with divided_engine.connect() as conn:
        code, lon, lat = conn.execute(text("SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) "
                                           "p FROM grids WHERE id = :g) s"), {"g": grid}).one()
    with serve_in_thread(create_app(Settings(database_url=divided_url, escalate_every_s=0))) as base:
        token = http_token(base, "tiler")
        for z in (10, 15):
            x, y = tile_of(lon, lat, z)
            frame = read_tile(tmp_path, fetch(base, token, f"/tiles/grids/{z}/{x}/{y}.mvt").content, z, x, y,
                              "grids")
            if z == 15:
                row = frame[frame["code"] == code].iloc[0]
                assert (row["households"], row["buildings"]) == stored[grid][1:3]
            else:  # points carry no code: the grid's figures are among them
                row = frame[(frame["open"] == 3) & (frame["open_overdue"] == 2)].iloc[0]
            assert (row["open"], row["open_overdue"]) == (3, 2) == stored[grid][3:]


def test_the_service_folds_the_changes_in(divided_engine: Engine, divided_url: str) -> None:
    reported(divided_engine, 0, 2)

    def waiting() -> int:
        with divided_engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM grid_case_changes")).scalar_one())

    assert waiting() > 0
    with TestClient(create_app(Settings(database_url=divided_url, escalate_every_s=0, fold_every_s=0.2))):
        deadline = time.monotonic() + 30
        while waiting() > 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert waiting() == 0
    assert_kept(divided_engine)
