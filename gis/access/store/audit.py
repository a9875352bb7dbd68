"""The audit log: who did what, when, from where; every change, refusal, sign-in and read of a contact."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from gis.access.lines import FIELDS as AUDIT_FIELDS
from gis.access.lines import clean_line
from gis.errors import InputError


def audit(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Append lines to the audit log: ``{username, role, action, method, path, status, subject, client, detail}``,
    in one statement however many (the service writes them in batches, a few hundred a second under load). Every
    field is cleaned first (:func:`gis.access.lines.clean_line`): what a client sent cannot make the batch fail."""
    if not entries:
        return
    rows = [clean_line(e) for e in entries]
    conn.exec_driver_sql(
        f"INSERT INTO audit_log ({', '.join(AUDIT_FIELDS)}) SELECT {', '.join(AUDIT_FIELDS)} "
        "FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(username text, role text, action text, method text, "
        "path text, status int, subject text, client text, detail jsonb)", {"rows": json.dumps(rows)})


MAX_AUDIT_LINES = 10_000
"""The most lines one read of the audit log answers."""


def audit_entries(conn: Connection, *, subject: str | None = None, username: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    if not 1 <= limit <= MAX_AUDIT_LINES:
        raise InputError(f"the limit is 1 to {MAX_AUDIT_LINES:,} lines")
    where: list[str] = ["true"]
    params: dict[str, Any] = {"limit": limit}
    if subject is not None:
        where.append("subject = %(s)s")
        params["s"] = subject
    if username is not None:
        where.append("username = %(u)s")
        params["u"] = username
    rows = conn.exec_driver_sql(
        "SELECT at, username, role, action, method, path, status, subject, client, detail FROM audit_log "
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %(limit)s", params).mappings().all()
    return [{**r, "at": r["at"].isoformat()} for r in rows]


def prune_audit(engine: Engine, before: datetime, *, chunk: int = 50_000,
                progress: Callable[[int], None] | None = None) -> int:
    """Delete the audit log's lines written before ``before``, oldest first, ``chunk`` lines a transaction (the
    service goes on writing meanwhile: no long lock, no transaction that grows with the log). ``progress`` is told
    each chunk's count. Answers how many were deleted; the pruning itself is written to the log."""
    if before > datetime.now(UTC):
        raise InputError(f"{before.isoformat()} is in the future: pruning up to it would delete lines being written "
                         "now; give a date in the past")
    deleted = 0
    while True:
        with engine.begin() as conn:
            n = conn.exec_driver_sql(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < %(b)s ORDER BY at "
                "LIMIT %(n)s)", {"b": before, "n": chunk}).rowcount
        deleted += n
        if progress is not None:
            progress(n)
        if n < chunk:
            break
    with engine.begin() as conn:
        audit(conn, [{"username": None, "role": "system", "action": "prune", "subject": "audit_log",
                      "detail": {"before": before.isoformat(), "deleted": deleted}}])
    return deleted


def count_audit_before(conn: Connection, before: datetime) -> int:
    return int(conn.exec_driver_sql("SELECT count(*) FROM audit_log WHERE at < %(b)s", {"b": before}).scalar_one())
