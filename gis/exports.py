"""Cells of the CSV files the service writes, safe to open in a spreadsheet.

A unit's or a street's name comes from a city's file or from OpenStreetMap. A cell that begins with ``=``, ``+``,
``-`` or ``@`` (or a tab or carriage return before one) is a formula to Excel, LibreOffice and WPS, which a
leader opening the monthly figures would run. Such text is written with a leading apostrophe, as OWASP advises:
the spreadsheet shows it as text. Numbers stay numbers (a negative figure is not text).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value``, with text that a spreadsheet would read as a formula made into text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_rows(out: IO[str], rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> int:
    """The rows as CSV with a header, every text cell through :func:`csv_cell`, columns beyond ``fields`` left
    out; how many rows were written."""
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
        n += 1
    return n
