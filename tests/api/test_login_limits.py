"""Password guessing (issue 18, item 4): the allowance is spent before the password is checked, per client and per
username, and only so many checks run at once. Before, about 40 parallel guesses all passed the check first."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from api.app import create_app
from api.settings import Settings
from maps.browser import serve_in_thread
from tests.conftest import ADMIN, PASSWORD


@pytest.fixture
def served(fresh_url: str) -> Iterator[str]:
    # ten wrong passwords, then one try an hour: what the tests count does not depend on how fast Argon2 runs on a
    # busy machine (at the default of one try every 2 s, ten slow guesses earn an eleventh)
    with serve_in_thread(create_app(Settings(database_url=fresh_url, sign_in_every_s=3600))) as base:
        yield base


def _guess(base: str, password: str, *, source: str = "127.0.0.1", username: str = ADMIN) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=60) as client:
        return client.post(f"{base}/token", data={"username": username, "password": password}).status_code


def test_parallel_guesses_from_one_client_get_only_the_burst(served: str) -> None:
    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(lambda i: _guess(served, f"wrong password {i}", username=f"someone{i}"), range(40)))
    assert codes.count(401) == 10 and codes.count(429) == 30  # the burst of ten, then refused unchecked


def test_one_username_is_limited_whatever_address_guesses(served: str) -> None:
    codes = [_guess(served, f"wrong password {i}", source=f"127.0.0.{i + 2}") for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    assert _guess(served, "wrong password", username="someone-else", source="127.0.0.40") == 401


def test_a_right_password_costs_no_allowance(served: str) -> None:
    assert [_guess(served, PASSWORD) for _ in range(15)] == [200] * 15
