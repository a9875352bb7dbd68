"""Signing in: OAuth2 password flow for programs (``POST /token``), a form and a cookie for browsers (``/login``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.engine import Connection

from api.deps import client_of
from api.roles import allow
from api.schemas import Me, documented
from api.session import TOKEN_COOKIE
from api.tokens import CurrentUser
from gis.access.scope import User
from gis.access.store import audit as audit_store
from gis.access.store import users
from gis.db.engine import reading, writing
from gis.errors import InputError, RateLimitedError, UnauthorizedError
from gis.planning.store.staff import staff_grids
from maps.text import page_text

router = APIRouter(tags=["access"])
Admin = Annotated[User, Depends(allow("admin"))]


MAX_HASHING = max(2, os.cpu_count() or 2)
"""Password checks (Argon2id: ~50 ms of a core and 64 MiB each) run at most this many at a time per worker."""
MAX_WAITING = 64
"""Sign-ins waiting for a check beyond this are refused at once (429): a flood queues no further."""


async def _sign_in(request: Request, username: str, password: str,
                   check: Callable[..., User | None] = users.authenticate) -> tuple[User, str, int]:
    """Each attempt spends from its client's and its username's allowance *before* the password is checked (so
    parallel guesses cannot all pass the check first); a right password gives both back. ``check`` is the
    password check, or the first sign-in's setup-code check."""
    state = request.app.state
    client = client_of(request)
    keys = (f"login:{client}", f"login-user:{username.strip().lower()[:64]}")
    for i, key in enumerate(keys):
        try:
            state.login_limiter.take(key)
        except RateLimitedError:
            for spent in keys[:i]:
                state.login_limiter.refund(spent)
            state.audit.add(None, "sign_in_limited", subject=f"user {username[:64]}", client=client)
            raise
    hashing: asyncio.Semaphore = state.login_hashing
    if state.login_waiting >= MAX_WAITING:
        raise RateLimitedError("too many sign-ins at once: retry in a second", 1.0)
    state.login_waiting += 1
    try:
        async with hashing:
            user = await run_in_threadpool(writing, state.engine, check, username, password)
    finally:
        state.login_waiting -= 1
    if user is None:
        state.audit.add(None, "sign_in_failed", subject=f"user {username[:64]}", client=client)
        raise UnauthorizedError("wrong username or password")
    for key in keys:
        state.login_limiter.refund(key)
    await state.tokens.ready()
    token, seconds = state.tokens.issue(user)
    state.audit.add(user, "sign_in", subject=f"user {user.username}", client=client)
    return user, token, seconds


@router.post("/token", summary="Sign in (OAuth2 password flow): a bearer token for the other endpoints",
             responses={401: {"description": "wrong username or password"},
                        429: {"description": "too many attempts from this client"}})
async def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, Any]:
    user, access, seconds = await _sign_in(request, form.username, form.password)
    return {"access_token": access, "token_type": "bearer", "expires_in": seconds, "user": user.as_dict()}


@router.get(
    "/me",
    summary="Who the token belongs to: role, unit, staff record, and the grids they work in",
    response_model=None,
    responses=documented(Me),
)
async def me(request: Request, user: CurrentUser) -> dict[str, Any]:
    """``grids``: the staff record's grids with the duty in each (a grid member's page opens on the first), or the
    user's own grid when bound to one."""
    return {**user.as_dict(), "grids": await run_in_threadpool(reading, request.app.state.engine, _grids_of, user)}


def _grids_of(conn: Connection, user: User) -> list[dict[str, str]]:
    rows = staff_grids(conn, user.staff_id) if user.staff_id is not None else []
    grids = [{"code": c, "duty": d} for c, d in rows if user.scope.covers(user.scope.city_id, c)]
    if not grids and user.scope.level == "grid" and user.unit_code:
        grids = [{"code": user.unit_code, "duty": "member"}]
    return grids


def _safe_next(target: str | None) -> str:
    """Only a path on this service (never another site): ``/leaders?unit=…`` yes, ``//evil`` or ``http:`` no."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


LOGIN_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>gridpatrol · 登录 Sign in</title>
<style>body{{font:18px system-ui,sans-serif;background:#fff;color:#111;max-width:24rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:1rem 0 .3rem;font-weight:600}}input{{font-size:1.1rem;width:100%;padding:.7rem;
box-sizing:border-box;border:2px solid #333;border-radius:6px}}button{{margin-top:1.4rem;width:100%;padding:.9rem;
font-size:1.1rem;font-weight:700;background:#0b4f9c;color:#fff;border:0;border-radius:6px}}
.error{{background:#fde8e8;border:2px solid #b00020;padding:.7rem;border-radius:6px}}</style></head><body>
<h1>gridpatrol</h1>{error}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<label for="u">用户名 Username</label><input id="u" name="username" autocomplete="username" required autofocus>
<label for="p">密码 Password</label><input id="p" name="password" type="password" autocomplete="current-password"
required><button type="submit">登录 Sign in</button></form></body></html>"""


