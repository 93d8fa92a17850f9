"""Calling a model again when it may answer later: exponential back-off with full jitter.

A rate limit (429), an overload (529), a 5xx or a timeout says "not now", not "never". Each
retry waits a random time up to ``base * 2**attempt`` (full jitter: many agents retrying
together spread out instead of hitting the provider in lock-step), never less than the
provider's own ``retry-after``, never more than ``max_delay``. Every retry is reported to the
caller first, so it is recorded before the wait begins.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from .model import LanguageModel, ModelError, ModelRequest, ModelResponse, TextSink

__all__ = ["RetryPolicy", "complete_with_retries"]

RetryReport = Callable[[int, float, ModelError], None]
"""Told (attempt number from 1, seconds it will wait, the error) before each retry."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a retryable failure is tried again."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, error: ModelError, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (from 1) after ``error``."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = rng.uniform(0, ceiling)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return min(wait, self.max_delay)


async def complete_with_retries(
    model: LanguageModel,
    request: ModelRequest,
    policy: RetryPolicy,
    *,
    on_text: TextSink | None = None,
    on_retry: RetryReport | None = None,
    rng: random.Random | None = None,
) -> ModelResponse:
    """``model.complete(request)``, retried by ``policy`` while the error is retryable; the
    last error is raised when retries run out or the error is final."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await model.complete(request, on_text)
        except ModelError as error:
            attempt += 1
            if not error.retryable or attempt > policy.max_retries:
                raise
            wait = policy.delay(attempt, error, rng)
            if on_retry is not None:
                on_retry(attempt, wait, error)
            await asyncio.sleep(wait)
