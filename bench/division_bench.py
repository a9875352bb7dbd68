"""Division benchmark: gridpatrol's automatic division against PySAL spopt's max-p regionalization.

    make bench          # or: .venv/bin/python bench/division_bench.py [--liechtenstein]

On the same data (central Nanjing: buildings with estimated households, the drive network, the three districts)
and in one run, it measures for each method: grids (regions), the share holding 300–500 households (regions of a
single building above the band excepted, as the target says), mean Polsby–Popper compactness (4πA/P²), the
share of regions that are one contiguous piece, how many street blocks a region border cuts through, and run time.

The references are max-p (spopt ``MaxPHeuristic``, floor 300 households, rook contiguity, seeded) on
  a) the street blocks gridpatrol itself starts from, and
  b) one Voronoi cell per building (cells clipped to the extent), which ignores streets.
Target (issue 3): ≥ 95 % of grids in the band, none crossing a street except where a block is split, under 5 s.
With ``--liechtenstein`` it also times the division of all of Liechtenstein (target under 60 s). Not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis.geo.boundaries import close_admin_relations  # noqa: E402
from gis.geo.crs import metric_crs_for  # noqa: E402
from gis.geo.households import estimate_households  # noqa: E402
from gis.geo.network import graph_from_extract, graph_to_frames  # noqa: E402
from gis.geo.osm import read_osm  # noqa: E402
from gis.planning.division import GRID_BAND, blocks_from_streets, divide_area  # noqa: E402

SEED = 20261122


def load(path: Path, default_levels: int = 6):  # type: ignore[no-untyped-def]
    extract = read_osm(path)
    estimate = estimate_households(extract.buildings, extract.landuse, default_levels=default_levels)
    buildings = extract.buildings.assign(households=estimate["households_est"].to_numpy())
    _, drive = graph_to_frames(graph_from_extract(extract, "drive"))
    districts = close_admin_relations(extract.admin_relations, extract.boundary_lines, extract.labels,
                                      extent=extract.bounds).areas
    districts = districts[districts["level"] == "district"]
    return extract, buildings, drive.geometry, districts


def measure(name: str, regions: gpd.GeoDataFrame, seconds: float, points: gpd.GeoDataFrame,
            single: pd.Series) -> dict:
    """regions: metric CRS, with households; points: building points with their street ``block``;
    single: the region is one building above the band."""
    eligible = ~single.to_numpy()
    in_band = regions["households"].between(GRID_BAND.low, GRID_BAND.high).to_numpy()
    area, perimeter = regions.geometry.area, regions.geometry.length
    polsby = (4 * math.pi * area / perimeter**2).mean()
    contiguous = (regions.geom_type == "Polygon").mean()
    # A street block whose buildings end up in more than one region has a region border running through it,
    # i.e. across a street's block rather than along its streets.
    hit = gpd.sjoin(points, regions[["geometry"]].reset_index(drop=True), predicate="within", how="left")
    hit = hit[~hit.index.duplicated()]
    cut = int((hit.groupby("block")["index_right"].nunique() > 1).sum())
    return {
        "method": name, "regions": len(regions),
        "in band": f"{in_band[eligible].mean():.1%}",
        "Polsby-Popper": round(float(polsby), 3),
        "contiguous": f"{contiguous:.0%}",
        "blocks cut": cut,
        "seconds": round(seconds, 2),
    }


def gridpatrol_division(buildings, streets, districts, metric):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    divisions = [divide_area(geom, buildings, streets, crs=metric) for geom in districts.geometry]
    seconds = time.perf_counter() - started
    grids = pd.concat([d.grids for d in divisions], ignore_index=True).to_crs(metric)
    single = grids["note"].str.startswith("one building")
    splits = sum(d.split_blocks for d in divisions)
    return grids, seconds, single, splits


def maxp(units: gpd.GeoDataFrame, households: np.ndarray, singles_of: callable) -> tuple:  # type: ignore[valid-type]
    from libpysal.weights import Rook
    from spopt.region import MaxPHeuristic

    frame = units.assign(households=households, cx=units.centroid.x, cy=units.centroid.y).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Rook.from_dataframe(frame, use_index=False, silence_warnings=True)
        np.random.seed(SEED)
        started = time.perf_counter()
        model = MaxPHeuristic(frame, w, ["cx", "cy"], "households", GRID_BAND.low, top_n=2)
        model.solve()
        seconds = time.perf_counter() - started
    frame["region"] = model.labels_
    regions = frame.dissolve(by="region", aggfunc={"households": "sum"})
    regions = regions.reset_index()
    return regions, seconds, singles_of(frame, regions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--liechtenstein", action="store_true", help="also time the division of Liechtenstein")
    args = parser.parse_args()

    extract, buildings, streets, districts = load(ROOT / "data" / "nanjing-xinjiekou.osm")
    metric = metric_crs_for(buildings)
    streets_m = list(gpd.GeoSeries(streets, crs=4326).to_crs(metric))
    rows = []

    # the street blocks (drive streets and district lines), and each building's block
    area_m = gpd.GeoSeries([extract.bounds], crs=4326).to_crs(metric).iloc[0]
    district_lines = list(gpd.GeoSeries(districts.boundary, crs=4326).to_crs(metric))
    blocks = gpd.GeoDataFrame(geometry=blocks_from_streets(streets_m, area_m, district_lines), crs=metric)
    points = gpd.GeoDataFrame(geometry=buildings.representative_point().to_crs(metric).values, crs=metric)
    points["households"] = buildings["households"].to_numpy()
    joined = gpd.sjoin_nearest(points, blocks, how="left")
    joined = joined[~joined.index.duplicated()]
    points["block"] = joined["index_right"].to_numpy()
    per_block = joined.groupby("index_right")["households"].sum().reindex(blocks.index, fill_value=0).to_numpy()
    max_building = joined.groupby("index_right")["households"].max().reindex(blocks.index, fill_value=0)
    counts = joined.groupby("index_right").size().reindex(blocks.index, fill_value=0)
    must_split = int(((per_block > GRID_BAND.high) & (counts.to_numpy() > 1)).sum())

    grids, seconds, single, splits = gridpatrol_division(buildings, streets, districts, metric)
    rows.append(measure("gridpatrol divide", grids, seconds, points, single))

    def block_singles(frame, regions):  # type: ignore[no-untyped-def]
        # a region is "one building above the band" if it is one block whose largest building exceeds the band
        counts = frame.groupby("region").size()
        return pd.Series([counts[r] == 1 and max_building.iloc[frame.index[frame["region"] == r][0]] > GRID_BAND.high
                          for r in regions["region"]])

    regions, seconds, single = maxp(blocks, per_block, block_singles)
    rows.append(measure("max-p on street blocks", regions, seconds, points, single))

    # max-p on one Voronoi cell per building
    cells = shapely.voronoi_polygons(shapely.MultiPoint(list(points.geometry)), extend_to=area_m)
    cell_list = [c.intersection(area_m) for c in cells.geoms]
    tree = shapely.STRtree(cell_list)
    cell_idx, point_idx = tree.query(points.geometry.values, predicate="within")
    order = np.empty(len(points), dtype=int)
    order[cell_idx] = point_idx
    building_cells = gpd.GeoDataFrame(geometry=[cell_list[i] for i in order], crs=metric)
    hh = points["households"].to_numpy()

    def cell_singles(frame, regions):  # type: ignore[no-untyped-def]
        counts = frame.groupby("region").size()
        return pd.Series([counts[r] == 1 and regions.loc[i, "households"] > GRID_BAND.high
                          for i, r in enumerate(regions["region"])])

    regions, seconds, single = maxp(building_cells, hh, cell_singles)
    rows.append(measure("max-p on building cells", regions, seconds, points, single))

    table = pd.DataFrame(rows).set_index("method")
    ours = table.loc["gridpatrol divide"]
    print(f"central Nanjing: {len(buildings):,} buildings, {int(buildings['households'].sum()):,} households "
          f"(estimated), {len(blocks)} street blocks, {must_split} of them above the band on their own "
          f"(the only ones a grid border may cut; gridpatrol split {splits})\n")
    print(table.to_string())
    print("\nratios, gridpatrol vs each reference (time: reference seconds / gridpatrol seconds):")
    for method, row in table.drop(index="gridpatrol divide").iterrows():
        print(f"  {method}: {row['seconds'] / ours['seconds']:.0f}x faster; in band {ours['in band']} vs "
              f"{row['in band']}; Polsby-Popper {ours['Polsby-Popper']} vs {row['Polsby-Popper']}")
    print(f"\ntarget: >= 95% in band ({ours['in band']}), blocks cut only where needed ({ours['blocks cut']} of "
          f"{must_split} allowed), under 5 s ({ours['seconds']} s)")

    if args.liechtenstein:
        extract, buildings, streets, _ = load(ROOT / "data" / "liechtenstein-2024-03-03.osm.pbf", default_levels=2)
        started = time.perf_counter()
        division = divide_area(extract.bounds, buildings, streets)
        seconds = time.perf_counter() - started
        grids = division.grids
        eligible = ~grids["note"].str.startswith("one building")
        print(f"\nLiechtenstein: {len(buildings):,} buildings divided into {len(grids)} grids, "
              f"{len(division.communities)} communities in {seconds:.1f} s (target < 60 s: "
              f"{seconds / 60:.2f}x); {grids['in_band'][eligible].mean():.1%} of grids in the band")


if __name__ == "__main__":
    main()
