"""Leaders' map benchmark: the whole Siping-scale synthetic city (7,181 grids) on one map, every grid coloured by
its open-overdue events, with the event heat map, against a bare read of the same grids measured in the same run.

    make bench      # or: .venv/bin/python bench/leaders_bench.py [--reuse]

1. reference: the grids' simplified outlines read out of PostGIS as GeoJSON (the least any map of them costs);
2. the page: what ``GET /leaders?city=…&grids=1&measure=open_overdue`` does (units, figures, events, folium,
   HTML), its time and size;
3. the page opened in headless Chromium (Debian's), until the network is idle and the map is drawn.
Targets (issue 6): under 3 s and 8 MB of HTML, opening in under 5 s. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import synthetic_city  # noqa: E402
from benchdb import bench_database  # noqa: E402

from api.routers.leaders import ViewParams, build_view  # noqa: E402
from api.settings import Settings  # noqa: E402
from gis.db.engine import make_engine  # noqa: E402
from gis.demo.activity import seed_demo_activity  # noqa: E402
from gis.oversight.store.leaders import SIMPLIFY_DEG  # noqa: E402
from maps.city import map_to_html  # noqa: E402
from maps.leaders import leaders_map  # noqa: E402

TARGET_S, TARGET_MB, TARGET_OPEN_S = 3.0, 8.0, 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep the synthetic city of an earlier run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with bench_database("gridpatrol_leaders_bench", reuse=args.reuse) as url:
        engine = make_engine(url)
        city = synthetic_city.build(engine)
        seeded = seed_demo_activity(engine, city, visited_share=0.0)
        with engine.connect() as conn:
            grids = conn.exec_driver_sql("SELECT count(*) FROM grids").scalar_one()
            events = conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one()
        print(f"synthetic city: {grids:,} grids, {events:,} events ({seeded['events']:,} added now)", flush=True)

        def bare() -> int:
            with engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    f"SELECT code, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, {SIMPLIFY_DEG}), 5) FROM grids"
                ).all()
            return sum(len(g) for _c, g in rows)

        ref_times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            bare()
            ref_times.append(time.perf_counter() - started)
        settings = Settings(database_url=url)
        end = date.today()
        params = ViewParams(city=str(city), unit=None, measure="open_overdue", start=end - timedelta(days=29),
                            end=end, category=None, mode="ebike", minutes=5.0, grids=True)
        times, page = [], ""
        for _ in range(args.repeat):
            started = time.perf_counter()
            view = build_view(engine, settings, params)
            page = map_to_html(leaders_map(view, links={"csv": "/leaders/figures", "export": "/leaders"}))
            times.append(time.perf_counter() - started)
        seconds, reference = statistics.median(times), statistics.median(ref_times)
        size_mb = len(page.encode()) / 2**20
        print(f"\n1. reference: the {grids:,} grids' outlines as GeoJSON out of PostGIS: {reference:.2f} s (median of "
              f"{args.repeat})")
        print(f"2. the page (units, figures, {len(view['events']):,} events, folium, HTML): {seconds:.2f} s "
              f"(median of {args.repeat}; {seconds / reference:.1f}x the bare read), {size_mb:.1f} MB; "
              f"vs targets {TARGET_S:.0f} s: {seconds / TARGET_S:.2f}x, {TARGET_MB:.0f} MB: "
              f"{size_mb / TARGET_MB:.2f}x", flush=True)
        from fastapi import FastAPI
        from fastapi.responses import HTMLResponse
        from fastapi.staticfiles import StaticFiles
        from playwright.sync_api import sync_playwright

        from maps.browser import _MAP_PROBE, CHROMIUM, CHROMIUM_ARGS, serve_in_thread, wait_for

        app = FastAPI()
        app.mount("/static", StaticFiles(directory=ROOT / "maps" / "static"), name="static")
        app.get("/leaders")(lambda: HTMLResponse(page))
        errors: list[str] = []
        with serve_in_thread(app) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.on("pageerror", lambda e: errors.append(str(e)))
            started = time.perf_counter()
            tab.goto(f"{base}/leaders", wait_until="load", timeout=60_000)
            # drawn: every grid is a layer of the map
            wait_for(tab, f"({_MAP_PROBE})().features >= {grids}", timeout=60_000)  # the pages' CSP: no eval
            opened = time.perf_counter() - started
            probe = tab.evaluate(_MAP_PROBE)
            browser.close()
        print(f"3. opened in headless Chromium until all {probe['features']:,} grids are drawn: {opened:.2f} s; "
              f"vs target {TARGET_OPEN_S:.0f} s: {opened / TARGET_OPEN_S:.2f}x; page errors: {len(errors)}")
        engine.dispose()


if __name__ == "__main__":
    main()
