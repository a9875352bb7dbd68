"""Serving and the demo: ``serve``, ``demo`` (what ``make run`` runs), the demo's seeders, ``screenshot``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from api.settings import Settings
from gis.db.engine import reading
from gis.errors import InputError
from gis.geo.cities import city_from_options
from scripts.cli.base import Subparsers, check_port_free, database_url, embedded, engine_for
from scripts.cli.planning import run_divide, run_import

DEMO_FILE = Path("data/nanjing-xinjiekou.osm")
DEMO_CITY = "nanjing"
DEMO_OPTIONS: dict[str, Any] = {"code": "320100"}
"""The demo city: 南京市, its name and district codes from GB/T 2260."""


def _seed_city(settings: Settings, city_name: str, seed: Callable[[Engine, int], dict[str, int]]) -> dict[str, int]:
    """Run one of the demo's synthetic seeders on the city named ``city_name``; its counts."""
    from gis.planning.store.city import find_city

    with engine_for(settings) as engine:
        with engine.connect() as conn:
            city_id = find_city(conn, city_name).id
        return seed(engine, city_id)


def seed_staff(settings: Settings, city_name: str) -> None:
    from gis.demo.staff import seed_demo_staff

    counts = _seed_city(settings, city_name, seed_demo_staff)
    if any(counts.values()):
        print("synthetic demo staff: " + ", ".join(f"{n} {role}" for role, n in counts.items()))


def seed_activity(settings: Settings, city_name: str) -> None:
    from gis.demo.activity import seed_demo_activity

    counts = _seed_city(settings, city_name, seed_demo_activity)
    if any(counts.values()):
        print(f"synthetic demo activity: {counts['events']} events, {counts['visits']} patrol visits")


def cmd_seed_activity(args: argparse.Namespace, settings: Settings) -> int:
    seed_activity(settings, args.city)
    return 0


def cmd_seed_staff(args: argparse.Namespace, settings: Settings) -> int:
    seed_staff(settings, args.city)
    return 0


