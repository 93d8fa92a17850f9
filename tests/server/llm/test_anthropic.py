"""The Anthropic model against a local server speaking the Messages API: what it sends, and
how each way a call can fail becomes one ModelError a user can act on."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest

from canopy.bridge import InvalidArgument
from canopy.server.llm import ModelError, ModelRequest, ToolSpec
from canopy.server.llm.anthropic_model import AnthropicModel, retry_after

from .conftest import KEY
from .messages_server import (
    MODEL,
    Event,
    MessagesServer,
    Reply,
    error,
    message,
    message_events,
    reply,
)

REQUEST = ModelRequest(
    model=MODEL,
    messages=(
        {"role": "user", "content": "Where is order A-17?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Which customer?"}]},
        {"role": "user", "content": [{"type": "text", "text": "ACME"}]},
    ),
    system="You answer questions about orders.",
    max_tokens=300,
    temperature=0.2,
    stop_sequences=("END",),
    tools=(
        ToolSpec(
            name="lookup_order",
            description="Find an order by its number.",
            input_schema={
                "type": "object",
                "properties": {"order": {"type": "string"}},
                "required": ["order"],
            },
        ),
    ),
)


async def failure(model: AnthropicModel, server: MessagesServer, *replies: Reply) -> ModelError:
    server.script(REQUEST, *replies)
    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)
    return raised.value


async def test_the_request_body_is_the_requests_json_streamed(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    messages.script(REQUEST, reply("A-17 ships tomorrow."))
    await anthropic_model.complete(REQUEST)
    assert messages.requests == [{**REQUEST.to_json(), "stream": True}]
    assert {"system", "temperature", "stop_sequences", "tools"} <= set(messages.requests[0])
    headers = messages.headers[0]
    assert KEY in (headers.get("x-api-key", ""), headers.get("Authorization", "").split()[-1])
    assert headers["anthropic-version"]


@pytest.mark.parametrize(
    ("retry_headers", "seconds"),
    [
        ({"retry-after": "1"}, 1.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({}, None),
    ],
)
async def test_a_rate_limit_is_retryable_after_what_anthropic_asked(
    anthropic_model: AnthropicModel,
    messages: MessagesServer,
    retry_headers: dict[str, str],
    seconds: float | None,
) -> None:
    limited = error(
        429,
        "rate_limit_error",
        "Number of request tokens exceeded your limit.",
        headers=retry_headers,
    )
    found = await failure(anthropic_model, messages, limited)
    assert (found.retryable, found.status, found.retry_after) == (True, 429, seconds)
    assert MODEL in found.reason
    assert "HTTP 429 rate_limit_error" in found.reason
    assert "Number of request tokens exceeded your limit." in found.reason
    assert messages.calls == 1  # the SDK does not retry on its own


def test_retry_after_reads_seconds_an_http_date_and_milliseconds() -> None:
    now = datetime(2026, 12, 7, 18, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert retry_after({"retry-after": later}, now) == 30.0
    assert retry_after({"retry-after": earlier}, now) == 0.0
    assert retry_after({"retry-after": "2.5"}, now) == 2.5
    assert retry_after({"retry-after-ms": "250"}, now) == 0.25
    assert retry_after({"retry-after": "soon"}, now) is None
    assert retry_after({"retry-after": "-3"}, now) is None
    assert retry_after({"retry-after-ms": "nan", "retry-after": "4"}, now) == 4.0
    assert retry_after({}, now) is None


async def test_an_http_date_retry_after_is_read_from_the_response(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    found = await failure(
        anthropic_model,
        messages,
        error(529, "overloaded_error", "Overloaded", headers={"retry-after": when}),
    )
    assert found.retry_after is not None
    assert 50 < found.retry_after <= 60


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (529, "overloaded_error", "Anthropic is overloaded"),
        (500, "api_error", "Anthropic had a server error"),
        (502, "api_error", "Anthropic had a server error"),
        (503, "api_error", "Anthropic had a server error"),
        (504, "timeout_error", "Anthropic had a server error"),
    ],
)
async def test_overload_and_server_errors_are_retryable(
    anthropic_model: AnthropicModel, messages: MessagesServer, status: int, kind: str, words: str
) -> None:
    found = await failure(
        anthropic_model, messages, error(status, kind, "Try again.", headers={"retry-after": "3"})
    )
    assert (found.retryable, found.status, found.retry_after) == (True, status, 3.0)
    assert f"the call to {MODEL} failed: {words} (HTTP {status} {kind}): Try again." in found.reason


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (400, "invalid_request_error", "Anthropic refused the request as invalid"),
        (401, "authentication_error", "Anthropic did not accept the API key"),
        (403, "permission_error", "the API key may not use this model or feature"),
        (404, "not_found_error", "Anthropic does not know this model or endpoint"),
        (413, "request_too_large", "the request is too large for Anthropic"),
    ],
)
async def test_refusals_are_final_with_the_apis_message(
    anthropic_model: AnthropicModel, messages: MessagesServer, status: int, kind: str, words: str
) -> None:
    text = f"messages.0.content: the API says no ({status})"
    found = await failure(
        anthropic_model, messages, error(status, kind, text, headers={"retry-after": "3"})
    )
    assert (found.retryable, found.status, found.retry_after) == (False, status, None)
    assert words in found.reason
    assert text in found.reason
    assert MODEL in found.reason


async def test_an_error_body_that_is_not_json_is_quoted(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    page = b"<html><body>502 Bad Gateway</body></html>"
    found = await failure(
        anthropic_model, messages, Reply(status=502, body=page, content_type="text/html")
    )
    assert (found.retryable, found.status) == (True, 502)
    assert "502 Bad Gateway" in found.reason


async def test_an_error_event_mid_stream_is_told_by_its_type(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    events = message_events(message("Partly written"))[:4]
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events.append(("error", orjson.dumps(overloaded).decode()))
    found = await failure(anthropic_model, messages, Reply(events=events))
    assert (found.retryable, found.status) == (True, 529)
    assert "in the middle of its stream: Anthropic is overloaded" in found.reason
    invalid = {"type": "error", "error": {"type": "invalid_request_error", "message": "No."}}
    found = await failure(
        anthropic_model, messages, Reply(events=[("error", orjson.dumps(invalid).decode())])
    )
    assert (found.retryable, found.status) == (False, 400)


@pytest.mark.parametrize(
    ("broken", "words"),
    [
        pytest.param(
            lambda events: [
                *events[:3],
                ("content_block_delta", '{"type": "content_block_delta", "ind'),
            ],
            "an event could not be read",
            id="event-json-cut",
        ),
        pytest.param(
            lambda events: events[:-2],
            "the event stream ended before message_stop",
            id="truncated",
        ),
        pytest.param(
            lambda events: events[1:],
            "a content_block_start event came before message_start",
            id="no-message-start",
        ),
        pytest.param(
            lambda events: [
                events[0],
                (
                    "content_block_delta",
                    '{"type": "content_block_delta", "index": 3, "delta": '
                    '{"type": "text_delta", "text": "x"}}',
                ),
            ],
            "an event could not be read",
            id="delta-of-no-block",
        ),
        pytest.param(
            lambda events: [e for e in events if e[0] != "message_delta"],
            "the message has no stop_reason",
            id="no-message-delta",
        ),
        pytest.param(lambda events: [], "ended before message_stop", id="empty"),
    ],
)
async def test_a_malformed_stream_is_a_final_error_saying_what_was_wrong(
    anthropic_model: AnthropicModel,
    messages: MessagesServer,
    broken: Callable[[list[Event]], list[Event]],
    words: str,
) -> None:
    events = message_events(message("All fine here."))
    found = await failure(anthropic_model, messages, Reply(events=broken(events)))
    assert not found.retryable
    assert f"the call to {MODEL} got a malformed response" in found.reason
    assert words in found.reason


async def test_a_json_answer_to_a_streamed_call_is_malformed(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    found = await failure(anthropic_model, messages, Reply(body=b'{"id": "msg_1", "content": ['))
    assert not found.retryable
    assert "Content-Type 'application/json', not text/event-stream" in found.reason


async def test_a_call_past_its_deadline_is_retryable(messages: MessagesServer) -> None:
    model = AnthropicModel(api_key=KEY, base_url=messages.url, timeout=0.5)
    try:
        text = " ".join(f"word{n}" for n in range(40))
        slow = reply(text, event_delay=0.1)  # each read is quick, the whole stream is not
        found = await failure(model, messages, slow)
        assert found.retryable
        assert found.status is None
        assert found.reason == f"the call to {MODEL} did not finish within 0.5 s"
        silent = reply("late", latency=5)  # no response before the read times out
        found = await failure(model, messages, silent)
        assert found.retryable
        assert found.reason.startswith(f"the call to {MODEL} ")
        assert "timed out" in found.reason or "did not finish within 0.5 s" in found.reason
    finally:
        await model.close()


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    model = AnthropicModel(api_key=KEY, base_url=url, timeout=5)
    try:
        with pytest.raises(ModelError) as raised:
            await model.complete(REQUEST)
    finally:
        await model.close()
    assert raised.value.retryable
    assert raised.value.status is None
    assert f"the call to {MODEL} could not reach {url}" in raised.value.reason


def test_the_model_needs_a_key_and_a_positive_deadline() -> None:
    with pytest.raises(InvalidArgument, match="ANTHROPIC_API_KEY"):
        AnthropicModel.from_environment({"ANTHROPIC_BASE_URL": "http://127.0.0.1:1"})
    for timeout in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(InvalidArgument, match="timeout"):
            AnthropicModel(api_key=KEY, timeout=timeout)


async def test_the_environment_gives_key_and_base_url(messages: MessagesServer) -> None:
    model = AnthropicModel.from_environment(
        {"ANTHROPIC_API_KEY": "sk-from-env", "ANTHROPIC_BASE_URL": messages.url}, timeout=10
    )
    try:
        messages.script(REQUEST, reply("ok"))
        assert (await model.complete(REQUEST)).text == "ok"
    finally:
        await model.close()
    assert "sk-from-env" in messages.headers[0].get("Authorization", "") + messages.headers[0].get(
        "x-api-key", ""
    )


async def test_an_error_of_the_text_sink_is_its_own(
    anthropic_model: AnthropicModel, messages: MessagesServer
) -> None:
    def refuse(piece: str) -> None:
        raise ValueError(f"no room for {piece!r}")

    messages.script(REQUEST, reply("A-17 ships tomorrow."))
    with pytest.raises(ValueError, match="no room for 'A-17 '"):
        await anthropic_model.complete(REQUEST, on_text=refuse)
