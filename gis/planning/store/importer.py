"""``gridpatrol import-osm``: read an extract, estimate households, build networks, write it all in one transaction.

The heavy reading and computing happens before the transaction opens, so a bad file never touches the
database; the writes then happen in one transaction, so a failure half-way leaves the database as it was.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from gis.db.engine import check_database, raw_transaction
from gis.geo import network as net
from gis.geo.basemap import read_basemap
from gis.geo.boundaries import close_admin_relations
from gis.geo.cities import City
from gis.geo.gb2260 import match_districts
from gis.geo.households import estimate_households, read_household_counts
from gis.geo.osm import BUILDING_TAGS, read_osm
from gis.planning.division import to_multipolygon
from gis.planning.store import load
from gis.planning.store.basemap import load_basemap
from gis.planning.store.city import save_city

STEPS = ("read OSM file", "estimate households", "close boundaries", "build walk network",
         "build drive network", "read basemap", "write to database")


@dataclass
class ImportReport:
    city: str
    file: str
    bounds_source: str
    counts: dict[str, load.SyncCount] = field(default_factory=dict)
    households_est: int = 0
    households: int = 0
    components: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    import_id: int | None = None
    assumed: list[str] = field(default_factory=list)
    districts: list[str] = field(default_factory=list)
    """How each district got its code (or why it got none)."""
    basemap: dict[str, int] = field(default_factory=dict)
    """The offline basemap's features per layer (``gis.geo.basemap``)."""

    def lines(self) -> list[str]:
        """What the CLI prints: one line per table, what was assumed, the districts' codes, then the warnings."""
        out = [f"imported {self.file} as {self.city} in {self.seconds:.1f} s (bounds from {self.bounds_source})"]
        for table, c in self.counts.items():
            out.append(f"  {table:<18} {c.total:>7,}  (new {c.new:,}, changed {c.changed:,}, removed {c.removed:,})")
        out.append(f"  households         {self.households:>7,}  ({self.households_est:,} estimated from footprints; "
                   "real counts override estimates)")
        for name, pieces in self.components.items():
            out.append(f"  {name} network pieces {pieces:>3}  (1 means every street reaches every other)")
        if self.basemap:
            out.append("  basemap            " + ", ".join(f"{layer} {n:,}" for layer, n in self.basemap.items()))
        out.extend(f"  assumed: {a}" for a in self.assumed)
        out.extend(f"  {d}" for d in self.districts)
        out.extend(f"  warning: {w}" for w in self.warnings)
        return out


