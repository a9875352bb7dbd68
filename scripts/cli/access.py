"""``gridpatrol users``, ``import-staff`` and ``audit``: accounts, the staff register, the log of who did what."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from api.settings import Settings
from gis.access.store import audit as audit_log
from gis.access.store import users
from gis.db.engine import reading, writing
from gis.errors import InputError
from gis.vocabulary import USER_ROLES
from scripts.cli.base import Subparsers, engine_for


def read_password(args: argparse.Namespace) -> str:
    """From ``--password-stdin``, else ``GRIDPATROL_PASSWORD``, else asked for twice on a terminal."""
    import getpass

    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("GRIDPATROL_PASSWORD"):
        return os.environ["GRIDPATROL_PASSWORD"]
    if not sys.stdin.isatty():
        raise InputError("no password: pipe it with --password-stdin, or set GRIDPATROL_PASSWORD")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InputError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    with engine_for(settings) as engine:
        if args.action == "list":
            for u in reading(engine, users.list_users):
                where = u.unit_code or ("every city" if u.scope.everywhere else f"city {u.scope.city_id}")
                print(f"  {u.username:<24} {u.role:<12} {u.scope.level:<10} {where:<16} "
                      f"{'' if u.active else 'disabled'}")
            return 0
        if not args.username:
            raise InputError(f"gridpatrol users {args.action} USERNAME: say whose account")
        if args.action == "add":
            if not args.role:
                raise InputError("a new user needs --role: " + ", ".join(USER_ROLES))
            user = writing(engine, users.create_user, args.username, read_password(args), args.role, unit=args.unit,
                                     display_name=args.name or "", staff_id=args.staff_id,
                                     department=args.department)
            print(f"added {user.username}: {user.role} of {user.unit_code or user.scope.level}")
        elif args.action == "passwd":
            user = writing(engine, users.set_password, args.username, read_password(args))
            print(f"new password for {user.username}; their earlier sign-ins no longer work")
        else:
            user = writing(engine, users.set_active, args.username, args.action == "enable")
            print(f"{user.username} {'enabled' if user.active else 'disabled (signed out everywhere)'}")
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    with engine_for(settings) as engine:
        if args.action == "list":
            for e in reading(engine, audit_log.audit_entries, subject=args.subject, username=args.user,
                             limit=args.limit):
                print(f"  {e['at'][:19]}  {e['username'] or '-':<16} {e['method'] or e['action']:<6} "
                      f"{e['status'] or '':<4} {e['subject'] or ''}")
            return 0
        if (args.before is None) == (args.keep_days is None):
            raise InputError("gridpatrol audit prune: say either --before DATE or --keep-days N")
        if args.keep_days is not None:
            if args.keep_days < 1:
                raise InputError("--keep-days must be at least 1")
            before = datetime.now(UTC) - timedelta(days=args.keep_days)
        else:
            try:  # a date is midnight in the service's time zone
                day = datetime.strptime(args.before, "%Y-%m-%d")
            except ValueError:
                raise InputError(f"--before {args.before!r}: give a date as YYYY-MM-DD") from None
            before = day.replace(tzinfo=ZoneInfo(settings.timezone))
        total = reading(engine, audit_log.count_audit_before, before)
        with tqdm(total=total, desc="pruning the audit log", unit="line", file=sys.stderr) as bar:
            deleted = audit_log.prune_audit(engine, before, progress=bar.update)
    print(f"deleted {deleted:,} audit line(s) written before {before.isoformat(timespec='seconds')}")
    return 0


def cmd_import_staff(args: argparse.Namespace, settings: Settings) -> int:
    """The register, all or nothing; the new users' setup codes go to a file only its owner can read."""
    from gis.access.store.register import import_staff

    out = Path(args.codes_out or f"setup-codes-{datetime.now(UTC):%Y%m%d-%H%M%S}.tsv")
    with engine_for(settings) as engine, engine.begin() as conn:
        report = import_staff(conn, args.file, city=args.city)
        if report.setup_codes:  # written before the commit: a failed commit leaves codes of no user, never users
            # without their codes
            try:
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise InputError(f"{out} exists: give another --codes-out (nothing was stored)") from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("username\tname\tsetup code\tvalid until\n")
                handle.writelines("\t".join(row) + "\n" for row in report.setup_codes)
    print("\n".join(report.lines()))
    if report.setup_codes:
        print(f"setup codes of the {len(report.setup_codes)} new user(s) are in {out} (readable by you only): hand "
              "each their own; they set their password with it at /first-sign-in, once, within 30 days")
    return 0


def register(sub: Subparsers) -> None:
    stf = sub.add_parser("import-staff", help="a city's staff register (CSV or XLSX): staff, grids, roster, users")
    stf.add_argument("file")
    stf.add_argument("--city", required=True)
    stf.add_argument("--codes-out", metavar="FILE",
                     help="where the new users' one-time setup codes go (default setup-codes-<time>.tsv; never "
                          "overwritten)")
    stf.set_defaults(func=cmd_import_staff)

    usr = sub.add_parser("users", help="add users, reset passwords, disable or list them")
    usr.add_argument("action", choices=("add", "passwd", "disable", "enable", "list"))
    usr.add_argument("username", nargs="?")
    usr.add_argument("--role", help="add: " + ", ".join(USER_ROLES))
    usr.add_argument("--unit", help="add: their grid, community, street or district code, or a city's name "
                     "(an admin without one: every city)")
    usr.add_argument("--name", help="add: the name shown")
    usr.add_argument("--staff-id", type=int, help="add: their staff record (a grid member's grids and events)")
    usr.add_argument("--department", help="add: a department user's department code")
    usr.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    usr.set_defaults(func=cmd_users)

    aud = sub.add_parser("audit", help="read the audit log, or delete its old lines")
    aud.add_argument("action", choices=("list", "prune"))
    aud.add_argument("--user", help="list: one user's lines")
    aud.add_argument("--subject", help="list: the lines about one thing (e.g. /events/42)")
    aud.add_argument("--limit", type=int, default=50, help="list: how many, newest first (default 50)")
    aud.add_argument("--before", help="prune: delete the lines written before this date (YYYY-MM-DD, local time)")
    aud.add_argument("--keep-days", type=int, help="prune: keep the last N days, delete the rest")
    aud.set_defaults(func=cmd_audit)
