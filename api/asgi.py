"""ASGI's types, as the service's middlewares (audit, security headers, body guard) use them."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
