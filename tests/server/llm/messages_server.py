"""A local server speaking Anthropic's Messages API, so the real ``anthropic`` SDK has something
to talk to without a key or the network (tests of the model, of agents, benchmarks).

``POST /v1/messages`` answers what a test scripted for the request (:meth:`MessagesServer.script`):
a message, as JSON or, when the request asks to stream, as the API's event stream
(``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` with
``text_delta`` or ``input_json_delta``, ``content_block_stop``, ``message_delta``,
``message_stop``); an error response as the API writes them; or any body or event sequence, to
see what a client makes of a broken one. The server records every request body, counts calls,
and sees a client go away in the middle of a stream.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from canopy.server.llm import ModelRequest, ToolCall, Usage

__all__ = [
    "MODEL",
    "USAGE",
    "Event",
    "MessagesServer",
    "Reply",
    "error",
    "message",
    "message_events",
    "reply",
    "serve_messages",
]

MODEL: Final = "claude-sonnet-4-5-20250929"
USAGE: Final = Usage(12, 7)
"""Tokens a scripted message says it used, unless told otherwise."""
_PIECE: Final = re.compile(r"\S+\s*|\s+")
_ids = itertools.count(1)

Event = tuple[str, str]
"""One server-sent event: its name and its data text."""


@dataclass(frozen=True)
class Reply:
    """One scripted answer. A ``message`` is sent as JSON, or as its event stream when the
    request streams; ``events`` replaces that stream (a broken one) and ``body`` any answer."""

    status: int = 200
    message: Mapping[str, Any] | None = None
    events: Sequence[Event] | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    latency: float = 0.0
    """Seconds before the response starts."""
    event_delay: float = 0.0
    """Seconds between two events of a stream."""
    hold_after: int | None = None
    """Send this many events, then keep the stream open until the client goes away."""


def message(
    text: str = "",
    *,
    model: str = MODEL,
    tool_calls: Sequence[ToolCall] = (),
    usage: Usage = USAGE,
    stop_reason: str | None = None,
    stop_sequence: str | None = None,
) -> dict[str, Any]:
    """A Messages API message: ``text`` as a text block, then a tool_use block per call."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.input)}
        for call in tool_calls
    ]
    return {
        "id": f"msg_{next(_ids):024d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or ("tool_use" if tool_calls else "end_turn"),
        "stop_sequence": stop_sequence,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    }


def reply(
    text: str = "",
    *,
    model: str = MODEL,
    tool_calls: Sequence[ToolCall] = (),
    usage: Usage = USAGE,
    stop_reason: str | None = None,
    stop_sequence: str | None = None,
    latency: float = 0.0,
    event_delay: float = 0.0,
    hold_after: int | None = None,
) -> Reply:
    """A 200 answering :func:`message` of ``text``, with :class:`Reply`'s timing."""
    answer = message(
        text,
        model=model,
        tool_calls=tool_calls,
        usage=usage,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
    )
    return Reply(message=answer, latency=latency, event_delay=event_delay, hold_after=hold_after)


def error(status: int, kind: str, text: str, *, headers: Mapping[str, str] | None = None) -> Reply:
    """An error response as the API sends it: ``{"type": "error", "error": {...}}``."""
    body = {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_test"}
    return Reply(status=status, body=orjson.dumps(body), headers=dict(headers or {}))


def message_events(answer: Mapping[str, Any]) -> list[Event]:
    """The event stream the API sends for ``answer``: text in word pieces, a tool's input as
    JSON in a few pieces, usage split between ``message_start`` and ``message_delta``."""
    usage = answer["usage"]
    start = {
        **answer,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1},
    }
    events = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(answer["content"]):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": piece} for piece in _PIECE.findall(block["text"])
            ]
        else:
            opening = {**block, "input": {}}
            encoded = orjson.dumps(block["input"]).decode()
            cut = len(encoded) // 2
            deltas = [
                {"type": "input_json_delta", "partial_json": part}
                for part in ("", encoded[:cut], encoded[cut:])
            ]
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        events += [
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            for delta in deltas
        ]
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": answer["stop_reason"], "stop_sequence": answer["stop_sequence"]}
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": delta,
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def _event(name: str, data: Mapping[str, Any]) -> Event:
    return name, orjson.dumps(data).decode()


