"""Reports stored in batches (``events.intake_many``, ``api.intake``): each report's answer is its own, a bad report
refuses only itself, and a batch behaves as the same reports sent one by one."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.intake import IntakeQueue
from api.settings import Settings
from gis.db.engine import make_engine
from gis.dispatch import rules
from gis.dispatch.store import events
from gis.errors import ConflictError, InputError
from tests.db.test_events import DAYTIME, count, inner_point


def at(minutes: int = 0) -> datetime:
    return DAYTIME + timedelta(minutes=minutes)


def test_a_batch_answers_each_report_and_stores_only_the_good_ones(divided_engine: Engine) -> None:
    code, lon, lat = inner_point(divided_engine)
    _, lon2, lat2 = inner_point(divided_engine, 3)
    before = count(divided_engine)
    batch = [
        rules.EventIn(lon=lon, lat=lat, category="C01", source="hotline", idempotency_key="k-1"),
        rules.EventIn(lon=lon, lat=lat, category="NOPE", source="hotline"),
        rules.EventIn(lon=0.0, lat=0.0, category="C01", source="hotline"),  # the Gulf of Guinea
        rules.EventIn(lon=lon, lat=lat, category="C01", source="hotline", description="bad\x00text"),
        rules.EventIn(lon=lon, lat=lat, category="C01", source="hotline", idempotency_key="k-1"),  # a retry
        rules.EventIn(lon=lon2, lat=lat2, category="C01", source="hotline", idempotency_key="k-1",
                       description="another report"),  # the key again, for something else
        rules.EventIn(lon=lon, lat=lat, category="C01", source="hotline"),  # near the first: its duplicate
        rules.EventIn(lon=lon2, lat=lat2, category="E05", source="video"),
    ]
    answers = events.intake_many(divided_engine, [(r, at(i)) for i, r in enumerate(batch)])
    first, unknown, outside, nul, retry, reused, duplicate, other = answers
    assert isinstance(first, rules.Intake) and not first.replayed and first.event["grid"] == code
    assert first.event["reported_at"] == at(0).isoformat()  # each report keeps the moment it came in
    assert isinstance(unknown, InputError) and "unknown category 'NOPE'" in str(unknown)
    assert isinstance(outside, InputError) and "outside the service area" in str(outside)
    assert isinstance(nul, InputError) and "NUL" in str(nul)
    assert isinstance(retry, rules.Intake) and retry.replayed and retry.event["id"] == first.event["id"]
    assert isinstance(reused, ConflictError) and "already used for a different report" in str(reused)
    assert isinstance(duplicate, rules.Intake) and duplicate.event["duplicate_of"] == first.event["id"]
    assert duplicate.event["state"] == "reported"  # a possible duplicate waits for a person
    assert isinstance(other, rules.Intake) and other.event["state"] == "dispatched"
    assert other.event["reported_at"] == at(7).isoformat()
    assert count(divided_engine) == before + 3  # first, duplicate, other: nothing else
    with divided_engine.connect() as conn:
        steps = conn.execute(text("SELECT count(*) FROM event_transitions WHERE event_id = ANY(:ids)"),
                             {"ids": [first.event["id"], duplicate.event["id"], other.event["id"]]}).scalar_one()
    assert steps == 3 + 1 + 3  # report, accept, dispatch; the duplicate only reported


@dataclass
class Unchecked(rules.EventIn):
    """A report that skips the checks: stands for a failure no rule foresaw, met on the way or in the database."""

    def check(self) -> None:
        pass


def test_a_report_that_fails_the_whole_batch_fails_alone(divided_engine: Engine) -> None:
    _, lon, lat = inner_point(divided_engine)
    before = count(divided_engine)
    batch = [rules.EventIn(lon=lon, lat=lat, category="C01", source="hotline"),
             Unchecked(lon=lon, lat=lat, category="E05", source="a source far too long for its column"),
             Unchecked(lon=lon, lat=lat, category="E05", source="hotline", description="lone \ud800 surrogate"),
             rules.EventIn(lon=lon, lat=lat, category="S01", source="hotline")]
    good, too_long, surrogate, also_good = events.intake_many(divided_engine, [(r, at()) for r in batch])
    assert isinstance(good, rules.Intake) and isinstance(also_good, rules.Intake)
    assert isinstance(too_long, psycopg2.Error)  # the database refused it: the batch again, without it
    assert isinstance(surrogate, TypeError)  # cannot even be written as JSON: never sent
    assert count(divided_engine) == before + 2
    with pytest.raises(psycopg2.Error):  # alone, it fails as it did in the batch
        events.intake(divided_engine, batch[1])
    # through the checks a client's report goes through, the same text is a clear 422
    with pytest.raises(InputError, match="valid Unicode"):
        events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E05", source="hotline",
                                                     description="lone \ud800 surrogate"))
    with pytest.raises(InputError, match="unknown source"):
        events.intake(divided_engine, rules.EventIn(lon=lon, lat=lat, category="E05", source="x" * 40))


def test_reports_that_wait_while_the_database_is_busy_go_together(divided_url: str) -> None:
    engine = make_engine(divided_url, connections=2)
    _, lon, lat = inner_point(engine)

    def reports(tag: str, n: int) -> list[rules.EventIn]:
        return [rules.EventIn(lon=lon + i * 0.0001, lat=lat, category="C01" if i % 5 else "NOPE", source="hotline",
                               idempotency_key=f"{tag}-{i}") for i in range(n)]

    async def run(limit: int) -> tuple[list[rules.Intake | BaseException], dict[str, float]]:
        queue = IntakeQueue(engine, Settings(database_url=divided_url, intake_batch=limit))
        blocker = engine.connect()  # the database is busy: events cannot be written until it lets go
        blocker.begin()
        blocker.exec_driver_sql("LOCK TABLE events IN EXCLUSIVE MODE")
        try:
            first = asyncio.ensure_future(queue.submit(reports(f"first{limit}", 2)[1]))
            while queue.figures()["batches"] < 1:  # the lane took it and waits for the database
                await asyncio.sleep(0.01)
            later = [asyncio.ensure_future(queue.submit(r)) for r in reports(f"q{limit}", 10)]
            await asyncio.sleep(0.05)
            assert queue.figures()["waiting"] == 10
        finally:
            blocker.rollback()
            blocker.close()
        try:
            results = await asyncio.gather(first, *later, return_exceptions=True)
        finally:
            await queue.close()
        return results, queue.figures()

    before = count(engine)
    results, figures = asyncio.run(run(64))
    assert figures == {"process": os.getpid(), "batches": 2, "reports": 11, "waiting": 0,
                       "mean_batch": 5.5}  # the first alone, then the ten
    refused = [i for i, r in enumerate(results) if isinstance(r, InputError)]
    assert refused == [1, 6]  # reports 0 and 5 of the ten
    stored = [r.event["id"] for r in results if isinstance(r, rules.Intake)]
    assert len(set(stored)) == 9 and count(engine) == before + 9
    results, figures = asyncio.run(run(4))  # at most four a call: 1, then 4 + 4 + 2
    assert figures["batches"] == 4 and figures["reports"] == 11
    assert sum(isinstance(r, rules.Intake) for r in results) == 9 and count(engine) == before + 18
    with engine.connect() as conn:  # each report stored in the order it came
        keys = conn.execute(text("SELECT idempotency_key FROM events WHERE idempotency_key LIKE 'q4-%' "
                                 "ORDER BY id")).scalars().all()
    assert keys == [f"q4-{i}" for i in range(10) if i % 5]
    engine.dispose()