def _district_codes(city: City, units: gpd.GeoDataFrame, report: ImportReport) -> dict[str, str]:
    """The GB/T 2260 code of each district the file names, matched under the city; reported either way."""
    names = [str(n) for n in units.loc[units["level"] == "district", "name"] if n]
    division = city.division()
    if division is None:
        if city.code is not None:  # a code newer than the shipped table: only hand mappings apply
            report.districts.append(f"city code {city.code} is not in the shipped GB/T 2260 table; districts keep "
                                    "the codes mapped by hand (gridpatrol city set … --district NAME=CODE)")
            return dict(city.district_codes)
        if names:
            report.districts.append(f"{len(names)} district(s) outside China get synthetic codes (99…) when "
                                    "divided")
        return {}
    match = match_districts(names, division, city.district_codes)
    report.districts.extend(match.lines(city.key))
    if not names:
        report.districts.append("the file names no district (admin_level 6): gridpatrol divide makes one over the "
                                "whole area, with a synthetic code")
    return match.codes


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_osm(
    engine: Engine,
    path: str | Path,
    *,
    city: City,
    households_csv: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import one OSM extract as ``city``; see the module docstring for the transaction rules."""
    step = progress or (lambda _name: None)
    started = time.perf_counter()
    check_database(engine)  # fail fast, before minutes of reading
    path = Path(path)
    counts_frame = read_household_counts(households_csv) if households_csv else None

    step(STEPS[0])
    extract = read_osm(path)
    report = ImportReport(city=city.name_en, file=path.name, bounds_source=extract.bounds_source,
                          assumed=city.assumptions())

    step(STEPS[1])
    estimate = estimate_households(extract.buildings, extract.landuse, default_levels=city.default_storeys,
                                   m2_per_household=city.m2_per_household)

    step(STEPS[2])
    closed = close_admin_relations(extract.admin_relations, extract.boundary_lines, extract.labels,
                                   extent=extract.bounds)
    complete = extract.admin_areas.copy()
    complete["geometry"] = complete.geometry.intersection(extract.bounds)
    units = pd.concat([complete, closed.areas], ignore_index=True)
    units = gpd.GeoDataFrame(units, geometry="geometry", crs=extract.buildings.crs)
    # clipping can leave lines where a unit only touches the extent: keep polygonal parts, drop empty units
    units = units.assign(geometry=units.geometry.map(to_multipolygon))
    units = units[~units.geometry.is_empty].reset_index(drop=True)
    if closed.unresolved:
        names = [f"{rel.name or rel.osm_id} (admin_level {rel.admin_level})" for rel in closed.unresolved]
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        report.warnings.append(f"{len(names)} boundar{'y is' if len(names) == 1 else 'ies are'} only partly in "
                               f"the file and could not be closed, so not imported: {shown}")

    district_codes = _district_codes(city, units, report)

    frames: dict[str, tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]] = {}
    for i, network_type in enumerate(net.NETWORK_TYPES):
        step(STEPS[3 + i])
        graph = net.graph_from_extract(extract, network_type)
        report.components[network_type] = net.component_count(graph)
        frames[network_type] = net.graph_to_frames(graph)

    step(STEPS[5])
    basemap = read_basemap(path, bounds=extract.bounds)

    step(STEPS[6])
    sha = file_sha256(path)
    with raw_transaction(engine) as cur:
        (extent,) = load.ewkb_hex([to_multipolygon(extract.bounds)])
        city_id = save_city(cur, city, extent_ewkb=extent)
        report.counts["admin units"] = load.sync_admin_units(cur, units, city_id=city_id, codes=district_codes)
        load.record_unit_versions(cur, city_id, change="import", author="gridpatrol", reason=f"OSM {path.name}")
        tag_columns = {t.replace(":", "_"): t for t in BUILDING_TAGS}
        report.counts["buildings"] = load.sync_buildings(cur, extract.buildings, estimate, city_id=city_id,
                                                         tag_columns=tag_columns)
        if counts_frame is not None:
            unmatched = load.apply_household_counts(cur, counts_frame, city_id=city_id)
            if unmatched:
                report.warnings.append(f"{unmatched} of {len(counts_frame)} household counts in "
                                       f"{Path(str(households_csv)).name} match no building of this file")
        report.counts["key places"] = load.sync_key_places(cur, extract.places, city_id=city_id)
        for network_type, (nodes, edges) in frames.items():
            node_count, edge_count = load.sync_network(cur, nodes, edges, city_id=city_id,
                                                       network=network_type)
            report.counts[f"{network_type} nodes"] = node_count
            report.counts[f"{network_type} edges"] = edge_count
        report.basemap = load_basemap(cur, basemap, city_id=city_id)
        cur.execute("SELECT coalesce(sum(households_est), 0), coalesce(sum(households), 0) "
                    "FROM buildings WHERE city_id = %s", (city_id,))
        sums = cur.fetchone()
        assert sums is not None
        report.households_est, report.households = int(sums[0]), int(sums[1])
        summary: dict[str, Any] = {k: v.as_dict() for k, v in report.counts.items()}
        summary["households"] = report.households
        report.import_id = load.record_import(cur, city_id=city_id, file_name=path.name, sha256=sha,
                                              bounds_source=extract.bounds_source, bounds=extract.bounds,
                                              counts=summary)
    report.seconds = time.perf_counter() - started
    return report


def already_imported(conn: Connection, city_name: str, sha256: str) -> bool:
    """Whether the file with this SHA-256 has been imported for the city named ``city_name``."""
    return conn.exec_driver_sql(
        "SELECT 1 FROM imports i JOIN admin_units c ON c.id = i.city_id "
        "WHERE c.name = %(name)s AND i.file_sha256 = %(sha)s LIMIT 1", {"name": city_name, "sha": sha256},
    ).first() is not None