def _canonical(body: Mapping[str, Any]) -> bytes:
    """A request body without ``stream``, as bytes equal for equal requests."""
    return orjson.dumps(
        {k: v for k, v in body.items() if k != "stream"}, option=orjson.OPT_SORT_KEYS
    )


class MessagesServer:
    """The server's state: what it answers, what it was asked, what clients did."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[dict[str, Any]] = []
        """Every request body, in order of arrival."""
        self.headers: list[dict[str, str]] = []
        self.abandoned = 0
        """Streams a client closed before the server finished them."""
        self.open_connections: Callable[[], int] = lambda: 0
        """How many client connections are open now."""
        self._abandoned = asyncio.Condition()
        self._scripts: dict[bytes | None, list[Reply]] = {}

    @property
    def calls(self) -> int:
        return len(self.requests)

    def script(self, request: ModelRequest | None, *replies: Reply) -> None:
        """Answer ``request`` (None: any request without a script of its own) with
        ``replies`` in turn, the last one again and again."""
        if not replies:
            raise ValueError("script at least one reply")
        key = None if request is None else _canonical(request.to_json())
        self._scripts[key] = list(replies)

    async def wait_abandoned(self, count: int = 1) -> None:
        """Return once clients abandoned ``count`` streams (the caller bounds the wait)."""
        async with self._abandoned:
            await self._abandoned.wait_for(lambda: self.abandoned >= count)

    def _next_reply(self, body: Mapping[str, Any]) -> Reply:
        key = _canonical(body)
        replies = self._scripts.get(key) or self._scripts.get(None)
        if replies is None:
            text = f"the test server has no reply scripted for {key.decode()[:300]}"
            return error(400, "invalid_request_error", text)
        return replies.pop(0) if len(replies) > 1 else replies[0]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not (request.headers.get("x-api-key") or bearer):
            return _respond(error(401, "authentication_error", "x-api-key header is required"))
        if not request.headers.get("anthropic-version"):
            return _respond(error(400, "invalid_request_error", "anthropic-version: required"))
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _respond(error(400, "invalid_request_error", f"invalid JSON body: {exc}"))
        if not isinstance(body, dict) or not {"model", "max_tokens", "messages"} <= set(body):
            return _respond(
                error(400, "invalid_request_error", "model, max_tokens, messages: required")
            )
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        answer = self._next_reply(body)
        if answer.latency:
            await asyncio.sleep(answer.latency)
        streamed = answer.events is not None or (answer.message is not None and body.get("stream"))
        if answer.status != 200 or not streamed:
            return _respond(answer)
        events = (
            answer.events if answer.events is not None else message_events(answer.message or {})
        )
        return await self._stream(request, answer, events)

    async def _stream(
        self, request: web.Request, answer: Reply, events: Sequence[Event]
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                **answer.headers,
            }
        )
        await response.prepare(request)
        sent = events if answer.hold_after is None else events[: answer.hold_after]
        try:
            for index, (name, data) in enumerate(sent):
                if index and answer.event_delay:
                    await asyncio.sleep(answer.event_delay)
                await response.write(f"event: {name}\ndata: {data}\n\n".encode())
            if answer.hold_after is not None:
                await asyncio.Event().wait()  # until the client goes away: the handler is cancelled
        except (asyncio.CancelledError, ConnectionResetError):
            async with self._abandoned:
                self.abandoned += 1
                self._abandoned.notify_all()
            raise
        await response.write_eof()
        return response


def _respond(answer: Reply) -> web.Response:
    if answer.body is not None:
        body, content_type = answer.body, answer.content_type
    else:
        body, content_type = orjson.dumps(answer.message), "application/json"
    return web.Response(
        status=answer.status,
        body=body,
        headers={"Content-Type": content_type, "request-id": "req_test", **answer.headers},
    )


@asynccontextmanager
async def serve_messages() -> AsyncIterator[MessagesServer]:
    """A :class:`MessagesServer` on a free port of 127.0.0.1, its base URL in ``url``."""
    server = MessagesServer()
    app = web.Application()
    app.router.add_post("/v1/messages", server.handle)
    # Cancelling the handler of a client that went away is how the server sees it go.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    server.open_connections = lambda: len(runner.server.connections) if runner.server else 0
    try:
        yield server
    finally:
        await runner.cleanup()
