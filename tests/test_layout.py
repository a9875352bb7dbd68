"""The house rules import-linter cannot state: a store function takes the caller's connection and never commits;
the few that take an engine are services, each with its reason here and a line in docs/ARCHITECTURE.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVICES = {
    "access.store.audit.prune_audit": "deletes in chunks, a transaction each, while the service goes on writing",
    "dispatch.store.bulk.bulk_intake": "loads a file in batches, with side connections building partitions",
    "dispatch.store.events.intake": "one report through intake_many",
    "dispatch.store.events.intake_many": "one autocommitted statement on a raw connection, retried once on a "
                                         "broken one: the hot path",
    "dispatch.store.events.act": "take_step in a transaction of its own, for the scheduler and scripts",
    "dispatch.store.events.escalate_overdue": "a transaction per event: one that moved on does not undo the rest",
    "oversight.store.leaders.cached_coverage": "the coverage report, cached per period",
    "oversight.store.leaders.unit_figures": "coverage and KPIs for the leaders' view",
    "oversight.store.bulletin.bulletin": "KPIs, cached coverage (seconds on a large city) and compliance for a month",
    "oversight.store.screen.response_circles": "the cached coverage, computed apart from the screen's refresh",
    "patrol.store.coverage.coverage_report": "reads, computes isochrones with no connection held, reads again",
    "patrol.store.plans.plan_basic": "reads the network, then solves with no connection held",
    "patrol.store.plans.plan_full_inspection": "reads, then solves the tours with no connection held",
    "patrol.store.plans.plan_budgeted_round": "reads, then solves with no connection held",
    "patrol.store.plans.plan_split": "reads the network, then splits the patrol with no connection held",
    "patrol.store.shares.split_for_share": "reads the network, then splits the patrol with no connection held",
    "patrol.store.shares.part_plan": "reads the share and the network, then routes the part with no connection held",
    "patrol.store.visits.schedule": "reads, then plans the inspection with no connection held",
    "planning.store.divisions.divide_and_store": "divides (seconds to minutes) before it writes",
    "planning.store.importer.import_osm": "reads a file for minutes, then loads it with COPY in one transaction",
    "planning.store.basemap.build_basemap": "reads a file with no connection held, then replaces the city's basemap "
                                            "in one transaction",
}


def _public_functions() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted((ROOT / "gis").glob("*/store/*.py")):
        module = ".".join(path.relative_to(ROOT / "gis").with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                found.append((f"{module}.{node.name}", node))
    return found


def _first(node: ast.FunctionDef) -> tuple[str, str]:
    arg = node.args.args[0] if node.args.args else None
    if arg is None:
        return "", ""
    return arg.arg, ast.unparse(arg.annotation) if arg.annotation is not None else ""


def test_store_functions_take_a_connection_unless_they_are_services() -> None:
    functions = _public_functions()
    assert len(functions) > 60
    engines = {name for name, node in functions if _first(node)[1] == "Engine"}
    assert engines == set(SERVICES), (
        f"take an Engine but are not listed as services: {sorted(engines - set(SERVICES))}; "
        f"listed but no longer take one: {sorted(set(SERVICES) - engines)}")


def test_store_functions_never_commit_the_callers_transaction() -> None:
    for name, node in _public_functions():
        if name in SERVICES:
            continue
        source = ast.unparse(node)
        for owning in ("engine.begin()", "engine.connect()", ".commit()", ".rollback()"):
            assert owning not in source, f"{name} calls {owning}: the caller owns the transaction"


def test_every_service_is_on_the_architecture_page() -> None:
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [name for name in SERVICES if f"`{name.rsplit('.', 1)[1]}`" not in page]
    assert not missing, f"docs/ARCHITECTURE.md does not list the services {missing}"


def test_routers_run_no_sql_of_their_own() -> None:
    for path in sorted((ROOT / "api").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        calls = re.findall(r"\.(exec_driver_sql|execute)\(", text)
        assert not calls, f"{path.relative_to(ROOT)} runs SQL itself: put it in a store"
