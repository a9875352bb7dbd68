"""``gridpatrol``: the command line. Thin: parse arguments, call :mod:`gis` and :mod:`api`, show progress.

One module per command group, each adding its commands with ``register``; :mod:`scripts.cli.base` holds what they
share (the database, progress bars, CSV out). Every error a user can fix ends in one line on stderr and a non-zero
exit: 2 for bad input (a missing or broken file, an unknown city), 3 when the database cannot be reached or started.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import psycopg2
from sqlalchemy.exc import OperationalError

from api.settings import Settings
from gis.errors import DatabaseUnavailableError, GridpatrolError
from scripts.cli import access, cities, cluster, database, dispatch, oversight, patrol, planning, service
from scripts.cli.base import EXIT_DATABASE, EXIT_INPUT

__all__ = ["EXIT_DATABASE", "EXIT_INPUT", "main", "parser"]

GROUPS = (database, cluster, access, cities, planning, service, dispatch, patrol, oversight)
"""In the order ``gridpatrol --help`` lists their commands."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridpatrol", description="gridpatrol: grid mapping and patrol planning for city "
                                "grid governance (网格化管理). Each command says more with --help.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        return int(args.func(args, settings))
    except DatabaseUnavailableError as exc:
        print(f"gridpatrol: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except (OperationalError, psycopg2.OperationalError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        print(f"gridpatrol: lost the database connection ({reason}); nothing was written. "
              "Check the server (gridpatrol db status) and try again", file=sys.stderr)
        return EXIT_DATABASE
    except GridpatrolError as exc:
        print(f"gridpatrol: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
