"""What every :class:`~canopy.server.llm.LanguageModel` does, run against each of them: the
offline model from a fixture file, the Anthropic model against a local Messages API server."""

from __future__ import annotations

import asyncio

import pytest

from canopy.server.llm import ModelRequest, ToolCall, ToolSpec, Usage

from ..conftest import WAIT
from .conftest import Answer, Harness
from .messages_server import MODEL

QUESTION = ModelRequest(
    model=MODEL,
    messages=({"role": "user", "content": "Which queue should ticket 4411 go to?"},),
    system="You route support tickets.",
)
LOOKUP = ToolSpec(
    name="lookup_order",
    description="Find an order by its number.",
    input_schema={"type": "object", "properties": {"order": {"type": "string"}}},
)


async def test_a_text_answer(harness: Harness) -> None:
    harness.answer(QUESTION, Answer("It belongs in the billing queue."))
    response = await harness.model().complete(QUESTION)
    assert response.text == "It belongs in the billing queue."
    assert response.model == MODEL
    assert response.stop_reason == "end_turn"
    assert response.tool_calls == ()
    assert response.content == ({"type": "text", "text": "It belongs in the billing queue."},)


async def test_streamed_pieces_reach_on_text_and_join_to_the_text(harness: Harness) -> None:
    text = "The ticket mentions a double charge, so billing should take it."
    harness.answer(QUESTION, Answer(text))
    pieces: list[str] = []
    response = await harness.model().complete(QUESTION, on_text=pieces.append)
    assert len(pieces) > 1
    assert "".join(pieces) == response.text == text


async def test_a_tool_use_answer_has_its_calls_and_content_blocks(harness: Harness) -> None:
    request = ModelRequest(
        model=MODEL,
        messages=({"role": "user", "content": "Where is order A-17?"},),
        tools=(LOOKUP,),
    )
    call = ToolCall("toolu_01", "lookup_order", {"order": "A-17", "fields": ["status", "eta"]})
    harness.answer(request, Answer("Let me look that up.", tool_calls=(call,)))
    pieces: list[str] = []
    response = await harness.model().complete(request, on_text=pieces.append)
    assert response.stop_reason == "tool_use"
    assert response.tool_calls == (call,)
    assert response.text == "".join(pieces) == "Let me look that up."
    assert response.content == (
        {"type": "text", "text": "Let me look that up."},
        {
            "type": "tool_use",
            "id": "toolu_01",
            "name": "lookup_order",
            "input": {"order": "A-17", "fields": ["status", "eta"]},
        },
    )


async def test_usage_is_the_providers_count(harness: Harness) -> None:
    harness.answer(QUESTION, Answer("billing", usage=Usage(321, 45)))
    response = await harness.model().complete(QUESTION)
    assert response.usage == Usage(321, 45)


async def test_a_stop_sequence_ends_the_answer(harness: Harness) -> None:
    request = ModelRequest(
        model=MODEL,
        messages=({"role": "user", "content": "List the queues, one per line."},),
        stop_sequences=("\n\n", "END"),
    )
    harness.answer(request, Answer("billing\nshipping", stop_reason="stop_sequence"))
    response = await harness.model().complete(request)
    assert (response.text, response.stop_reason) == ("billing\nshipping", "stop_sequence")


async def test_a_call_cancelled_mid_stream_is_given_up(harness: Harness) -> None:
    text = "Routing this one needs a careful look at the whole conversation first."
    harness.answer(QUESTION, Answer(text, slow=True))
    first = asyncio.Event()
    pieces: list[str] = []

    def received(piece: str) -> None:
        pieces.append(piece)
        first.set()

    call = asyncio.create_task(harness.model().complete(QUESTION, on_text=received))
    async with asyncio.timeout(WAIT):
        await first.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await harness.abandoned()
    assert pieces
    assert "".join(pieces) != text


async def test_the_same_request_has_the_same_fingerprint_and_answer(harness: Harness) -> None:
    written_once = ModelRequest(
        model=MODEL,
        messages=({"role": "user", "content": [{"type": "text", "text": "Route ticket 7"}]},),
        temperature=0.0,
    )
    written_again = ModelRequest(
        temperature=0.0,
        messages=({"content": [{"text": "Route ticket 7", "type": "text"}], "role": "user"},),
        model=MODEL,
    )
    assert written_once.fingerprint() == written_again.fingerprint()
    harness.answer(written_once, Answer("shipping"))
    model = harness.model()
    first = await model.complete(written_once)
    second = await model.complete(written_again)
    assert first.text == second.text == "shipping"
    other = ModelRequest(model=MODEL, messages=written_once.messages, temperature=0.5)
    assert other.fingerprint() != written_once.fingerprint()
