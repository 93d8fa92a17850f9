"""The local Messages API server itself, as other tests and benchmarks rely on it: a call
that does not stream gets the message as JSON, an unscripted request a clear refusal."""

from __future__ import annotations

import anthropic
import pytest

from canopy.server.llm import ModelRequest

from .conftest import KEY
from .messages_server import MODEL, MessagesServer, reply

REQUEST = ModelRequest(model=MODEL, messages=({"role": "user", "content": "Route ticket 9"},))


async def test_a_call_that_does_not_stream_gets_json(messages: MessagesServer) -> None:
    messages.script(REQUEST, reply("shipping", latency=0.05), reply("billing"))
    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=messages.url, max_retries=0) as sdk:
        first = await sdk.messages.create(**REQUEST.to_json())
        second = await sdk.messages.create(**REQUEST.to_json())
        third = await sdk.messages.create(**REQUEST.to_json())
    texts = [
        block.text
        for answer in (first, second, third)
        for block in answer.content
        if block.type == "text"
    ]
    assert texts == ["shipping", "billing", "billing"]  # the last reply repeats
    assert (first.stop_reason, first.usage.input_tokens, first.model) == ("end_turn", 12, MODEL)
    assert messages.calls == 3
    assert messages.requests[0] == REQUEST.to_json()


async def test_an_unscripted_request_is_refused_naming_it(messages: MessagesServer) -> None:
    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=messages.url, max_retries=0) as sdk:
        with pytest.raises(anthropic.BadRequestError, match="no reply scripted for"):
            await sdk.messages.create(**REQUEST.to_json())
        messages.script(None, reply("anything"))
        answer = await sdk.messages.create(**REQUEST.to_json())
    assert [block.type for block in answer.content] == ["text"]
