"""Import benchmark: all of Liechtenstein (17.7k buildings, ~23k walk edges) into PostGIS.

    make bench            # or: .venv/bin/python bench/import_bench.py [--file F --city C]

Prints wall time and peak memory of a first import and of an idempotent re-import, each in a child process of
its own (so peak RSS is that job's alone), the time of every import step, and ratios against

* the targets of issue 2 (under 60 s and under 2 GB on this 2-core machine), and
* a reference measured in the same run: one bare pyosmium pass over the file with node locations and area
  assembly, the floor that any importer reading this file pays.

It uses ``DATABASE_URL`` when set, else the embedded server, in a database of its own (``gridpatrol_bench``,
dropped and created afresh). Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 60.0
TARGET_MB = 2048.0


def child_import(url: str, path: str, city: str) -> None:
    from benchdb import BENCH_CITIES

    from gis.db.engine import make_engine
    from gis.geo.cities import city_from_options
    from gis.planning.store.importer import import_osm

    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    engine = make_engine(url)
    report = import_osm(engine, path, city=city_from_options(city, **BENCH_CITIES.get(city, {})),
                        progress=lambda step: marks.append((step, time.perf_counter())))
    end = time.perf_counter()
    steps = {name: round((marks[i + 1][1] if i + 1 < len(marks) else end) - t, 2) for i, (name, t) in enumerate(marks)}
    print(json.dumps({
        "seconds": round(end - started, 2),
        "steps": steps,
        "counts": {k: v.as_dict() for k, v in report.counts.items()},
        "households": report.households,
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # this process's own peak RSS
    }))


def child_scan(path: str) -> None:
    import osmium

    started = time.perf_counter()
    n = 0
    for _ in osmium.FileProcessor(path).with_locations().with_areas():
        n += 1
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "objects": n,
                      "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_child(*args: str) -> tuple[dict, float]:
    """Run this file as a child; its JSON output and its own peak RSS in MB (measured by the child itself)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"child {' '.join(args[:1])} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 2)
    return result, result["peak_kb"] / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--file", default=str(ROOT / "data" / "liechtenstein-2024-03-03.osm.pbf"))
    parser.add_argument("--city", default="liechtenstein")
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--scan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_import(*args.child)
        return
    if args.scan:
        child_scan(args.scan)
        return

    from benchdb import bench_database, machine

    print(f"machine: {machine()}")
    print(f"file:    {Path(args.file).name} ({Path(args.file).stat().st_size / 2**20:.1f} MiB)\n")
    with bench_database("gridpatrol_bench") as url:
        scan, scan_mb = run_child("--scan", args.file)
        first, first_mb = run_child("--child", url, args.file, args.city)
        again, again_mb = run_child("--child", url, args.file, args.city)

    c = first["counts"]
    print(f"loaded:  {c['buildings']['total']:,} buildings, {c['key places']['total']:,} key places, "
          f"{c['admin units']['total']:,} admin units, walk {c['walk nodes']['total']:,} nodes / "
          f"{c['walk edges']['total']:,} edges, drive {c['drive nodes']['total']:,} / {c['drive edges']['total']:,}, "
          f"{first['households']:,} households (estimated)\n")
    print(f"{'job':<30}{'wall s':>8}{'peak MB':>9}   {'vs target (60 s, 2 GB)':<26}{'vs osmium pass':>15}")
    print(f"{'reference: bare osmium pass':<30}{scan['wall_s']:>8.1f}{scan_mb:>9.0f}   {'':<26}{'1.0x':>15}")
    for name, result, mb in (("first import", first, first_mb), ("re-import (no changes)", again, again_mb)):
        target = f"{result['wall_s'] / TARGET_S:.2f}x time, {mb / TARGET_MB:.2f}x memory"
        print(f"{name:<30}{result['wall_s']:>8.1f}{mb:>9.0f}   {target:<26}{result['wall_s'] / scan['wall_s']:>14.1f}x")
    print("\nsteps of the first import (s): " + ", ".join(f"{k} {v}" for k, v in first["steps"].items()))
    changed = sum(v["new"] + v["changed"] + v["removed"] for v in again["counts"].values())
    print(f"re-import rows new/changed/removed: {changed} (must be 0)")
    ok = first["wall_s"] < TARGET_S and first_mb < TARGET_MB
    print(f"\ntarget (< {TARGET_S:.0f} s, < {TARGET_MB / 1024:.0f} GB): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