def login_page(next_: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    box = f'<p class="error" role="alert">{page_text(error)}</p>' if error else ""
    return HTMLResponse(LOGIN_PAGE.format(error=box, next=page_text(_safe_next(next_))), status_code=status)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(next: Annotated[str, Query(max_length=2000)] = "/") -> HTMLResponse:
    return login_page(next)


@router.post("/login", include_in_schema=False)
async def login(request: Request, username: Annotated[str, Form(max_length=200)],
                password: Annotated[str, Form(max_length=1024)],
                next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    try:
        _, access, seconds = await _sign_in(request, username, password)
    except UnauthorizedError as exc:
        return login_page(next, f"{exc} · 用户名或密码错误", status=401)
    return _signed_in(request, access, seconds, _safe_next(next))


def _signed_in(request: Request, access: str, seconds: int, target: str) -> Response:
    """On to ``target`` with the sign-in cookie."""
    answer = RedirectResponse(target, status_code=303)
    answer.set_cookie(TOKEN_COOKIE, access, max_age=seconds, httponly=True, samesite="strict", path="/",
                      secure=request.url.scheme == "https")  # over TLS, never sent in the clear
    return answer


FIRST_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>gridpatrol · 首次登录 First sign-in</title>
<style>body{{font:18px system-ui,sans-serif;background:#fff;color:#111;max-width:24rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:1rem 0 .3rem;font-weight:600}}input{{font-size:1.1rem;width:100%;padding:.7rem;
box-sizing:border-box;border:2px solid #333;border-radius:6px}}button{{margin-top:1.4rem;width:100%;padding:.9rem;
font-size:1.1rem;font-weight:700;background:#0b4f9c;color:#fff;border:0;border-radius:6px}}
.error{{background:#fde8e8;border:2px solid #b00020;padding:.7rem;border-radius:6px}}</style></head><body>
<h1>首次登录 First sign-in</h1><p>用发给您的设置码设定密码。Set your password with the setup code you were given.</p>
{error}<form method="post" action="/first-sign-in">
<label for="u">用户名 Username</label><input id="u" name="username" autocomplete="username" required autofocus>
<label for="c">设置码 Setup code</label><input id="c" name="code" autocomplete="one-time-code" required>
<label for="p">新密码 New password (≥ 8)</label><input id="p" name="password" type="password" minlength="8"
autocomplete="new-password" required><button type="submit">设定密码并登录 Set password and sign in</button>
</form></body></html>"""


def first_page(error: str | None = None, status: int = 200) -> HTMLResponse:
    box = f'<p class="error" role="alert">{page_text(error)}</p>' if error else ""
    return HTMLResponse(FIRST_PAGE.format(error=box), status_code=status)


@router.get("/first-sign-in", response_class=HTMLResponse, include_in_schema=False)
async def first_sign_in_form() -> HTMLResponse:
    return first_page()


@router.post("/first-sign-in", summary="First sign-in of a user made from a staff register: set the password with "
             "the one-time setup code", responses={401: {"description": "wrong username or code, or code expired"},
                                                  422: {"description": "password too short"}})
async def first_sign_in(request: Request, username: Annotated[str, Form(max_length=200)],
                        code: Annotated[str, Form(max_length=200)],
                        password: Annotated[str, Form(max_length=1024)]) -> Response:
    """A form post (the page at ``GET /first-sign-in``); the answer signs the user in, as ``/login`` does."""
    def check(conn: Connection, name: str, _: str) -> User | None:
        return users.set_first_password(conn, name, code, password)
    try:
        _, access, seconds = await _sign_in(request, username, password, check)
    except UnauthorizedError:
        return first_page("wrong username or setup code, or the code has expired (ask for a new one) · "
                          "用户名或设置码错误，或设置码已过期", status=401)
    except InputError as exc:
        return first_page(str(exc), status=422)
    return _signed_in(request, access, seconds, "/")


@router.post("/logout", include_in_schema=False)
async def logout() -> Response:
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(TOKEN_COOKIE, path="/")
    # what the browser kept of this user: the member page's cached answers and outbox too
    answer.headers["Clear-Site-Data"] = '"cache", "storage"'
    return answer


@router.get("/audit", summary="The audit log (admins): changes, reads of personal data, sign-ins")
async def audit_log(request: Request, _: Admin,
                    subject: Annotated[str | None, Query(max_length=200, description="e.g. 'event 12'")] = None,
                    username: Annotated[str | None, Query(max_length=64)] = None,
                    limit: Annotated[int, Query(ge=1, le=audit_store.MAX_AUDIT_LINES)] = 100) -> list[dict[str, Any]]:
    await run_in_threadpool(request.app.state.audit.flush)
    return await run_in_threadpool(reading, request.app.state.engine, audit_store.audit_entries, subject=subject,
                                   username=username, limit=limit)
