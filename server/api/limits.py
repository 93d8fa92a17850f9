"""What one request may cost: a rate and a number of open requests per bearer token, and a
deadline for its body.

Per-session rate limits: a token bucket for each bearer token, on every ``/api/`` request.

One misbehaving editor (a retry loop, a runaway script) must not starve the other sessions of
the same server, so each token gets its own bucket: ``rate`` requests per second on average,
with bursts of up to ``burst``. A request over the limit is answered 429 with ``Retry-After``
before its body is read. The table of buckets is bounded (least recently used tokens go first)
so that memory stays flat however many tokens a server sees; a forgotten token simply starts
again with a full bucket, which is what a token idle long enough would have anyway.

A rate says nothing of how long requests stay open: a WebSocket, a long poll or a body sent a
byte at a time each hold a socket while costing one request. So each token may also hold at
most ``max_connections_per_token`` requests open at once (an open WebSocket counts for its whole
life); one more is answered 429 naming the cap, and the counts of a token vanish with its last
open request. And a body must arrive whole within ``body_timeout`` seconds of its head: it is
read here, before the handler, and cached by aiohttp for it (handlers read bodies whole anyway,
within ``max_request_bytes``); a late one is answered 408 and its connection closed.

Sentry's ingestion routes act for a DSN key rather than a token, and are limited per key the
same way: a key ships inside applications, so anyone may hold it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ..config import Settings
from .keys import PRINCIPAL, SENTRY_SOURCE, SETTINGS
from .problems import Problem

__all__ = [
    "MAX_BUCKETS",
    "OPEN_REQUESTS",
    "RATE_LIMITER",
    "RateLimiter",
    "add_rate_limits",
    "body_deadline_middleware",
    "open_requests_middleware",
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
OPEN_REQUESTS: Final = web.AppKey[Counter[str]]("open_requests")
"""Requests open per token id; a token with none has no entry."""


def add_rate_limits(app: web.Application, settings: Settings) -> None:
    """Give ``app`` a limiter configured by ``settings`` and its count of open requests (the
    middlewares are registered by the caller, right after authentication)."""
    app[RATE_LIMITER] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app[OPEN_REQUESTS] = Counter()


def _charged(request: web.Request) -> tuple[str, str] | None:
    """Whom the request is charged to, and what that is called: its token, its Sentry DSN
    key, or nobody."""
    principal = request.get(PRINCIPAL)
    if principal is not None:
        return principal.token_id, "token"
    source = request.get(SENTRY_SOURCE)
    return None if source is None else (f"sentry:{source.key}", "Sentry key")


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Charge the request to its token's (or Sentry key's) bucket. Runs after authentication,
    so only requests that act for one are limited: the public endpoints and the pod workers'
    link (which has its own backpressure) are not. A WebSocket counts once, when it opens."""
    charged = _charged(request)
    if charged is not None:
        wait = request.app[RATE_LIMITER].take(charged[0])
        if wait > 0:
            raise Problem(
                429,
                "rate-limited",
                f"too many requests for this {charged[1]}; retry in {wait:.2f} s",
                title="Too many requests",
                headers={hdrs.RETRY_AFTER: str(max(1, math.ceil(wait)))},
            )
    return await handler(request)


@web.middleware
async def open_requests_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold one of the token's ``max_connections_per_token`` slots while the request is open
    (a WebSocket until it closes). Like the rate limit, only requests acting for a token (or
    a Sentry key) count."""
    charged = _charged(request)
    if charged is None:
        return await handler(request)
    key, what = charged
    cap = request.app[SETTINGS].max_connections_per_token
    open_requests = request.app[OPEN_REQUESTS]
    if open_requests[key] >= cap:
        raise Problem(
            429,
            "too-many-connections",
            f"this {what} already holds {cap} open requests (WebSockets included), the most"
            " allowed (max_connections_per_token); close some or retry later",
            title="Too many open requests",
            headers={hdrs.RETRY_AFTER: "1"},
            limit=cap,
        )
    open_requests[key] += 1
    try:
        return await handler(request)
    finally:
        open_requests[key] -= 1
        if open_requests[key] <= 0:
            del open_requests[key]


@web.middleware
async def body_deadline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body within ``body_timeout`` seconds, else answer 408 and close the
    connection (what is left of the body would otherwise be read as the next request). Too
    large a body is still aiohttp's 413, raised by the read. A request that no route takes is
    refused without reading its body."""
    if request.body_exists and request.match_info.http_exception is None:
        timeout = request.app[SETTINGS].body_timeout
        try:
            async with asyncio.timeout(timeout):
                await request.read()
        except TimeoutError:
            late = Problem(
                408,
                "request-timeout",
                f"the request body did not arrive within {timeout:g} s (body_timeout)",
            )
            response = late.response()
            response.force_close()
            return response
    return await handler(request)
