"""How a browser's sign-in travels: the cookie the token is kept in (the API sets it; the browser harness
sets it too). No imports, so anything may read it."""

from __future__ import annotations

TOKEN_COOKIE = "gridpatrol_token"
