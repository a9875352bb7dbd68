"""Who is asking, and may they: tokens, roles, jurisdiction, the intake rate limit and the audit log.

Sign-in is OAuth2's password flow as FastAPI does it (``POST /token`` with a form, a bearer token back). The token
is a JWT (HS256) carrying the user's id and password version and expiring after ``Settings.token_minutes``; the
service's key lives in the database (``service_keys``) so every worker process checks the same way. Browsers
signing in on ``/login`` get the same token in an HttpOnly, SameSite=Strict cookie, so the map pages and their
scripts work without handling tokens.

Each request's user is read once from the token and then from a short cache (``USER_TTL_S``): a password reset or
a deactivation takes effect within that time on every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import jwt
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.engine import Connection, Engine

from api.settings import Settings
from gis.access import scope
from gis.access.scope import User
from gis.access.store import audit as audit_log
from gis.access.store import users
from gis.errors import ForbiddenError, NotFoundError, RateLimitedError, UnauthorizedError

log = logging.getLogger(__name__)

TOKEN_COOKIE = "gridpatrol_token"
USER_TTL_S = 5.0
MAX_CHECKED = 10_000  # tokens remembered as checked, per worker process (then forgotten all at once)
ALGORITHM = "HS256"

# who may do what, by role (an admin may do everything, everywhere it is bound)
VIEWERS = ("admin", "planner", "dispatcher", "grid_member", "leader")
"""Everyone but a department, which sees only the events escalated to it."""
PLANNERS = ("admin", "planner")
DISPATCHERS = ("admin", "dispatcher")
FIELD = ("admin", "grid_member")
HANDLERS = ("admin", "dispatcher", "grid_member", "department")

oauth2 = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False,
                              description="Sign in with POST /token (username, password); send the token back as "
                                          "`Authorization: Bearer …`.")


class Tokens:
    """Issue and check the service's tokens; the app keeps one (``app.state.tokens``)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self._key = settings.secret_key
        self.lifetime = timedelta(minutes=settings.token_minutes)
        self._cache: dict[int, tuple[float, User | None]] = {}
        self._checked: dict[str, tuple[int, int, float]] = {}  # token: (user id, password version, expiry)

    @property
    def key(self) -> str:
        """The signing key, read from the database on first use (so the service starts while it is down)."""
        if self._key is None:
            self._key = users.signing_key(self.engine)
        return self._key

    async def ready(self) -> None:
        if self._key is None:
            await run_in_threadpool(lambda: self.key)

    def issue(self, user: User) -> tuple[str, int]:
        now = datetime.now(UTC)
        claims = {"sub": str(user.id), "ver": user.password_version, "role": user.role, "iat": now,
                  "exp": now + self.lifetime}
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), int(self.lifetime.total_seconds())

    def _claims(self, token: str) -> tuple[int, int]:
        """The user id and password version a token was issued for. A token already checked is not checked
        again (a client sends the same one with every request; decoding it was a tenth of a report's cost in
        the service): only its expiry, from the remembered claims."""
        known = self._checked.get(token)
        if known is None:
            try:
                claims = jwt.decode(token, self.key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
                known = (int(claims["sub"]), int(claims.get("ver", 0)), float(claims["exp"]))
            except jwt.ExpiredSignatureError:
                raise UnauthorizedError("the token has expired: sign in again (POST /token)") from None
            except (jwt.InvalidTokenError, ValueError, TypeError):
                raise UnauthorizedError("the token is not valid: sign in again (POST /token)") from None
            if len(self._checked) >= MAX_CHECKED:
                self._checked.clear()
            self._checked[token] = known
        if known[2] <= time.time():
            del self._checked[token]
            raise UnauthorizedError("the token has expired: sign in again (POST /token)")
        return known[0], known[1]

    async def user(self, token: str) -> User:
        await self.ready()
        user_id, version = self._claims(token)
        cached = self._cache.get(user_id)
        if cached is None or cached[0] < time.monotonic():
            found = await run_in_threadpool(users.get_user, self.engine, user_id)
            cached = (time.monotonic() + USER_TTL_S, found)
            self._cache[user_id] = cached
        user = cached[1]
        if user is None or not user.active or user.password_version != version:
            raise UnauthorizedError("the token no longer holds (password changed or account disabled): sign in again")
        return user


def sign_in_redirect(request: Request) -> RedirectResponse:
    """A browser opening a page without signing in: to the sign-in form, and back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_user(request: Request, token: Annotated[str | None, Depends(oauth2)] = None) -> User:
    """The signed-in user, from the bearer token or the sign-in cookie; 401 without one."""
    token = token or request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise UnauthorizedError("sign in first: POST /token with your username and password, then send "
                                "`Authorization: Bearer <token>`")
    user = await request.app.state.tokens.user(token)
    request.state.user = user
    return user


def allow(*roles: str) -> Callable[..., Awaitable[User]]:
    """A dependency: the signed-in user, when their role is one of ``roles`` (an admin always is); else 403."""
    wanted = set(roles) | {"admin"}

    async def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in wanted:
            raise ForbiddenError(f"a {user.role} may not do this; it is for: {', '.join(sorted(wanted))}")
        return user

    return check


CurrentUser = Annotated[User, Depends(current_user)]
Viewer = Annotated[User, Depends(allow(*VIEWERS))]
Planner = Annotated[User, Depends(allow(*PLANNERS))]
Dispatcher = Annotated[User, Depends(allow(*DISPATCHERS))]
FieldMember = Annotated[User, Depends(allow(*FIELD))]
Handler = Annotated[User, Depends(allow(*HANDLERS))]


def outside(code: str) -> ForbiddenError:
    return ForbiddenError(f"{code} lies outside your jurisdiction")


def require_city(user: User, city_id: int) -> None:
    """403 unless the city is the user's (or the user is bound to every city)."""
    if user.scope.city_id is not None and user.scope.city_id != city_id:
        raise ForbiddenError("that city lies outside your jurisdiction")


def require_code(db: Engine | Connection, user: User, code: str) -> None:
    """403 unless the grid or unit ``code`` lies inside the user's jurisdiction (an unknown code passes: the
    endpoint answers 404 for it, as it would for anyone)."""
    scope = user.scope
    if scope.everywhere:
        return
    if scope.prefix is not None:
        if not code.startswith(scope.prefix):
            raise outside(code)
        return
    if isinstance(db, Engine):
        with db.connect() as conn:
            found = users.unit_by_code(conn, code)
    else:
        found = users.unit_by_code(db, code)
    if found is not None and found[1] != scope.city_id:
        raise outside(code)


async def require_code_async(engine: Engine, user: User, code: str) -> None:
    """:func:`require_code` from async code: the database only when a city-level user needs it."""
    if user.scope.city_id is not None and user.scope.prefix is None:
        await run_in_threadpool(require_code, engine, user, code)
    else:
        require_code(engine, user, code)


def narrow(user: User, code: str | None) -> str | None:
    """The code prefix a list is filtered on: the one asked for when it lies inside the jurisdiction, else the
    jurisdiction's own; 403 for a code outside."""
    try:
        return user.scope.narrow(code)
    except scope.NotInScope:
        raise outside(str(code)) from None


def event_in_scope(conn: Connection, user: User, event_id: int) -> None:
    """404 unless the event lies in the user's jurisdiction (a department: unless it went or was escalated to
    it). 404, not 403: whether an event exists elsewhere is not the caller's business."""
    row = conn.exec_driver_sql(
        "SELECT e.city_id, coalesce(e.grid_code, su.code), e.department_code, e.level, e.queue "
        "FROM events e LEFT JOIN admin_units su ON su.id = e.street_id WHERE e.id = %(i)s", {"i": event_id}).first()
    if row is None or not event_visible(user, *row):
        raise NotFoundError(f"no event {event_id}")


def event_visible(user: User, city_id: int | None, code: str | None, department: str | None, level: str,
                  queue: str) -> bool:
    if user.role == "department":
        return department == user.department and (level == "department" or queue == "department") \
            and user.scope.covers(city_id, code)
    return user.scope.covers(city_id, code)


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second on average, bursts of ``burst``. Per worker process
    (with N workers a client may reach N × rate): an approximation that keeps one runaway client from starving
    the others, not an exact quota."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> None:
        """Spend one request of ``key``'s allowance, or :class:`RateLimitedError` when there is none left."""
        self._spend(key, 1.0)

    def check(self, key: str) -> None:
        """:class:`RateLimitedError` when ``key`` has no allowance left; spends nothing."""
        self._spend(key, 0.0)

    def _spend(self, key: str, cost: float) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            raise RateLimitedError(f"too many requests from this client: at most {self.rate:g} a second "
                                   f"(bursts of {self.burst:g}); retry in {wait:.1f} s", wait)
        self._buckets[key] = (tokens - cost, now)
        if len(self._buckets) > 100_000:  # forget idle clients
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}


