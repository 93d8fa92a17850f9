"""Per-session rate limits: a token bucket for each bearer token, on every ``/api/`` request.

One misbehaving editor (a retry loop, a runaway script) must not starve the other sessions of
the same server, so each token gets its own bucket: ``rate`` requests per second on average,
with bursts of up to ``burst``. A request over the limit is answered 429 with ``Retry-After``
before its body is read. The table of buckets is bounded (least recently used tokens go first)
so that memory stays flat however many tokens a server sees; a forgotten token simply starts
again with a full bucket, which is what a token idle long enough would have anyway.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ..config import Settings
from .keys import PRINCIPAL
from .problems import Problem

__all__ = [
    "MAX_BUCKETS",
    "RATE_LIMITER",
    "RateLimiter",
    "add_rate_limits",
    "rate_limit_middleware",
]

MAX_BUCKETS: Final = 10_000
"""Tokens tracked at once; beyond it the least recently seen is forgotten."""


class RateLimiter:
    """Token buckets keyed by token id. Not thread-safe: one event loop serves an app."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_buckets: int = MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """token id -> (tokens left, when they were counted)."""

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one request of ``key``'s bucket: 0 when allowed, else the seconds until one
        request will be allowed again (nothing is spent then, so a refused client that waits
        that long gets through)."""
        now = self._clock()
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        return wait


RATE_LIMITER: Final = web.AppKey("rate_limiter", RateLimiter)
"""The app's own limiter: buckets are per server, never shared between apps."""


def add_rate_limits(app: web.Application, settings: Settings) -> None:
    """Give ``app`` a limiter configured by ``settings`` (its middleware is registered by the
    caller, right after authentication)."""
    app[RATE_LIMITER] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Charge the request to its token's bucket. Runs after authentication, so only requests
    that act for a token are limited: the public endpoints and the pod workers' link (which
    has its own backpressure) are not. A WebSocket counts once, when it opens."""
    principal = request.get(PRINCIPAL)
    if principal is not None:
        wait = request.app[RATE_LIMITER].take(principal.token_id)
        if wait > 0:
            raise Problem(
                429,
                "rate-limited",
                f"too many requests for this token; retry in {wait:.2f} s",
                title="Too many requests",
                headers={hdrs.RETRY_AFTER: str(max(1, math.ceil(wait)))},
            )
    return await handler(request)
