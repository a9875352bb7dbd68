"""Open gridpatrol's pages in headless Chromium (Debian's), as a person would, and report what went wrong.

Used by the browser tests and by ``gridpatrol screenshot``. Every request to a host other than the local server
is blocked and recorded, so a page that would reach for a CDN fails loudly instead of silently working here.
Playwright drives ``/usr/bin/chromium``; it never downloads a browser.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from api.session import TOKEN_COOKIE

CHROMIUM = "/usr/bin/chromium"
# What the workplace's probe uses: without the background-networking flags Chromium keeps dialling Google.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Finds folium's Leaflet map object and counts what it draws.
_MAP_PROBE = """() => {
  const maps = Object.keys(window).filter(k => k.startsWith('map_') && window.L && window[k] instanceof L.Map);
  if (!maps.length) return {maps: 0, layers: 0, features: 0, markers: 0};
  let layers = 0, features = 0, markers = 0;
  window[maps[0]].eachLayer(l => {
    layers++;
    if (l.feature) features++;
    else if (l instanceof L.CircleMarker || l instanceof L.Marker) markers++;
  });
  return {maps: maps.length, layers, features, markers};
}"""


@dataclass
class VisitResult:
    url: str
    status: int | None = None
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    map: dict[str, int] = field(default_factory=dict)
    load_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.status == 200 and not self.failed_requests and not self.external_requests
                and not self.console_errors)

    def summary(self) -> str:
        return (f"HTTP {self.status}, loaded in {self.load_s:.1f} s, {self.map.get('features', 0)} map features and "
                f"{self.map.get('markers', 0)} markers, "
                f"{len(self.failed_requests)} failed / {len(self.external_requests)} external requests, "
                f"{len(self.console_errors)} console errors")


@dataclass
class LocalPage:
    """A Chromium page that may load only from this machine, and what went wrong on it. ``another`` opens one more
    such page in the same browser, in a context of its own (another person at another desk, or on a phone)."""

    page: Any
    context: Any = None
    external_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """Every URL the page and its workers asked for (MapLibre GL fetches its tiles from a web worker)."""

    def another(self, *, width: int = 1400, height: int = 900, token: str | None = None,
                **context_options: Any) -> LocalPage:
        return _open(self.context.browser, width=width, height=height, token=token, **context_options)


def _open(browser: Any, *, width: int, height: int, token: str | None, **context_options: Any) -> LocalPage:
    from playwright.sync_api import Route

    context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
    if token is not None:
        context.add_cookies([{"name": TOKEN_COOKIE, "value": token, "domain": "127.0.0.1", "path": "/",
                              "httpOnly": True, "sameSite": "Strict"}])
    out = LocalPage(context.new_page(), context)

    def guard(route: Route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            out.external_requests.append(route.request.url)
            route.abort()

    def seen(request: Any) -> None:
        url = request.url
        out.requests.append(url)
        host = urlparse(url).hostname or ""
        if not url.startswith(("data:", "blob:")) and host not in LOCAL_HOSTS and url not in out.external_requests:
            out.external_requests.append(url)  # a worker's request, which the page's route does not see

    out.page.route("**/*", guard)
    context.on("request", seen)
    out.page.on("console", lambda m: out.console_errors.append(m.text) if m.type == "error" else None)
    out.page.on("pageerror", lambda e: out.console_errors.append(str(e)))
    return out


@contextmanager
def local_page(*, width: int = 1400, height: int = 900, token: str | None = None,
               **context_options: Any) -> Iterator[LocalPage]:
    """Headless Chromium with one page whose requests to any other host are blocked and recorded, as are its
    console errors and uncaught exceptions (for tests that click and type, where :func:`visit` only looks).
    ``token``: signed in with it (the sign-in cookie of ``/login``, for every port of this machine). Other keywords
    go to Playwright's ``new_context`` (a phone: ``is_mobile``, ``has_touch``, ``geolocation``, ``permissions``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield _open(browser, width=width, height=height, token=token, **context_options)
        finally:
            browser.close()


@contextmanager
def serve_in_thread(app: Any, port: int = 0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port for the duration of the block: a free one, or ``port``
    (a service started again where its clients left it)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def visit(url: str, *, screenshot: Path | None = None, width: int = 1400, height: int = 900,
          timeout_s: float = 60.0, token: str | None = None) -> VisitResult:
    """Load ``url`` in headless Chromium, wait until the network is idle, probe the Leaflet map."""
    result = VisitResult(url=url)
    with local_page(width=width, height=height, token=token) as tab:
        page = tab.page
        result.external_requests = tab.external_requests
        result.console_errors = tab.console_errors
        page.on("requestfailed", lambda r: result.failed_requests.append(f"{r.url} ({r.failure})"))
        started = time.perf_counter()
        response = page.goto(url, wait_until="networkidle", timeout=timeout_s * 1000)
        result.load_s = time.perf_counter() - started
        result.status = response.status if response else None
        wait_for_basemap(page)
        result.map = page.evaluate(_MAP_PROBE)
        # Blocked external requests also show up as failed; keep each problem in one list only.
        result.failed_requests = [f for f in result.failed_requests
                                  if not any(f.startswith(e) for e in result.external_requests)]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=False)
    return result


def wait_for_basemap(page: Any, *, timeout: float = 15_000) -> None:
    """Wait until the page's vector basemap has drawn its first view (``maps/static/basemap.js`` marks the page
    ``data-basemap="ready"``); at once for a page with none."""
    wait_for(page, "document.documentElement.dataset.basemap !== 'loading'", timeout=timeout)


def wait_for(page: Any, expression: str, *, timeout: float = 10_000) -> None:
    """Wait until ``expression`` is true in the page. Unlike Playwright's ``wait_for_function``, whose predicate
    the page compiles with ``eval``, this runs under the pages' Content-Security-Policy (no ``unsafe-eval``)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout / 1000:.0f} s: {expression}")
        time.sleep(0.05)
