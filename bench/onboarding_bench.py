"""Onboarding benchmark: a Siping-scale city's own files into the service, each against the bare insert of the same
rows measured in the same run.

    make bench      # or: .venv/bin/python bench/onboarding_bench.py

1. the city's 7,181 existing grids (the synthetic Siping of ``bench/synthetic_city.py``, written to a GeoJSON file)
   imported with every check (``import_city_grids``: assignment by location, crossing, tiling, household band,
   buildings in no grid, codes, versions, buildings and events re-placed); reference: reading the same file and
   ``COPY``-ing its rows into a bare copy of the grids table;
2. the staff register of 6,366 grid members over those grids, with users and rosters (``import_staff``), from a
   CSV; reference: ``COPY``-ing the same rows into a bare table;
3. one community of about 5,000 households (of central Nanjing, divided automatically) divided into grids again
   (``divide_community``, a dry run); reference: reading that community's buildings and streets.

Targets (issue 20): under 30 s, 30 s and 1 s. Not a test.
"""

from __future__ import annotations

import csv
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import synthetic_city  # noqa: E402
from benchdb import BENCH_CITIES, bench_database, machine  # noqa: E402

from gis.db.engine import make_engine  # noqa: E402
from gis.geo.cities import city_from_options  # noqa: E402
from gis.geo.crs import WGS84  # noqa: E402

TARGET_GRIDS_S, TARGET_STAFF_S, TARGET_DIVIDE_S = 30.0, 30.0, 1.0
MEMBERS = 6_366


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def main() -> None:
    import geopandas as gpd
    import pyogrio
    from sqlalchemy import text

    from gis.access.store.register import import_staff
    from gis.planning.store.divisions import divide_and_store, load_inputs
    from gis.planning.store.grid_register import divide_community, import_city_grids
    from gis.planning.store.importer import import_osm
    from gis.planning.store.load import copy_rows, ewkb_hex

    with bench_database("gridpatrol_onboarding_bench") as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)
        city_id = synthetic_city.build(engine)
        with engine.begin() as conn:
            grids = gpd.read_postgis(text("SELECT code, name, geom FROM grids ORDER BY code"), conn, geom_col="geom",
                                     crs=WGS84).rename_geometry("geometry")
            conn.execute(text("DELETE FROM grid_versions"))
            conn.execute(text("DELETE FROM grids"))
            city = conn.execute(text("SELECT name FROM admin_units WHERE id = :c"), {"c": city_id}).scalar_one()
        path = Path(tmp) / "siping-grids.geojson"
        pyogrio.write_dataframe(grids, path)
        print(f"synthetic Siping: {len(grids):,} grids in {path.name} ({path.stat().st_size / 2**20:.1f} MiB); "
              f"machine: {machine()}", flush=True)

        def bare_grids() -> None:
            frame = pyogrio.read_dataframe(path)
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("CREATE TEMP TABLE bare_grids (LIKE grids INCLUDING DEFAULTS)")
                cur.execute("SELECT code, id FROM admin_units WHERE level = 'community'")
                ids = dict(cur.fetchall())
                copy_rows(cur, "bare_grids", ("code", "name", "community_id", "geom"),
                          zip(frame["code"], frame["name"], [ids[c[:12]] for c in frame["code"]],
                              ewkb_hex(frame.geometry), strict=True))
                raw.rollback()
            finally:
                raw.close()

        _, bare_s = timed(bare_grids)

        def import_grids() -> object:
            with engine.begin() as conn:
                return import_city_grids(conn, path, city=city, author="bench", reason="the city's grids")

        report, grids_s = timed(import_grids)
        print("\n1. the city's existing grids")
        print(f"   reference: read the file + COPY the same rows      {bare_s:7.1f} s")
        print(f"   import-grids --city (checked, versioned)           {grids_s:7.1f} s   "
              f"{report.new:,} new, {len(report.crossing)} crossing, {len(report.gaps)} gaps")  # type: ignore[attr-defined]
        print(f"   vs target {TARGET_GRIDS_S:.0f} s: {grids_s / TARGET_GRIDS_S:.2f}x; vs the bare insert: "
              f"{grids_s / bare_s:.1f}x", flush=True)

        codes = list(grids["code"][:MEMBERS])
        register = Path(tmp) / "staff.csv"
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["姓名", "电话", "岗位", "网格编码", "用户名"])
        for i, code in enumerate(codes):
            writer.writerow([f"网格员{i:05d}", f"139{i:08d}", "网格员", code, f"member{i:05d}"])
        register.write_text(buffer.getvalue(), encoding="utf-8")

        def bare_staff() -> None:
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("CREATE TEMP TABLE bare_staff (name text, phone text, role text, unit text, username "
                            "text)")
                rows = list(csv.reader(io.StringIO(register.read_text(encoding="utf-8"))))[1:]
                copy_rows(cur, "bare_staff", ("name", "phone", "role", "unit", "username"), rows)
                raw.rollback()
            finally:
                raw.close()

        _, bare_staff_s = timed(bare_staff)

        def staff() -> object:
            with engine.begin() as conn:
                return import_staff(conn, register, city=city)

        staffed, staff_s = timed(staff)
        print("\n2. the staff register")
        print(f"   reference: COPY the same rows                      {bare_staff_s:7.2f} s")
        print(f"   import-staff (checked, staff, grids, roster, users) {staff_s:6.1f} s   "
              + staffed.lines()[0].split(": ", 1)[1])  # type: ignore[attr-defined]
        print(f"   vs target {TARGET_STAFF_S:.0f} s: {staff_s / TARGET_STAFF_S:.2f}x; vs the bare insert: "
              f"{staff_s / bare_staff_s:.1f}x", flush=True)

        nanjing = city_from_options("nanjing", **BENCH_CITIES["nanjing"])  # type: ignore[arg-type]
        import_osm(engine, ROOT / "data" / "nanjing-xinjiekou.osm", city=nanjing)
        with engine.connect() as conn:
            nanjing_id = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city' AND name = :n"),
                                      {"n": nanjing.name}).scalar_one()
        divide_and_store(engine, nanjing_id)
        with engine.connect() as conn:
            community, households, unit_id = conn.execute(text("""
                SELECT c.code, sum(b.households), c.id FROM admin_units c
                JOIN buildings b ON ST_Intersects(c.geom, ST_PointOnSurface(b.geom))
                WHERE c.city_id = :c AND c.level = 'community' GROUP BY c.code, c.id
                ORDER BY abs(sum(b.households) - 5000) LIMIT 1"""), {"c": nanjing_id}).one()
        reads, runs = [], []
        answer = None
        for _ in range(5):
            with engine.connect() as conn:
                _, seconds = timed(load_inputs, conn, unit_id)
                reads.append(seconds)
                answer, seconds = timed(divide_community, conn, community, author="bench", reason="bench")
                runs.append(seconds)
        assert answer is not None
        summary = answer["summary"]
        read_s, divide_s = statistics.median(reads), statistics.median(runs)
        print(f"\n3. one community of central Nanjing, {community}: {int(households):,} households")
        print(f"   reference: read its buildings and streets          {read_s * 1000:7.0f} ms (median of 5)")
        print(f"   divide --community (dry run)                       {divide_s * 1000:7.0f} ms (median of 5)   "
              f"{summary['grids']} grids, {summary['grids_in_band']} in {summary['band']}")
        print(f"   vs target {TARGET_DIVIDE_S:.0f} s: {divide_s / TARGET_DIVIDE_S:.2f}x; vs the read: "
              f"{divide_s / read_s:.1f}x")
        engine.dispose()


if __name__ == "__main__":
    main()