async def intake_limit(request: Request, user: CurrentUser) -> User:
    """The signed-in user, unless their client has sent reports faster than the intake rate (429)."""
    request.app.state.intake_limiter.take(f"user:{user.id}")
    return user


Reporter = Annotated[User, Depends(intake_limit)]


class AuditLog:
    """The audit log's writer: lines are queued by the request and written in batches, off the request path
    (``flush_every_s``), and on shutdown. A line is lost only if the process is killed within that time."""

    def __init__(self, engine: Engine, flush_every_s: float = 0.2) -> None:
        self.engine = engine
        self.every = flush_every_s
        self.queue: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    def add(self, user: User | None, action: str, **fields: Any) -> None:
        self.queue.append({"username": user.username if user else None, "role": user.role if user else None,
                           "action": action, **fields})

    def flush(self) -> None:
        batch = []
        while self.queue:
            batch.append(self.queue.popleft())
        if batch:
            try:
                audit_log.audit(self.engine, batch)
            except Exception:  # the database may be restarting: keep the lines for the next round
                self.queue.extendleft(reversed(batch))
                raise

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await asyncio.to_thread(self.flush)
            except Exception as exc:
                log.warning("audit log write failed (will retry): %s", exc)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.flush)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class AuditMiddleware:
    """Every request that changes something (any method but GET, HEAD, OPTIONS) goes into the audit log with its
    user, path, status and what it created (the ``Location`` it answered with) — refused ones too."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[..., Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        seen: dict[str, Any] = {"status": None, "location": None}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"location":
                        seen["location"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            app = scope.get("app")
            audit = getattr(getattr(app, "state", None), "audit", None)
            if audit is not None:
                state = scope.get("state") or {}
                client = scope.get("client")
                audit.add(state.get("user"), "change", method=scope["method"], path=scope["path"],
                          status=seen["status"] or 500, subject=seen["location"] or scope["path"],
                          client=client[0] if client else None)