def serve(settings: Settings, host: str, port: int, *, workers: int = 1, access_log: bool = True) -> None:
    import uvicorn

    from api.app import create_app

    settings = settings.model_copy(update={"database_url": database_url(settings)})
    print(f"gridpatrol serving on http://{host}:{port}  (map at /, API docs at /docs; Ctrl-C to stop)")
    if workers > 1:  # worker processes build the app from the environment
        os.environ["DATABASE_URL"] = settings.database_url or ""
        uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level="info", access_log=access_log)
    else:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    check_port_free(args.host or settings.host, args.port or settings.port)
    with engine_for(settings):
        pass
    serve(settings, args.host or settings.host, args.port or settings.port, workers=args.workers,
          access_log=not args.no_access_log)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Start the database, load central Nanjing (once), serve; stop the embedded server on exit."""
    server = None if settings.database_url else embedded(settings)
    was_running = server is not None and server.status() == "running"
    # `kill`, systemd and docker stop with SIGTERM, whose default action ends the process without cleaning up.
    # uvicorn shuts down gracefully on it and then re-raises it: make it an exit, so the database is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if not args.no_serve:
        check_port_free(settings.host, settings.port)  # before loading anything: say at once if :8000 is taken
    try:
        from gis.planning.store.importer import already_imported, file_sha256

        with engine_for(settings) as engine:
            loaded = reading(engine, already_imported, city_from_options(DEMO_CITY, **DEMO_OPTIONS).name,
                             file_sha256(DEMO_FILE))
        if loaded:
            print(f"{DEMO_FILE.name} already loaded")
        else:
            run_import(settings, DEMO_FILE, DEMO_CITY, None, DEMO_OPTIONS)
            run_divide(settings, DEMO_CITY)
        seed_staff(settings, DEMO_CITY)  # grids without staff get synthetic ones, so reports find a person
        seed_activity(settings, DEMO_CITY)  # synthetic events and visits, so the leaders' maps show something
        seed_users(settings, DEMO_CITY)  # one account per role, so a newcomer can sign in
        if not args.no_serve:
            serve(settings, settings.host, settings.port)
    finally:
        if server is not None and not was_running and not args.keep_db:
            server.stop()
            print("stopped embedded PostgreSQL")
    return 0


def cmd_example_registers(args: argparse.Namespace, settings: Settings) -> int:
    from gis.demo.registers import write_example_registers

    with engine_for(settings) as engine:
        paths = write_example_registers(engine, args.city, Path(args.out))
    print("synthetic files (made from the OSM data; names, numbers and counts made up):")
    for key, path in paths.items():
        print(f"  {key:<11} {path}")
    return 0


DEMO_USERS = Path("demo-users.txt")


def seed_users(settings: Settings, city: str) -> None:
    """The demo's accounts; new ones' passwords are printed and kept in ``<data_dir>/demo-users.txt``."""
    from gis.demo.users import seed_demo_users
    from gis.planning.store.city import find_city

    with engine_for(settings) as engine:
        with engine.connect() as conn:
            city_id = find_city(conn, city).id
        made = seed_demo_users(engine, city_id)
    listing = settings.data_dir / DEMO_USERS
    if made:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with listing.open("a", encoding="utf-8") as out:
            for name, role, unit, password in made:
                out.write(f"{name}\t{password}\t{role}\t{unit}\n")
        listing.chmod(0o600)
    if listing.exists():
        print(f"demo accounts (username, password, role, unit) — sign in at /login; kept in {listing}:")
        print("".join(f"  {line}" for line in listing.read_text(encoding="utf-8").splitlines(keepends=True)))


def token_for(settings: Settings, username: str | None) -> str:
    """A sign-in for a user without their password: for the operator's own tools (screenshots), who hold the
    database anyway. Default: the first admin."""
    from api.tokens import Tokens
    from gis.access.store import users

    with engine_for(settings) as engine:
        found = [u for u in reading(engine, users.list_users) if u.active and
                 (u.username == username if username else u.role == "admin")]
        if not found:
            raise InputError(f"no active user {username!r}" if username else
                             "no admin yet: gridpatrol users add admin --role admin")
        return Tokens(engine, settings).issue(found[0])[0]


def cmd_screenshot(args: argparse.Namespace, settings: Settings) -> int:
    from api.app import create_app
    from maps.browser import serve_in_thread, visit

    settings = settings.model_copy(update={"database_url": database_url(settings)})
    token = token_for(settings, args.user)
    with serve_in_thread(create_app(settings)) as base:
        result = visit(f"{base}{args.path}", screenshot=Path(args.out), width=args.width, height=args.height,
                       token=token)
    print(f"wrote {args.out}: {result.summary()}")
    return 0 if result.ok else 1


def register(sub: Subparsers) -> None:
    srv = sub.add_parser("serve", help="serve the API and maps")
    srv.add_argument("--host")
    srv.add_argument("--port", type=int)
    srv.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    srv.add_argument("--no-access-log", action="store_true", help="do not log every request")
    srv.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="what `make run` does: database, Nanjing, serve on :8000")
    demo.add_argument("--no-serve", action="store_true", help="load the demo city and stop")
    demo.add_argument("--keep-db", action="store_true", help="leave the embedded server running afterwards")
    demo.set_defaults(func=cmd_demo)

    staff = sub.add_parser("seed-staff", help="give a city's grids synthetic staff and a duty roster (demo)")
    staff.add_argument("--city", required=True)
    staff.set_defaults(func=cmd_seed_staff)

    act = sub.add_parser("seed-activity", help="synthetic events and patrol visits for a city's grids (the demo's; "
                                               "once per city)")
    act.add_argument("--city", required=True)
    act.set_defaults(func=cmd_seed_activity)

    reg = sub.add_parser("example-registers", help="write synthetic files in the form a city brings (units, grids, "
                                                    "staff, households), made from its imported OSM data, to try "
                                                    "docs/ONBOARDING.md")
    reg.add_argument("--city", required=True)
    reg.add_argument("--out", required=True, help="a folder")
    reg.set_defaults(func=cmd_example_registers)

    shot = sub.add_parser("screenshot", help="render a page in headless Chromium and save a PNG")
    shot.add_argument("--out", required=True)
    shot.add_argument("--path", default="/", help="the page, e.g. /?city=beijing")
    shot.add_argument("--width", type=int, default=1400)
    shot.add_argument("--height", type=int, default=900)
    shot.add_argument("--user", help="seen as this user (default: the first admin)")
    shot.set_defaults(func=cmd_screenshot)
