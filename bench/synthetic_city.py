"""A Siping-scale synthetic city for benchmarks: 7,181 grids (Siping's count, DOMAIN.md), no buildings.

The grids are 300 m squares on a lattice of 43 columns × 167 rows around Siping's coordinates (124.35° E,
43.17° N); communities are blocks of 3 × 3 grids, streets blocks of 9 × 9, in one district with the synthetic code
999001. Nothing here is real geography: it exists to load the service the way a real city of that size would.
"""

from __future__ import annotations

import math
from typing import Any

import shapely
from shapely.geometry import box
from sqlalchemy.engine import Engine

from gis.planning.division import to_multipolygon
from gis.planning.store.load import ewkb_hex

NAME = "四平 (synthetic)"
COLUMNS, ROWS = 43, 167  # 43 × 167 = 7,181
CELL_M = 300.0
WEST, NORTH = 124.20, 43.40
DISTRICT = "999001"


def cell_size() -> tuple[float, float]:
    """The lattice step in degrees (lon, lat)."""
    dlat = CELL_M / 111_320
    return CELL_M / (111_320 * math.cos(math.radians(NORTH))), dlat


def bounds() -> tuple[float, float, float, float]:
    dx, dy = cell_size()
    return WEST, NORTH - ROWS * dy, WEST + COLUMNS * dx, NORTH


def build(engine: Engine, index: int = 0) -> int:
    """Create the synthetic city (if absent); returns its id. ``index`` > 0: another one of the same size east of
    the previous (a synthetic province is seven of them side by side), with district code 999001 + index."""
    dx, dy = cell_size()
    name = NAME if index == 0 else f"{NAME} {index + 1}"
    district = f"{int(DISTRICT) + index}"
    west = WEST + index * (COLUMNS + 1) * dx
    with engine.begin() as conn:
        found = conn.exec_driver_sql("SELECT id FROM admin_units WHERE level = 'city' AND name = %(n)s",
                                     {"n": name}).scalar()
        if found is not None:
            return int(found)
        cells = {(c, r): box(west + c * dx, NORTH - (r + 1) * dy, west + (c + 1) * dx, NORTH - r * dy)
                 for c in range(COLUMNS) for r in range(ROWS)}
        south = NORTH - ROWS * dy
        outline = box(west, south, west + COLUMNS * dx, NORTH)

        def unit(level: str, code: str | None, name: str, geom: Any, parent: int | None, city: int | None) -> int:
            (wkb,) = ewkb_hex([to_multipolygon(geom)])
            return int(conn.exec_driver_sql(
                "INSERT INTO admin_units (city_id, parent_id, level, code, name, source, geom) "
                "VALUES (%(c)s, %(p)s, %(l)s, %(code)s, %(n)s, 'synthetic', %(g)s::geometry) RETURNING id",
                {"c": city, "p": parent, "l": level, "code": code, "n": name, "g": wkb}).scalar_one())

        city_id = unit("city", None, name, outline, None, None)
        district_id = unit("district", district, "合成区 synthetic district", outline, city_id, city_id)
        street_seq = 0
        grid_rows = []
        for sc in range(0, COLUMNS, 9):
            for sr in range(0, ROWS, 9):
                street_seq += 1
                s_cells = [(c, r) for c in range(sc, min(sc + 9, COLUMNS)) for r in range(sr, min(sr + 9, ROWS))]
                street_code = f"{district}{street_seq:03d}"
                street_id = unit("street", street_code, f"街道 {street_seq:03d}",
                                 shapely.union_all([cells[k] for k in s_cells]), district_id, city_id)
                community_seq = 0
                for cc in range(sc, min(sc + 9, COLUMNS), 3):
                    for cr in range(sr, min(sr + 9, ROWS), 3):
                        community_seq += 1
                        c_cells = sorted(((c, r) for c in range(cc, min(cc + 3, COLUMNS))
                                          for r in range(cr, min(cr + 3, ROWS))), key=lambda k: (k[1], k[0]))
                        community_code = f"{street_code}{community_seq:03d}"
                        community_id = unit("community", community_code, f"社区 {community_code[-6:]}",
                                            shapely.union_all([cells[k] for k in c_cells]), street_id, city_id)
                        for seq, key in enumerate(c_cells, start=1):  # north → south, west → east
                            grid_rows.append((f"{community_code}{seq:03d}", community_id, cells[key]))
        geoms = ewkb_hex([to_multipolygon(g) for *_, g in grid_rows])
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.executemany("INSERT INTO grids (code, name, community_id, geom, source) "
                        "VALUES (%s, %s, %s, %s::geometry, 'synthetic')",
                        [(code, f"网格 {code[-9:]}", cid, g)
                         for (code, cid, _), g in zip(grid_rows, geoms, strict=True)])
        cur.execute("INSERT INTO grid_versions (grid_id, code, version, community_id, geom, change, author, reason) "
                    "SELECT id, code, 1, community_id, geom, 'synthetic', 'bench', 'synthetic city' FROM grids "
                    "WHERE source = 'synthetic' AND code LIKE %s", (district + "%",))
        cur.execute("ANALYZE grids")
        cur.execute("ANALYZE admin_units")
    return city_id


def load_cases(engine: Engine, batches: list[tuple[int, int, bool]], categories: list[str], *,
               seed: int) -> None:
    """Synthetic cases at random points of the city, loaded as a city's historic file would be (set-based): each
    batch is ``(count, days, closed)``, reported over the last ``days`` days and, when closed, closed 0.5 to 120
    hours later (never after now). Sources: mostly grid members, then the hotline, the residents' app, video."""
    import io
    import time

    import numpy as np
    import pandas as pd

    from gis.dispatch.store.bulk import bulk_intake, read_events_file

    rng = np.random.default_rng(seed)
    west, south, east, north = bounds()
    now = pd.Timestamp.now(tz="UTC").floor("s")
    for n, days, closed in batches:
        reported = now - pd.to_timedelta(rng.integers(60, days * 86400, n), "s")
        data = pd.DataFrame({"category": rng.choice(categories, n), "lon": west + rng.random(n) * (east - west),
                             "lat": south + rng.random(n) * (north - south), "reported_at": reported,
                             "source": rng.choice(["grid_member", "hotline", "resident_app", "video"], n,
                                                  p=[0.85, 0.08, 0.05, 0.02])})
        if closed:
            closed_at = reported + pd.to_timedelta(rng.integers(1800, 120 * 3600, n), "s")
            data["closed_at"] = closed_at.where(closed_at < now, now)
        buffer = io.BytesIO()
        data.to_csv(buffer, index=False)
        name = f"{'closed' if closed else 'open'}-{n}.csv"
        started = time.perf_counter()
        report = bulk_intake(engine, read_events_file(buffer.getvalue(), name), source_name=name)
        print(f"   loaded {report.stored:,} {'closed' if closed else 'open'} cases in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
