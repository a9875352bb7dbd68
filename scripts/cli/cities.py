"""Cities as data: ``city add``, ``city set``, ``city list``, ``city show``; the same options on ``import-osm``."""

from __future__ import annotations

import argparse
from typing import Any

from api.settings import Settings
from gis.errors import InputError
from gis.geo.cities import City
from scripts.cli.base import Subparsers, engine_for


def district_pairs(values: list[str] | None) -> dict[str, str]:
    """``--district NAME=CODE`` options as a mapping; a value without ``=`` is refused."""
    pairs: dict[str, str] = {}
    for value in values or []:
        name, sep, code = value.rpartition("=")
        if not sep:
            raise InputError(f"--district {value!r}: give NAME=CODE, e.g. --district '鼓楼区=320106'")
        pairs[name.strip()] = code.strip()
    return pairs


def city_options(args: argparse.Namespace) -> dict[str, Any]:
    """The city options a command was given (those left out are ``None``: stored or default values stand)."""
    return {"code": args.code, "name": args.name, "name_en": args.name_en, "default_storeys": args.default_storeys,
            "m2_per_household": args.m2_per_household, "timezone": args.timezone,
            "districts": district_pairs(args.district), "outside_china": args.outside_china}


def add_city_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--code", help="the city's 6-digit GB/T 2260 code (220300); looked up from a Chinese name when "
                                  "left out; none for a place outside China")
    p.add_argument("--name", help="official name (四平市); from GB/T 2260 when the code is given")
    p.add_argument("--name-en", help="English name (default: the handle, capitalised)")
    p.add_argument("--default-storeys", type=int, metavar="N",
                   help="storeys of an untyped building with no building:levels (default 6)")
    p.add_argument("--m2-per-household", type=float, metavar="M2",
                   help="floor area per household in the estimate (default 90)")
    p.add_argument("--timezone", help="the city's time zone (default Asia/Shanghai): its weeks and months of patrol "
                                      "compliance; the duty roster and deadlines follow the service's "
                                      "GRIDPATROL_TIMEZONE")
    p.add_argument("--outside-china", action="store_true",
                   help="a place outside China: no GB/T 2260 code, districts get synthetic codes (99…)")
    p.add_argument("--district", action="append", metavar="NAME=CODE",
                   help="map a district the OSM data names to its GB/T 2260 code (repeatable)")


def describe(city: City) -> list[str]:
    hand = ", ".join(f"{n}={c}" for n, c in sorted(city.district_codes.items())) or "none"
    return [f"{city.key}: {city.name} / {city.name_en}, code {city.code or 'none (outside China)'}",
            f"  timezone {city.timezone}; districts mapped by hand: {hand}",
            *(f"  assumes: {a}" for a in city.assumptions())]


def save(settings: Settings, city_name: str, options: dict[str, Any], *, must_exist: bool) -> City:
    from gis.planning.store.city import find_city, resolve_city, save_city

    with engine_for(settings) as engine, engine.begin() as conn:
        if must_exist:
            find_city(conn, city_name)
        city = resolve_city(conn, city_name, **options)
        save_city(conn.connection.cursor(), city)
    return city


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    city = save(settings, args.city, city_options(args), must_exist=False)
    print("\n".join(describe(city)))
    print(f"next: gridpatrol import-osm FILE --city {city.key}")
    return 0


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    city = save(settings, args.city, city_options(args), must_exist=True)
    print("\n".join(describe(city)))
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.store.city import list_cities

    with engine_for(settings) as engine, engine.connect() as conn:
        cities = list_cities(conn)
    if not cities:
        print("no city yet: gridpatrol city add NAME --code CODE")
    for c in cities:
        print(f"{c.key or '-':<16} {c.code or '(outside China)':<16} {c.name} / {c.name_en or ''}")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from gis.planning.store.city import load_city

    with engine_for(settings) as engine, engine.connect() as conn:
        city = load_city(conn, args.city)
    print("\n".join(describe(city)))
    return 0


def register(sub: Subparsers) -> None:
    city = sub.add_parser("city", help="the cities and what their imports assume: add, set, list, show")
    verbs = city.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser("add", help="add a city (or update it): its code, names and assumptions")
    add.add_argument("city", help="a short handle for the city (siping), or its Chinese name (四平市)")
    add_city_options(add)
    add.set_defaults(func=cmd_add)
    upd = verbs.add_parser("set", help="change a stored city's settings")
    upd.add_argument("city", help="the city's handle, name or English name")
    add_city_options(upd)
    upd.set_defaults(func=cmd_set)
    verbs.add_parser("list", help="the stored cities").set_defaults(func=cmd_list)
    show = verbs.add_parser("show", help="one city's settings")
    show.add_argument("city")
    show.set_defaults(func=cmd_show)
