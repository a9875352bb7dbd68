"""A city's own files coming in: size and encoding checks, tables (CSV or XLSX), one error for many bad rows.

Shared by every import of a city's registers (official units, grids, staff, households). Pure: no database.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from gis.errors import InputError, PayloadTooLargeError

MAX_FILE_BYTES = 1 << 30
"""A city's register is megabytes; a gigabyte is a wrong file (or a whole country's raster)."""
MAX_PROBLEMS_SHOWN = 20


@dataclass
class Table:
    """Rows of a CSV or XLSX file, all values text, and how the file was read."""

    rows: list[dict[str, str]]
    columns: list[str]
    note: str = ""


def check_size(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path} is empty")
    if size > MAX_FILE_BYTES:
        raise PayloadTooLargeError(f"{path} is {size / 2**30:.1f} GiB; the service takes files up to "
                                   f"{MAX_FILE_BYTES / 2**30:.0f} GiB: split it, e.g. by district")


def decode_csv(data: bytes, *, name: str) -> tuple[str, str]:
    """The text of a CSV and how it was decoded: UTF-8 (with or without BOM), else GBK (GB18030), else refused."""
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "read as GBK (GB18030); UTF-8 is preferred"
    except UnicodeDecodeError:
        raise InputError(f"{name} is neither UTF-8 nor GBK text: save it as CSV UTF-8") from None


def read_table(path: str | Path) -> Table:
    """A CSV (UTF-8 or GBK) or XLSX file as text rows keyed by its header; refuses merged header cells."""
    path = Path(path)
    check_size(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text, note = decode_csv(path.read_bytes(), name=path.name)
        reader = csv.reader(io.StringIO(text))
        grid = [row for row in reader if any(cell.strip() for cell in row)]
    elif suffix == ".xlsx":
        grid, note = _xlsx_grid(path), ""
    else:
        raise InputError(f"{path.name}: give a .csv or .xlsx file")
    if not grid:
        raise InputError(f"{path.name} holds no rows")
    header = [h.strip() for h in grid[0]]
    if any(not h for h in header) or len(set(header)) != len(header):
        raise InputError(f"{path.name}: the first row must name every column once (got {header})")
    rows = [dict(zip(header, (c.strip() for c in row + [""] * (len(header) - len(row))), strict=False))
            for row in grid[1:]]
    if not rows:
        raise InputError(f"{path.name} has a header but no rows")
    return Table(rows=rows, columns=header, note=note)


def _xlsx_grid(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=False, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise InputError(f"{path.name} is not a readable XLSX workbook ({exc})") from None
    sheet = book.worksheets[0]
    merged = [str(r) for r in sheet.merged_cells.ranges if r.min_row <= 1]
    if merged:
        raise InputError(f"{path.name}: the header row has merged cells ({', '.join(merged)}): unmerge them so "
                         "each column has one name in the first row")
    grid = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    return [row for row in grid if any(cell.strip() for cell in row)]


def field_named(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    folded = {c.casefold(): c for c in columns}
    return next((folded[w] for w in wanted if w in folded), None)


def refuse(problems: list[str], what: str) -> None:
    """Raise one :class:`InputError` listing the problems (the first :data:`MAX_PROBLEMS_SHOWN`), if any."""
    if not problems:
        return
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    more = f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more)" if len(problems) > MAX_PROBLEMS_SHOWN else ""
    raise InputError(f"{what}: nothing stored; {len(problems)} problem(s) to fix: {shown}{more}")
