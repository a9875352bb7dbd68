"""An audit line made safe to store, whatever a request carried.

A line holds what a client sent: a path, a method, a username typed at sign-in. Any of those may hold a NUL (which
PostgreSQL's text and jsonb refuse), a lone surrogate, control characters (which would rewrite the terminal of
whoever runs ``gridpatrol audit list``), or be longer than its column. :func:`clean_line` keeps the evidence and
makes it storable: control characters are written out as ``\\xNN``, text is cut to its column's length (marked with
``…``), and the detail's strings lose only what jsonb cannot hold.
"""

from __future__ import annotations

from typing import Any

LIMITS = {"username": 64, "role": 16, "action": 16, "method": 8, "path": 2000, "subject": 2000, "client": 200}
"""The most characters each text field keeps (the columns' sizes; ``path`` and ``subject`` are text, bounded here)."""
FIELDS = ("username", "role", "action", "method", "path", "status", "subject", "client", "detail")
MAX_DETAIL_DEPTH = 8
INT32 = 2**31 - 1


def _printable(text: str) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in text)


def clean_text(value: Any, limit: int) -> str | None:
    """``value`` as storable, printable text of at most ``limit`` characters (``None`` stays ``None``)."""
    if value is None:
        return None
    text = _printable(value if isinstance(value, str) else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_detail(value: Any, depth: int = 0) -> Any:
    """A JSON value jsonb accepts: strings without NUL or lone surrogates, at most ``MAX_DETAIL_DEPTH`` deep."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\x00")
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= MAX_DETAIL_DEPTH:
        return clean_text(repr(value), 200)
    if isinstance(value, dict):
        return {clean_detail(str(k), depth + 1): clean_detail(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_detail(v, depth + 1) for v in value]
    return clean_detail(str(value), depth + 1)


def clean_status(value: Any) -> int | None:
    try:
        status = int(value)
    except (TypeError, ValueError):
        return None
    return status if -INT32 <= status <= INT32 else None


def clean_line(entry: dict[str, Any]) -> dict[str, Any]:
    """Every field of an audit line, storable: see the module docstring."""
    line: dict[str, Any] = {k: clean_text(entry.get(k), n) for k, n in LIMITS.items()}
    line["status"] = clean_status(entry.get("status"))
    line["detail"] = clean_detail(entry.get("detail")) if entry.get("detail") is not None else None
    return line
