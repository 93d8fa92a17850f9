"""Retries of a real model against the local Messages API server: a rate limit is waited out,
a refusal is final, and retries that run out raise the last error."""

from __future__ import annotations

import random

import pytest

from canopy.server.llm import ModelError, ModelRequest
from canopy.server.llm.anthropic_model import AnthropicModel
from canopy.server.llm.retry import RetryPolicy, complete_with_retries

from .messages_server import MODEL, MessagesServer, error, reply

REQUEST = ModelRequest(model=MODEL, messages=({"role": "user", "content": "Route ticket 12"},))
FAST = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=5.0)

Retries = list[tuple[int, float, ModelError]]


async def test_a_rate_limit_is_waited_out_then_answered(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    limited = error(429, "rate_limit_error", "Slow down.", headers={"retry-after": "1"})
    messages.script(REQUEST, limited, reply("billing"))
    retries: Retries = []
    pieces: list[str] = []
    response = await complete_with_retries(
        anthropic_model,
        REQUEST,
        FAST,
        on_text=pieces.append,
        on_retry=lambda *told: retries.append(told),
        rng=random.Random(7),
    )
    assert response.text == "".join(pieces) == "billing"
    assert messages.calls == 2
    [(attempt, wait, cause)] = retries
    assert attempt == 1
    assert wait >= 1.0
    assert (cause.status, cause.retry_after) == (429, 1.0)


async def test_a_refusal_is_not_retried(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    messages.script(
        REQUEST, error(400, "invalid_request_error", "max_tokens: too large"), reply("x")
    )
    retries: Retries = []
    with pytest.raises(ModelError) as raised:
        await complete_with_retries(
            anthropic_model, REQUEST, FAST, on_retry=lambda *told: retries.append(told)
        )
    assert raised.value.status == 400
    assert "max_tokens: too large" in raised.value.reason
    assert (messages.calls, retries) == (1, [])


async def test_retries_that_run_out_raise_the_last_error(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    messages.script(
        REQUEST,
        error(529, "overloaded_error", "Overloaded (1)", headers={"retry-after": "0"}),
        error(503, "api_error", "Unavailable (2)", headers={"retry-after": "0"}),
        error(529, "overloaded_error", "Overloaded (3)", headers={"retry-after": "0"}),
    )
    retries: Retries = []
    policy = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.01)
    with pytest.raises(ModelError) as raised:
        await complete_with_retries(
            anthropic_model, REQUEST, policy, on_retry=lambda *told: retries.append(told)
        )
    assert messages.calls == 3
    assert raised.value.status == 529
    assert "Overloaded (3)" in raised.value.reason
    assert [attempt for attempt, _, _ in retries] == [1, 2]
    assert [cause.status for _, _, cause in retries] == [529, 503]
    assert all(0 <= wait <= 0.01 for _, wait, _ in retries)
