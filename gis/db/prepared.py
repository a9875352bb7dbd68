"""Server-side prepared statements for the hot paths (event intake): planning a PostGIS query costs more than
running it (~0.5 ms against ~0.1 ms for the placement query), so each pooled connection plans it once.

A :class:`Prepared` is written like any psycopg2 statement, with ``%(name)s`` parameters, plus the SQL type of
each; it is ``PREPARE``d on a connection the first time that connection runs it (prepared statements belong to
the database session and survive a rolled-back transaction).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from typing import Any

_PARAM = re.compile(r"%\((\w+)\)s")


class Prepared:
    def __init__(self, name: str, sql: str, types: Mapping[str, str]) -> None:
        self.name = name
        self.order: list[str] = []
        for param in _PARAM.findall(sql):
            if param not in self.order:
                self.order.append(param)
        missing = [p for p in self.order if p not in types]
        if missing:
            raise ValueError(f"{name}: no SQL type for {', '.join(missing)}")
        positional = _PARAM.sub(lambda m: f"${self.order.index(m.group(1)) + 1}", sql)
        signature = ", ".join(types[p] for p in self.order)
        self.prepare = f"PREPARE {name} ({signature}) AS {positional}"
        self.execute_sql = f"EXECUTE {name} ({', '.join(['%s'] * len(self.order))})"

    def run(self, cur: Any, params: Mapping[str, Any]) -> None:
        """Execute on ``cur`` (a psycopg2 cursor), preparing it on that session first if needed."""
        done = _sessions.setdefault(cur.connection, set())
        if self.name not in done:
            cur.execute(self.prepare)
            done.add(self.name)
        cur.execute(self.execute_sql, [params[p] for p in self.order])


_sessions: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
"""The statements prepared on each open connection (one psycopg2 connection is one database session)."""
