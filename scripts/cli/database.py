"""``gridpatrol db`` and ``migrate``: the embedded server's life, backups, the schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from api.settings import Settings
from gis.db.engine import check_database, make_engine
from gis.errors import InputError
from scripts.cli.base import Subparsers, database_url, embedded, engine_for


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in ("backup", "restore"):
        return db_backup_restore(args, settings)
    if settings.database_url:
        if args.action == "status":
            engine = make_engine(settings.database_url)
            print(f"DATABASE_URL is set; PostGIS {check_database(engine)} reachable there")
        else:
            print("DATABASE_URL is set: gridpatrol uses that server and starts or stops nothing")
        return 0
    server = embedded(settings)
    if args.action == "start":
        started = server.start()
        server.create_database(settings.db_name)
        print(("started" if started else "already running") + f": {server.url(settings.db_name)}")
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    else:
        state = server.status()
        print(f"{state}: {server.url(settings.db_name)} (data in {server.pgdata})")
        return 0 if state == "running" else 1
    return 0


def db_backup_restore(args: argparse.Namespace, settings: Settings) -> int:
    from gis.db.backup import backup, restore

    if not args.file:
        raise InputError(f"gridpatrol db {args.action} FILE: say which file")
    url = database_url(settings)
    path = Path(args.file)
    if args.action == "backup":
        # with replicas (GRIDPATROL_READ_URL), from one of them (libpq's prefer-standby): the primary keeps its
        # disks and cores for the city's writes
        size = backup(settings.read_url or url, path)
        print(f"wrote {path} ({size / 2**20:,.1f} MB){' from a replica' if settings.read_url else ''}; "
              f"restore it with: gridpatrol db restore {path}")
        return 0
    if not args.yes:
        raise InputError(f"restoring replaces everything in the database with {path}: add --yes to go ahead")
    restore(url, path)
    with engine_for(settings):  # a backup from an older version: bring its schema up to date
        pass
    print(f"restored {path}")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with engine_for(settings):
        print("database schema is up to date")
    return 0


def register(sub: Subparsers) -> None:
    db = sub.add_parser("db", help="start, stop or check the embedded PostGIS; back it up or restore it")
    db.add_argument("action", choices=("start", "stop", "status", "backup", "restore"))
    db.add_argument("file", nargs="?", help="backup / restore: the pg_dump file")
    db.add_argument("--yes", action="store_true", help="restore: yes, replace the database's contents")
    db.set_defaults(func=cmd_db)

    mig = sub.add_parser("migrate", help="create or upgrade the schema (Alembic)")
    mig.set_defaults(func=cmd_migrate)
