"""Edit benchmark: impact preview (dry run) of a boundary move in a community of ~20 grids and ~5,000 buildings.

    make bench      # or: .venv/bin/python bench/edit_bench.py

Liechtenstein is imported into a database of its own and divided twice: with a community band of 6,000–10,000
households (communities of about 20 grids, ~2,600 buildings: Liechtenstein's houses are small) and of
12,000–20,000 (about 4,000 buildings), and with grids of 600–1,000 households in communities of 14,000–22,000
(20-odd grids over about 5,000 buildings); each time the community with the most buildings is taken. A grid's
boundary is pushed 40 m into its neighbour and previewed (``dry_run``) repeatedly. Printed: median and worst
time against the target (200 ms, issue 3), and against a reference measured in the same run: the bare round trip
that reads the community's grids and buildings from PostGIS, the floor for any preview. Not a test.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping
from sqlalchemy import text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdb import BENCH_CITIES, bench_database  # noqa: E402

from api.app import settle_gc  # noqa: E402
from gis.db.engine import make_engine, writing  # noqa: E402
from gis.geo.cities import city_from_options  # noqa: E402
from gis.planning.division import GRID_BAND, Band  # noqa: E402
from gis.planning.store.divisions import divide_and_store  # noqa: E402
from gis.planning.store.editing import edit_grids  # noqa: E402
from gis.planning.store.importer import import_osm  # noqa: E402

TARGET_MS = 200.0
# (grid band, community band): ~20 grids per community; communities large enough to hold ~4,000 of
# Liechtenstein's small buildings; and 20-odd larger grids over ~5,000 buildings (the case)
SCENARIOS = ((GRID_BAND, Band(6000, 10000)), (GRID_BAND, Band(12000, 20000)), (Band(600, 1000), Band(14000, 22000)))
RUNS = 15


def timed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def scenario(engine: Engine, city_id: int, grid_band: Band, band: Band) -> None:
    divide_and_store(engine, city_id, grid_band=grid_band, community_band=band)
    with engine.connect() as conn:
        community_id, grids, buildings = conn.execute(text("""
            SELECT c.id, (SELECT count(*) FROM grids g WHERE g.community_id = c.id),
                   (SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.community_id = c.id)
            FROM admin_units c WHERE c.level = 'community' ORDER BY 3 DESC LIMIT 1""")).one()
        rows = conn.execute(text("SELECT code, ST_AsBinary(geom) FROM grids WHERE community_id = :c ORDER BY code"),
                            {"c": community_id}).all()
    shapes = {code: shapely.from_wkb(bytes(g)) for code, g in rows}
    code, neighbour = max(
        ((a, b) for a in shapes for b in shapes if a < b),
        key=lambda ab: shapes[ab[0]].boundary.intersection(shapes[ab[1]].boundary).length,
    )
    outline = shapes[code].union(shapes[neighbour].intersection(shapes[code].buffer(0.0005)))  # ~40 m
    payload: dict[str, Any] = {"codes": [code], "versions": [1], "geometry": mapping(outline), "author": "bench",
                               "reason": "benchmark", "dry_run": True}

    def preview() -> None:
        assert writing(engine, edit_grids, "reshape", **payload).dry_run

    def floor() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT code, geom FROM grids WHERE community_id = :c"), {"c": community_id}).all()
            conn.execute(text("SELECT b.id, ST_PointOnSurface(b.geom) FROM buildings b JOIN grids g "
                              "ON g.id = b.grid_id WHERE g.community_id = :c"), {"c": community_id}).all()

    preview()  # warm-up
    settle_gc()  # as the server does once it has started
    times = [timed_ms(preview) for _ in range(RUNS)]
    floors = [timed_ms(floor) for _ in range(RUNS)]
    result = writing(engine, edit_grids, "reshape", **payload)
    median, worst, base = statistics.median(times), max(times), statistics.median(floors)
    print(f"--- grids of {grid_band}, communities of {band} households: the largest community has {grids} grids "
          f"and {buildings:,} buildings")
    print(f"previewing a 40 m boundary move of grid {code} into {neighbour}: {result.buildings_moved} buildings, "
          f"{result.households_moved} households move")
    print(f"{'job':<44}{'median ms':>10}{'worst ms':>10}")
    print(f"{'reference: read grids + buildings (floor)':<44}{base:>10.1f}{max(floors):>10.1f}")
    print(f"{'impact preview (dry run)':<44}{median:>10.1f}{worst:>10.1f}")
    print(f"vs target 200 ms: {median / TARGET_MS:.2f}x (median), {worst / TARGET_MS:.2f}x (worst of {RUNS}); "
          f"vs the floor: {median / base:.1f}x\n")


def main() -> None:
    with bench_database("gridpatrol_edit_bench") as url:
        engine = make_engine(url)
        try:
            import_osm(engine, ROOT / "data" / "liechtenstein-2024-03-03.osm.pbf",
                       city=city_from_options("liechtenstein", **BENCH_CITIES["liechtenstein"]))
            with engine.connect() as conn:
                city_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city'")).scalar_one()
            for grid_band, band in SCENARIOS:
                scenario(engine, city_id, grid_band, band)
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
