"""Security headers on every answer, and the Content-Security-Policy that lets a page run only its own scripts.

Each request gets a fresh nonce. An HTML answer's inline ``<script>`` elements are marked with it as the page is
sent (:func:`maps.text.with_nonce`), and the policy allows scripts from this origin and those marked ones only: a
``<script>`` or an ``onerror=`` that a stored name smuggled into a page does not run. Styles may be inline (folium
and Leaflet position everything with them); nothing may be framed, nothing loads from another host. Workers may
start from a ``blob:`` the page made: the map's (MapLibre GL) starts from its script fetched through the member
page's service worker, so that it starts with no signal (``maps/static/basemap.js``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from api.asgi import Message, Scope
from maps.text import with_nonce

POLICY = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data: blob:{images}; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
          "manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
          (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """ASGI middleware: the nonce (``request.state.csp_nonce``), the policy, and the headers of ``ALWAYS``."""

    def __init__(self, app: Callable[..., Awaitable[None]], images: str = "") -> None:
        """``images``: another origin the pages may show images from (the intranet basemap's tile server)."""
        self.app = app
        self.images = f" {images}" if images else ""

    async def __call__(self, scope: Scope, receive: Callable[..., Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        start: Message | None = None
        chunks: list[bytes] = []

        async def secured(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in dict(ALWAYS)]
                policy = POLICY.format(nonce=nonce, images=self.images)
                headers += [*ALWAYS, (b"content-security-policy", policy.encode())]
                message["headers"] = headers
                if scope["method"] != "HEAD" and any(k.lower() == b"content-type" and v.startswith(b"text/html")
                                                     for k, v in headers):
                    start = message  # held until the body is whole: its scripts get the nonce
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = with_nonce(b"".join(chunks).decode("utf-8", "surrogateescape"), nonce)
                data = body.encode("utf-8", "surrogateescape")
                start["headers"] = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                start["headers"].append((b"content-length", str(len(data)).encode()))
                await send(start)
                await send({"type": "http.response.body", "body": data})
            else:
                await send(message)

        await self.app(scope, receive, secured)


def tile_origin(url: str | None) -> str:
    """The origin (scheme://host[:port]) of a tile URL template; empty for none or for this service's own."""
    from urllib.parse import urlsplit

    if not url:
        return ""
    parts = urlsplit(url.replace("{z}", "0").replace("{x}", "0").replace("{y}", "0").replace("{s}", "a"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"
