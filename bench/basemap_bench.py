"""Offline basemap benchmark (issue 22): the basemap build for Liechtenstein, and its tiles.

    make bench      # or: .venv/bin/python bench/basemap_bench.py [--file F --city C] [--tiles 40]

1. The build, as ``gridpatrol basemap build`` runs it (read the file with pyosmium, store the features, merge the
   named roads), in a child process of its own so that its peak RSS is the build's alone: wall time and peak
   memory against the targets (under 60 s and 2 GB on this 2-core machine), and against a reference measured in
   the same run, one bare pyosmium pass over the file with node locations and area assembly (the floor of any
   reader of this file). The city is imported first (``import-osm``, which builds the basemap too; not timed).
2. Tiles at zooms 10, 13 and 16 at random places of the city, 512-pixel as MapLibre GL asks for them: the time
   PostGIS spends making each (median and p99) and its size, against the bare ``ST_AsMVT`` of every basemap
   feature in the same tile (no per-zoom selection, no simplification) in the same run.

It uses ``DATABASE_URL`` when set, else the embedded server, in a database of its own. Not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from import_bench import TARGET_MB, TARGET_S, run_child  # noqa: E402

BARE = """SELECT ST_AsMVT(q, 'all', 4096, 'g') FROM (
    SELECT kind, name, ST_AsMVTGeom(geom, ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) g
    FROM basemap_features WHERE geom && ST_TileEnvelope(%(z)s, %(x)s, %(y)s)) q WHERE g IS NOT NULL"""
"""The bare tile: every basemap feature in it, one layer, no per-zoom choice, no simplification."""


def child_build(url: str, path: str, city: str) -> None:
    from gis.db.engine import make_engine
    from gis.planning.store.basemap import build_basemap

    engine = make_engine(url)
    report = build_basemap(engine, path, city=city)
    print(json.dumps({"seconds": round(report.seconds, 2), "counts": report.counts,
                      "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", default=str(ROOT / "data" / "liechtenstein-2024-03-03.osm.pbf"))
    parser.add_argument("--city", default="liechtenstein")
    parser.add_argument("--tiles", type=int, default=40, help="tiles per zoom")
    parser.add_argument("--build", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        child_build(*args.build)
        return

    from benchdb import bench_database, machine

    from gis.db.engine import make_engine
    from gis.geo.tiles import tile_of
    from gis.planning.store.basemap import basemap_tile

    print(f"machine: {machine()}")
    print(f"file:    {Path(args.file).name} ({Path(args.file).stat().st_size / 2**20:.1f} MiB)\n")
    with bench_database("gridpatrol_basemap_bench") as url:
        run_child("--child", url, args.file, args.city)  # the import (it builds the basemap too)
        scan, scan_mb = run_child("--scan", args.file)
        started = time.perf_counter()
        import subprocess

        done = subprocess.run([sys.executable, __file__, "--build", url, args.file, args.city], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"basemap build failed:\n{done.stderr}")
        build = json.loads(done.stdout.strip().splitlines()[-1])
        build_mb = build["peak_kb"] / 1024
        print("stored:  " + ", ".join(f"{layer} {n:,}" for layer, n in build["counts"].items()) + "\n")
        print(f"{'job':<32}{'wall s':>8}{'peak MB':>9}   {'vs target (60 s, 2 GB)':<26}{'vs osmium pass':>15}")
        print(f"{'reference: bare osmium pass':<32}{scan['wall_s']:>8.1f}{scan_mb:>9.0f}   {'':<26}{'1.0x':>15}")
        target = f"{wall / TARGET_S:.2f}x time, {build_mb / TARGET_MB:.2f}x memory"
        print(f"{'gridpatrol basemap build':<32}{wall:>8.1f}{build_mb:>9.0f}   {target:<26}"
              f"{wall / scan['wall_s']:>14.1f}x")
        ok = wall < TARGET_S and build_mb < TARGET_MB
        print(f"target (< {TARGET_S:.0f} s, < {TARGET_MB / 1024:.0f} GB): {'met' if ok else 'NOT met'}\n")

        engine = make_engine(url)
        with engine.connect() as conn:
            west, south, east, north = conn.exec_driver_sql(
                "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT ST_Transform(ST_SetSRID("
                "ST_Extent(geom)::geometry, 3857), 4326) b FROM basemap_features) e").one()
        raw = engine.raw_connection()
        cur = raw.cursor()
        cur.execute("SET jit = off")
        rng = random.Random(22)
        print(f"{'z':>3} {'tiles':>6} {'kB':>6} {'made med ms':>12} {'p99':>6} {'bare kB':>8} {'bare med':>9} "
              f"{'p99':>6} {'ratio':>6}")
        for z in (10, 13, 16):
            chosen = [(z, *tile_of(rng.uniform(west, east), rng.uniform(south, north), z)) for _ in range(args.tiles)]
            made, sizes, bare, bare_sizes = [], [], [], []
            with engine.connect() as conn:
                for z_, x, y in chosen:
                    t = time.perf_counter()
                    with conn.begin():
                        body = basemap_tile(conn, z_, x, y, tile_size=512)
                    made.append(time.perf_counter() - t)
                    sizes.append(len(body))
            for z_, x, y in chosen:
                t = time.perf_counter()
                cur.execute(BARE, {"z": z_, "x": x, "y": y})
                out = cur.fetchone()
                bare.append(time.perf_counter() - t)
                bare_sizes.append(len(bytes(out[0] or b"")) if out else 0)
            med, p99 = statistics.median(made), float(np.percentile(made, 99))
            bmed, bp99 = statistics.median(bare), float(np.percentile(bare, 99))
            print(f"{z:>3} {len(chosen):>6} {statistics.mean(sizes) / 1024:>6.1f} {med * 1000:>12.1f} "
                  f"{p99 * 1000:>6.1f} {statistics.mean(bare_sizes) / 1024:>8.1f} {bmed * 1000:>9.1f} "
                  f"{bp99 * 1000:>6.1f} {med / max(bmed, 1e-6):>6.2f}", flush=True)
        raw.close()
        engine.dispose()


if __name__ == "__main__":
    main()
