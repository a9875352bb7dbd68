"""Sign-in: the service's tokens and the signed-in user of a request.

Sign-in is OAuth2's password flow as FastAPI does it (``POST /token`` with a form, a bearer token back). The token
is a JWT (HS256) carrying the user's id and password version and expiring after ``Settings.token_minutes``; the
service's key lives in the database (``service_keys``) so every worker process checks the same way. Browsers
signing in on ``/login`` get the same token in an HttpOnly, SameSite=Strict cookie, so the map pages and their
scripts work without handling tokens.

Each request's user is read once from the token and then from a short cache (``USER_TTL_S``): a password reset or
a deactivation takes effect within that time on every worker.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import jwt
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from api.session import TOKEN_COOKIE
from api.settings import Settings
from gis.access.scope import User
from gis.access.store import users
from gis.db.engine import make_engine, reading, writing
from gis.errors import ForbiddenError, UnauthorizedError

log = logging.getLogger(__name__)

USER_TTL_S = 5.0
CHECK_CONNECTIONS = 2
"""The sign-in check's own connections per database (:meth:`Tokens.own`): a check is one primary-key read, once per
user every :data:`USER_TTL_S` per worker."""


MAX_CHECKED = 10_000  # tokens remembered as checked, per worker process (then forgotten all at once)


ALGORITHM = "HS256"


SCREEN_ROLE = "screen"
SCREEN_PATHS = ("/screen", "/basemap.json", "/tiles/basemap/", "/me")
"""What a screen account may read: the big screen, its data, and the basemap under it (a path equal to one of these
or under it)."""


oauth2 = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False,
                              description="Sign in with POST /token (username, password); send the token back as "
                                          "`Authorization: Bearer …`.")


class Tokens:
    """Issue and check the service's tokens; the app keeps one (``app.state.tokens``)."""

    def __init__(self, engine: Engine, settings: Settings, reads: Callable[[], Engine] | None = None) -> None:
        self.engine = engine
        self._reads = reads
        self._key = settings.secret_key
        self.lifetime = timedelta(minutes=settings.token_minutes)
        self.screen_lifetime = timedelta(days=settings.screen_token_days)
        self._cache: dict[int, tuple[float, User | None]] = {}
        self._checked: dict[str, tuple[int, int, float]] = {}  # token: (user id, password version, expiry)
        self._own: dict[str, Engine] = {}
        self._own_lock = threading.Lock()

    def reads(self) -> Engine:
        """Where a user's record is read from: a replica when the service has them (``gis.db.replicas``), else
        the engine; through the sign-in check's own connections (:meth:`own`)."""
        return self.own(self._reads() if self._reads is not None else self.engine)

    def own(self, engine: Engine) -> Engine:
        """The sign-in check's own small pool to ``engine``'s database. A request's connection is taken before its
        user is checked (a route's dependencies in their order), so a check waiting on the requests' pool could
        wait for ever: with every connection held by a request waiting for its check, none comes back (it was
        seen under load: every request stalled for the pool's 30 s timeout, then answered 500, each time the
        users' cache expired). The check holds no other connection while it waits for one of these."""
        url = engine.url.render_as_string(hide_password=False)
        with self._own_lock:  # the signing key is first read in a worker thread
            found = self._own.get(url)
            if found is None:
                found = self._own[url] = make_engine(url, connections=CHECK_CONNECTIONS)
                # what ``engine`` is told of its errors, this is told too: a lost replica is left out of the reads
                # at once (gis.db.replicas), whichever pool met the loss
                event.listen(found, "handle_error", _told_to(engine))
        return found

    def close(self) -> None:
        """Close the sign-in check's connections."""
        for engine in self._own.values():
            engine.dispose()
        self._own.clear()

    @property
    def key(self) -> str:
        """The signing key, read from the database on first use (so the service starts while it is down)."""
        if self._key is None:
            # from a replica when there is one (a service started during a failover still checks tokens)
            self._key = reading(self.reads(), users.known_signing_key) or writing(self.own(self.engine),
                                                                                  users.signing_key)
        return self._key

    async def ready(self) -> None:
        if self._key is None:
            await run_in_threadpool(lambda: self.key)

    def issue(self, user: User) -> tuple[str, int]:
        now = datetime.now(UTC)
        lifetime = self.screen_lifetime if user.role == SCREEN_ROLE else self.lifetime
        # jti (RFC 7519): each sign-in its own token, even two in the same second (``iat`` counts whole seconds);
        # a token names one session, whose changes steer its own reads (api.consistency), not another's
        claims = {"sub": str(user.id), "ver": user.password_version, "role": user.role, "iat": now,
                  "exp": now + lifetime, "jti": secrets.token_urlsafe(9)}
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), int(lifetime.total_seconds())

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
            try:
                found = await run_in_threadpool(reading, self.reads(), users.get_user, user_id)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                log.warning("sign-in check: the connection was lost (%s): asked again", str(exc.orig).strip())
                # the replica's connection was lost (it restarts to follow a new primary): the router has left it
                # out, so asking again goes elsewhere; a change (a POST) must not fail for its sign-in check
                found = await run_in_threadpool(reading, self.reads(), users.get_user, user_id)
            if found is None or found.password_version < version:  # a replica not yet holding a new account or
                found = await run_in_threadpool(reading, self.own(self.engine), users.get_user,  # password
                                                user_id)
            cached = (time.monotonic() + USER_TTL_S, found)
            self._cache[user_id] = cached
        user = cached[1]
        if user is None or not user.active or user.password_version != version:
            raise UnauthorizedError("the token no longer holds (password changed or account disabled): sign in again")
        return user


def _told_to(engine: Engine) -> Callable[[Any], None]:
    """A ``handle_error`` listener passing the error on to ``engine``'s own listeners."""
    def tell(context: Any) -> None:
        for listener in engine.dialect.dispatch.handle_error:
            listener(context)
    return tell


def sign_in_redirect(request: Request) -> RedirectResponse:
    """A browser opening a page without signing in: to the sign-in form, and back here afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def current_user(request: Request, token: Annotated[str | None, Depends(oauth2)] = None) -> User:
    """The signed-in user, from the bearer token or the sign-in cookie; 401 without one."""
    token = token or request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise UnauthorizedError("sign in first: POST /token with your username and password, then send "
                                "`Authorization: Bearer <token>`")
    user = await request.app.state.tokens.user(token)
    if user.role == SCREEN_ROLE and not screen_may_read(request.url.path):
        raise ForbiddenError("a screen account reads the big screen only (/screen)")
    request.state.user = user
    return user


def screen_may_read(path: str) -> bool:
    """Whether a screen account may ask for ``path`` (:data:`SCREEN_PATHS`)."""
    return any(path == p.rstrip("/") or path.startswith(p if p.endswith("/") else p + "/") for p in SCREEN_PATHS)


CurrentUser = Annotated[User, Depends(current_user)]
