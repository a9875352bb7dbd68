"""Oversight: ``bulletin``, a unit's monthly bulletin as an XLSX workbook, a printable page or JSON."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from api.settings import Settings
from gis.errors import InputError
from scripts.cli.base import Subparsers, engine_for

FORMATS = {".xlsx": "xlsx", ".html": "html", ".htm": "html", ".json": "json"}


def cmd_bulletin(args: argparse.Namespace, settings: Settings) -> int:
    from gis.oversight.store.bulletin import asked_month, bulletin
    from gis.oversight.store.leaders import find_unit
    from maps.bulletin import bulletin_page, bulletin_xlsx

    if args.month is not None and not re.fullmatch(r"\d{4}-\d{2}", args.month):
        raise InputError(f"--month is YYYY-MM, e.g. 2026-11; got {args.month!r}")
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in FORMATS:
        raise InputError(f"--out names an .xlsx, .html or .json file; got {args.out!r}")
    if out is not None and not out.parent.is_dir():
        raise InputError(f"--out: no folder {out.parent}")
    with engine_for(settings) as engine:
        with engine.connect() as conn:
            unit = find_unit(conn, city=args.city or (None if args.unit else settings.default_city), unit=args.unit)
            month, zone = asked_month(conn, unit, args.month, timezone=settings.timezone)  # refused before any work
        print(f"the bulletin of {unit.name} for {month}…", file=sys.stderr, flush=True)
        started = time.perf_counter()
        data = bulletin(engine, unit, month, timezone=zone)
    code = unit.code or str(unit.city_id)
    out = out or Path(f"bulletin-{code}-{month}.xlsx")
    kind = FORMATS[out.suffix.lower()]
    if kind == "xlsx":
        out.write_bytes(bulletin_xlsx(data))
    elif kind == "html":
        out.write_text(bulletin_page(data, lang=args.lang), encoding="utf-8")
    else:
        out.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    for line in data["summary"]["en" if args.lang == "en" else "zh"]:
        print(line)
    for note in data["notes"]:
        print(f"note: {note}")
    print(f"wrote {out} ({kind}) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def register(sub: Subparsers) -> None:
    bul = sub.add_parser("bulletin", help="a unit's monthly bulletin (考核通报): rankings with the change from last "
                                          "month, categories, hot spots, patrols, supervised and hung cases")
    bul.add_argument("--unit", help="a district (6 digits), street (9), community (12) or grid (15) code")
    bul.add_argument("--city", help="a whole city (key, name or id); default: the configured one")
    bul.add_argument("--month", help="YYYY-MM (default: last month); a month not yet begun is refused")
    bul.add_argument("--out", help="the file: .xlsx (default: bulletin-CODE-MONTH.xlsx), .html (for print) or .json")
    bul.add_argument("--lang", choices=["zh", "en"], default="zh", help="the printable page's and summary's language")
    bul.set_defaults(func=cmd_bulletin)
