"""The intake rate limit: a token bucket per signed-in client, per worker process (approximate, documented)."""


from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from api.tokens import CurrentUser
from gis.access.scope import User
from gis.errors import RateLimitedError


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

    def refund(self, key: str) -> None:
        """Give back one request ``take`` spent (a sign-in that turned out right costs nothing)."""
        if self.rate > 0 and key in self._buckets:
            tokens, last = self._buckets[key]
            self._buckets[key] = (min(self.burst, tokens + 1.0), last)

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
