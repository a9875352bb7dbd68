"""The postman references the patrol benchmark measures gridpatrol against, each run as its authors ship it:

* ``postman_problems`` 0.3 (Andrew Brooks; PyPI, installed with ``--no-deps`` because it pins networkx 2.0): its
  ``cpp`` (every edge required) and ``rpp`` (required edges must form one connected piece; optional ones may be
  used to even out odd nodes). It predates networkx 3 and pandas 2, so two of its functions are patched here, each
  to do what it did on the versions it was written for: ``max_weight_matching`` now returns a set of pairs instead
  of a dict, and ``Series[int]`` no longer falls back to positions. Nothing else of it is changed.
* pgRouting's ``pgr_chinesePostman`` (Debian's ``postgresql-15-pgrouting``), experimental: a directed postman, fed
  each street both ways (``cost = reverse_cost = length``).

Both take the graph as text (a CSV edge list, an SQL query), which is part of what they cost and is timed with them.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

import networkx as nx
from sqlalchemy import text
from sqlalchemy.engine import Engine

Edge = tuple[Hashable, Hashable, int]


def _patch_postman_problems() -> Any:
    import postman_problems.graph as ppg
    import postman_problems.solver as pps

    def dedupe_matching(matching: Any) -> list[tuple[Any, Any]]:
        pairs = matching.items() if isinstance(matching, dict) else matching  # networkx 3: a set of pairs
        return list({tuple(sorted(pair)) for pair in pairs})

    def create_networkx_graph_from_edgelist(edgelist: Any, edge_id: str = "id") -> nx.MultiGraph:
        g = nx.MultiGraph()
        for i, (_, row) in enumerate(edgelist.iterrows()):
            attrs = row.iloc[2:].to_dict()
            attrs.setdefault(edge_id, i)
            g.add_edge(row.iloc[0], row.iloc[1], **attrs)  # pandas 2+: positions by iloc
        return g

    for module in (ppg, pps):
        module.dedupe_matching = dedupe_matching  # type: ignore[attr-defined]
        module.create_networkx_graph_from_edgelist = create_networkx_graph_from_edgelist  # type: ignore[attr-defined]
    return pps


def postman_problems_length(graph: nx.MultiGraph, required: Iterable[Edge], base: Hashable) -> float:
    """The length of postman_problems' route: ``cpp`` when every edge of ``graph`` is required, else ``rpp``
    (optional edges are the rest of ``graph``). Raises AssertionError where ``rpp`` does not apply (the required
    edges are not one connected piece)."""
    solver = _patch_postman_problems()
    wanted = {(u, v, k) for u, v, k in required} | {(v, u, k) for u, v, k in required}
    every = len(wanted) // 2 >= graph.number_of_edges()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edges.csv"
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["node1", "node2", "distance", "required"])
            for u, v, k, data in graph.edges(keys=True, data=True):
                out.writerow([u, v, data["length"], int((u, v, k) in wanted)])
        if every:
            circuit, _ = solver.cpp(str(path), start_node=str(base))
        else:
            circuit, _ = solver.rpp(str(path), start_node=str(base))
    return float(sum(step[3]["distance"] for step in circuit))


def pgrouting_ready(engine: Engine) -> bool:
    """Whether pgRouting is installed in the server (and its extension created in the benchmark's database)."""
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'pgrouting'")).scalar() is None:
            return False
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pgrouting"))
    return True


def pgr_chinese_postman(engine: Engine, graph: nx.MultiGraph) -> tuple[float, int]:
    """pgRouting's route over every edge of ``graph`` (each street both ways): its length, and how many of the
    graph's edges it walks (it keeps one of several parallel edges between two nodes)."""
    rows = []
    for i, (u, v, data) in enumerate(graph.edges(data=True), start=1):
        rows.append(f"({i}, {int(u)}, {int(v)}, {float(data['length'])!r}::float8, {float(data['length'])!r}::float8)")
    edges_sql = f"SELECT * FROM (VALUES {', '.join(rows)}) AS t(id, source, target, cost, reverse_cost)"
    with engine.connect() as conn:
        result = conn.execute(text("SELECT edge, cost FROM pgr_chinesePostman(:q)"), {"q": edges_sql}).all()
    walked = {int(edge) for edge, _ in result if edge > 0}
    return float(sum(cost for edge, cost in result if edge > 0)), len(walked)
