"""The city model: ``import-osm``, ``basemap build``, ``import-units``, ``divide``, ``export-grids``,
``import-grids``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

from api.settings import Settings
from gis.db.engine import reading, writing
from gis.errors import InputError
from scripts.cli.base import StepBar, Subparsers, engine_for
from scripts.cli.cities import add_city_options, city_options


def run_import(settings: Settings, path: Path, city_name: str, households: Path | None,
               options: dict[str, Any] | None = None) -> int:
    """Import ``path`` as the city named ``city_name``: a stored city with its settings, or a new one made from
    ``options`` (those given change a stored city's settings too)."""
    from gis.planning.store.city import resolve_city
    from gis.planning.store.importer import STEPS, import_osm

    if not path.exists():
        raise InputError(f"{path}: no such file")
    with engine_for(settings) as engine:
        city = reading(engine, resolve_city, city_name, **(options or {}))
        bar = StepBar(len(STEPS), desc=f"importing {path.name}")
        ok = False
        try:
            report = import_osm(engine, path, city=city, households_csv=households, progress=bar)
            ok = True
        finally:
            bar.close(ok)
    print("\n".join(report.lines()))
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    return run_import(settings, Path(args.file), args.city, Path(args.households) if args.households else None,
                      city_options(args))


def run_divide(settings: Settings, city_name: str, *, district: str | None = None, grid_band: str = "300-500",
               community_band: str = "3000-6000", dry_run: bool = False) -> int:
    from gis.planning.division import parse_band
    from gis.planning.store.city import find_city
    from gis.planning.store.divisions import divide_and_store

    bands = {"grid_band": parse_band(grid_band, what="--grid-band"),
             "community_band": parse_band(community_band, what="--community-band")}
    with engine_for(settings) as engine:
        with engine.connect() as conn:
            city = find_city(conn, city_name)
            districts = conn.execute(text("SELECT count(*) FROM admin_units WHERE city_id = :c AND level = 'district'"),
                                     {"c": city.id}).scalar() or 1
        bar = StepBar(1 if district else int(districts), desc=f"dividing {city.name_en or city.name}")
        ok = False
        try:
            summaries = divide_and_store(engine, city.id, district=district, dry_run=dry_run, progress=bar, **bands)
            ok = True
        finally:
            bar.close(ok)
    for summary in summaries:
        print("\n".join(summary.lines()))
    grids = sum(s.grids for s in summaries)
    in_band = sum(s.grids_in_band for s in summaries)
    eligible = grids - sum(s.single_building_grids for s in summaries)
    print(f"{'proposed (not stored, --dry-run)' if dry_run else 'stored'}: {grids} grids, {in_band} of {eligible} "
          f"in the band ({in_band / max(eligible, 1):.1%}; single buildings above it excepted)")
    return 0


def cmd_divide(args: argparse.Namespace, settings: Settings) -> int:
    if args.community:
        return divide_community(settings, args)
    if args.street:
        return divide_street(settings, args)
    if not args.city:
        raise InputError("gridpatrol divide: give --city (with --district to divide one district), --street or "
                         "--community")
    return run_divide(settings, args.city, district=args.district, grid_band=args.grid_band,
                      community_band=args.community_band, dry_run=args.dry_run)


def divide_street(settings: Settings, args: argparse.Namespace) -> int:
    """Communities and their grids for one street inside its boundary; the street stays."""
    from gis.planning.division import parse_band
    from gis.planning.store.divisions import divide_street as run

    with engine_for(settings) as engine, engine.begin() as conn:
        summary = run(conn, args.street, grid_band=parse_band(args.grid_band, what="--grid-band"),
                      community_band=parse_band(args.community_band, what="--community-band"),
                      dry_run=args.dry_run)
    print("\n".join(summary.lines()))
    print("proposed only (--dry-run): nothing stored" if args.dry_run else
          "stored: the street's communities and grids (generated ones before are retired)")
    return 0


def divide_community(settings: Settings, args: argparse.Namespace) -> int:
    """Grids for one community inside its official boundary; its street and community stay as they are."""
    from gis.planning.division import parse_band
    from gis.planning.store.grid_register import divide_community as run

    with engine_for(settings) as engine, engine.begin() as conn:
        answer = run(conn, args.community, author=args.author or os.environ.get("USER", "planner"),
                     reason=args.reason or "automatic division of the community",
                     grid_band=parse_band(args.grid_band, what="--grid-band"), dry_run=args.dry_run)
    s = answer["summary"]
    print(f"{s['name']} ({s['community']}): {s['grids']} grids proposed, {s['grids_in_band']} in {s['band']} "
          f"households, {s['households']:,} households; it has {s['current_grids']} grid(s) now ({s['seconds']} s)")
    for f in answer["proposal"]["features"]:
        p = f["properties"]
        print(f"  {p['n']:>3}  {round(p['households']):>6,} households  {p['buildings']:>4} buildings  "
              f"{'' if p['in_band'] else p['note']}")
    print("stored: the community's grids are replaced (new codes, versions)" if s["stored"] else
          "proposed only (--dry-run): nothing stored")
    return 0


def cmd_export_grids(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.exchange import format_for, grids_to_bytes
    from gis.planning.store.city import find_city
    from gis.planning.store.exchange import grids_frame

    fmt = format_for(args.out)
    with engine_for(settings) as engine, engine.connect() as conn:
        frame = grids_frame(conn, find_city(conn, args.city).id)
    if frame.empty:
        raise InputError(f"{args.city} has no grids yet: run gridpatrol divide --city {args.city}")
    Path(args.out).write_bytes(grids_to_bytes(frame, fmt))
    print(f"wrote {len(frame)} grids to {args.out} ({fmt})")
    return 0


def cmd_import_grids(args: argparse.Namespace, settings: Settings) -> int:
    if args.city:
        return import_city_grids(args, settings)
    from gis.planning.store.exchange import import_grids

    with engine_for(settings) as engine:
        result = writing(engine, import_grids, args.file, community_code=args.community, author=args.author,
                              reason=args.reason, dry_run=args.dry_run)
    print(f"{'would change' if args.dry_run else 'changed'}: {len(result.grids)} grid(s) updated, "
          f"{len(result.created)} new ({', '.join(result.created) or '-'}), {len(result.retired)} retired "
          f"({', '.join(result.retired) or '-'}); {result.buildings_moved} buildings and "
          f"{result.households_moved} households change grid")
    for warning in result.warnings:
        print(f"  warning: {warning}")
    return 0


def import_city_grids(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.division import parse_band
    from gis.planning.store.grid_register import STEPS
    from gis.planning.store.grid_register import import_city_grids as run

    band = parse_band(args.band, what="--band")
    with engine_for(settings) as engine, engine.begin() as conn:
        bar = StepBar(len(STEPS), desc=f"grids of {args.city}")
        ok = False
        try:
            report = run(conn, args.file, city=args.city, author=args.author, reason=args.reason, crs=args.crs,
                         band=band, repair=args.repair, dry_run=args.dry_run, progress=bar)
            ok = True
        finally:
            bar.close(ok)
    print("\n".join(report.lines()))
    write_problems(args.problems, [("gaps", report.gaps), ("overlaps", report.overlaps)])
    return 0


def write_problems(path: str | None, kinds: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """The gaps and overlaps a check found, as GeoJSON for QGIS (``--problems``)."""
    if not path:
        return
    features = [{"type": "Feature", "geometry": f["geometry"],
                 "properties": {"problem": kind, **{k: (",".join(v) if isinstance(v, list) else v)
                                                    for k, v in f.items() if k != "geometry"}}}
                for kind, found in kinds for f in found]
    Path(path).write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                          encoding="utf-8")
    print(f"wrote {len(features)} gap(s) and overlap(s) to {path} (open it in QGIS beside the file)")


def cmd_import_units(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.store.official import import_units

    with engine_for(settings) as engine, engine.begin() as conn:
        report = import_units(conn, args.file, city=args.city, crs=args.crs, codes=args.codes, snap_m=args.snap_m,
                              author=args.author, reason=args.reason, dry_run=args.dry_run,
                              replace_generated=args.replace_generated)
    print("\n".join(report.lines()))
    write_problems(args.problems, [("gaps", report.gaps), ("overlaps", report.overlaps)])
    return 0


def cmd_import_households(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.store.households import apply_households

    with engine_for(settings) as engine, engine.begin() as conn:
        report = apply_households(conn, args.file, city=args.city, crs=args.crs, radius_m=args.radius_m)
    print("\n".join(report.lines()))
    return 0


def cmd_import_buildings(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.store.households import import_buildings

    with engine_for(settings) as engine, engine.begin() as conn:
        report = import_buildings(conn, args.file, city=args.city, crs=args.crs)
    print("\n".join(report.lines()))
    return 0


def cmd_basemap(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.store.basemap import build_basemap

    path = Path(args.file)
    if not path.exists():
        raise InputError(f"{path}: no such file; give the city's OSM extract (the file it was imported from)")
    with engine_for(settings) as engine:
        bar = StepBar(1, desc=f"basemap from {path.name}")
        ok = False
        try:
            report = build_basemap(engine, path, city=args.city, progress=bar)
            ok = True
        finally:
            bar.close(ok)
    print("\n".join(report.lines()))
    return 0


def register(sub: Subparsers) -> None:
    imp = sub.add_parser("import-osm", help="import an OSM extract (.osm, .osm.gz, .osm.bz2, .osm.pbf)")
    imp.add_argument("file", help="the OSM file")
    imp.add_argument("--city", required=True,
                     help="which city it is: a stored city (gridpatrol city list), or a new one made from the "
                          "options below")
    imp.add_argument("--households", metavar="CSV",
                     help="real household counts: osm_id (way/123),households[,residents]")
    add_city_options(imp)
    imp.set_defaults(func=cmd_import)

    bm = sub.add_parser("basemap", help="the offline basemap under every map: rebuild a city's from its OSM extract "
                                        "(import-osm builds it too)")
    bm_verbs = bm.add_subparsers(dest="verb", required=True)
    bmb = bm_verbs.add_parser("build", help="read roads, water, green areas, land use and places from an OSM file")
    bmb.add_argument("file", help="the OSM file (.osm, .osm.gz, .osm.bz2, .osm.pbf)")
    bmb.add_argument("--city", required=True, help="an imported city: the basemap is cut to its extent")
    bmb.set_defaults(func=cmd_basemap)

    div = sub.add_parser("divide", help="propose and store streets → communities → grids for a city, or the grids "
                                        "of one community")
    div.add_argument("--city", help="an imported city")
    div.add_argument("--community", help="only this community's grids (its 12-digit code); its boundary stays")
    div.add_argument("--street", help="only this street's communities and grids (its 9-digit code); it stays")
    div.add_argument("--author", help="(--community) who makes the change (default: $USER)")
    div.add_argument("--reason", help="(--community) why")
    div.add_argument("--district", help="only this district (name or code)")
    div.add_argument("--grid-band", default="300-500", help="households per grid (default 300-500)")
    div.add_argument("--community-band", default="3000-6000", help="households per community (default 3000-6000)")
    div.add_argument("--dry-run", action="store_true", help="report the proposal, store nothing")
    div.set_defaults(func=cmd_divide)

    exp = sub.add_parser("export-grids", help="write a city's grids to .geojson, .gpkg or .shp")
    exp.add_argument("--city", required=True)
    exp.add_argument("--out", required=True, help="the file; its suffix picks the format")
    exp.set_defaults(func=cmd_export_grids)

    imu = sub.add_parser("import-units", help="import a city's official streets and communities (12-digit codes) "
                                              "from .geojson, .gpkg, .shp or .zip; checked, versioned")
    imu.add_argument("file")
    imu.add_argument("--city", required=True, help="a stored city, its districts imported (import-osm)")
    imu.add_argument("--codes", metavar="CSV|XLSX", help="a table of code,name for a geometry file with codes only")
    imu.add_argument("--crs", help="what the coordinates are in when the file does not say (EPSG:4547), or gcj02 "
                                   "for a file drawn on a Chinese web map")
    imu.add_argument("--snap-m", type=float, default=5.0, metavar="M",
                     help="snap boundaries onto streets within this many metres (default 5; 0: never)")
    imu.add_argument("--author", required=True)
    imu.add_argument("--reason", required=True)
    imu.add_argument("--dry-run", action="store_true", help="check and report everything, store nothing")
    imu.add_argument("--replace-generated", action="store_true",
                     help="retire the automatic division's units (and grids) in the file's districts")
    imu.add_argument("--problems", metavar="GEOJSON", help="write the gaps and overlaps found to this file")
    imu.set_defaults(func=cmd_import_units)

    imh = sub.add_parser("import-households", help="real household (and resident) counts from the city's register "
                                                   "(CSV or XLSX), by OSM id, building id or point")
    imh.add_argument("file")
    imh.add_argument("--city", required=True)
    imh.add_argument("--crs", help="the points' coordinate system when not WGS-84: gcj02 or bd09")
    imh.add_argument("--radius-m", type=float, default=20.0,
                     help="a point outside every building goes to the nearest within this (default 20 m)")
    imh.set_defaults(func=cmd_import_households)

    imb = sub.add_parser("import-buildings", help="building footprints the city has and OSM lacks (.geojson, .gpkg, "
                                                  ".shp, .zip), each with the city's building id")
    imb.add_argument("file")
    imb.add_argument("--city", required=True)
    imb.add_argument("--crs", help="what an undeclared file is in (EPSG:4547), or gcj02")
    imb.set_defaults(func=cmd_import_buildings)

    img = sub.add_parser("import-grids", help="a city's existing grids (--city), or one community's (--community), "
                                              "from a .geojson, .gpkg, .shp or .zip")
    img.add_argument("file")
    which = img.add_mutually_exclusive_group(required=True)
    which.add_argument("--community", help="replace this community's grids (its 12-digit code)")
    which.add_argument("--city", help="all the city's grids at once, each assigned to its community by location")
    img.add_argument("--author", required=True)
    img.add_argument("--reason", required=True)
    img.add_argument("--dry-run", action="store_true", help="report everything, store nothing")
    img.add_argument("--repair", action="store_true",
                     help="(--city) clip grids to their community, give gaps to the neighbour with the longest "
                          "shared border, leave overlaps with the lower code")
    img.add_argument("--crs", help="(--city) what an undeclared file is in (EPSG:4547), or gcj02")
    img.add_argument("--band", default="300-500", help="(--city) households per grid to report against")
    img.add_argument("--problems", metavar="GEOJSON", help="(--city) write the gaps and overlaps found here")
    img.set_defaults(func=cmd_import_grids)
