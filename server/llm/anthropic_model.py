"""The Anthropic model: Messages calls through the ``anthropic`` SDK, always streamed.

Every call streams, so that text reaches the caller (an agent leaf, the debugger's view of it)
as the model writes it, and so that a call cut short by cancellation closes its HTTP stream
rather than leaving Anthropic generating for nobody. The SDK's own retries are off: Canopy
retries in :mod:`.retry`, where each attempt is recorded. Every call has a deadline, so that no
agent of any process waits on the network forever.

What fails is told in one :class:`~.model.ModelError` a user can act on: which call (the
model), what HTTP status and error type Anthropic gave, its message, whether trying again may
help and after how long Anthropic asked to wait.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import anthropic
import httpx2
from anthropic.types import Message

from canopy.bridge import InvalidArgument

from .model import ModelError, ModelRequest, ModelResponse, TextSink, ToolCall, Usage

__all__ = [
    "API_KEY_VARIABLE",
    "BASE_URL_VARIABLE",
    "DEFAULT_TIMEOUT",
    "AnthropicModel",
    "retry_after",
]

API_KEY_VARIABLE: Final = "ANTHROPIC_API_KEY"
BASE_URL_VARIABLE: Final = "ANTHROPIC_BASE_URL"
"""The SDK's own variables, read the way it reads them, so a key set up for other Anthropic
tools works for Canopy too."""

DEFAULT_TIMEOUT: Final = 600.0
"""Seconds a whole call may take, from sending the request to the last event of its stream:
the SDK's own default for a non-streaming call."""

RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504, 529})
"""Rate limited, overloaded, or a server error: the same request may succeed later."""

_STATUS_OF_ERROR_TYPE: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The status each error type of the Messages API comes with. An error event in the middle of
a stream arrives on a 200 response, so its type is all that says what it is."""

_WHAT_WENT_WRONG: Final = {
    400: "Anthropic refused the request as invalid",
    401: f"Anthropic did not accept the API key (check {API_KEY_VARIABLE})",
    402: "Anthropic refused the call for billing reasons",
    403: "the API key may not use this model or feature",
    404: "Anthropic does not know this model or endpoint",
    413: "the request is too large for Anthropic",
    429: "Anthropic rate-limited the call",
    529: "Anthropic is overloaded",
}

_EXCERPT: Final = 300
"""Characters of a malformed body quoted in an error."""


def _tls_context() -> ssl.SSLContext:
    """The TLS settings every client of this process shares: the SDK's own default, whose
    certificate store takes tens of milliseconds to load, which each execution's first call
    would otherwise wait for (blocking the loop its other agents' calls run on)."""
    return _tls_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _tls_context_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """The SDK's default TLS context while ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` (which it
    reads) are these."""
    return httpx2.create_ssl_context()


class AnthropicModel:
    """A :class:`~.model.LanguageModel` calling Anthropic's Messages API.

    ``api_key`` and ``base_url`` are the SDK's (``base_url`` None: the SDK's choice,
    ``ANTHROPIC_BASE_URL`` or Anthropic's own address); ``timeout`` is the deadline of each
    call in seconds. :meth:`from_environment` reads them the way the SDK does.
    """

    provider = "anthropic"

    def __init__(
        self, *, api_key: str, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        if not api_key:
            raise InvalidArgument(
                f"the anthropic model provider needs an API key: set {API_KEY_VARIABLE}"
            )
        if not (math.isfinite(timeout) and timeout > 0):
            raise InvalidArgument(f"model call timeout: expected seconds > 0, got {timeout!r}")
        self.timeout = timeout
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=_tls_context(), timeout=timeout),
        )
        self.base_url = str(self._client.base_url)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
    ) -> AnthropicModel:
        """The model ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` of ``environ`` give;
        InvalidArgument naming the key's variable when it is not set."""
        return cls(
            api_key=environ.get(API_KEY_VARIABLE, ""),
            base_url=environ.get(BASE_URL_VARIABLE) or None,
            timeout=timeout,
        )

    async def close(self) -> None:
        """Close the connections the client keeps open."""
        await self._client.close()

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        """Stream one Messages call; ModelError says what failed and whether to retry."""
        try:
            async with asyncio.timeout(self.timeout):
                message = await self._stream(request, on_text)
        except TimeoutError:
            raise ModelError(
                reason=f"the call to {request.model} did not finish within {self.timeout:g} s",
                retryable=True,
            ) from None
        except anthropic.APIStatusError as error:
            raise _status_error(request.model, error) from None
        except anthropic.APITimeoutError as error:
            reason = f"the call to {request.model} timed out: {error.message}"
            raise ModelError(reason=reason, retryable=True) from None
        except anthropic.APIConnectionError as error:
            reason = f"the call to {request.model} could not reach {self.base_url}: {error.message}"
            raise ModelError(reason=reason, retryable=True) from None
        except anthropic.AnthropicError as error:
            raise ModelError(reason=f"the call to {request.model} failed: {error}") from None
        return _response(request.model, message)

    async def _stream(self, request: ModelRequest, on_text: TextSink | None) -> Message:
        """The final message of the call's event stream, each text delta sent to ``on_text``.
        Leaving early (an error, cancellation) closes the HTTP stream."""
        body = request.to_json()
        # The SDK has no parameter for temperature; the API still takes it in the body.
        extra = {"temperature": body.pop("temperature")} if "temperature" in body else None
        final: Message | None = None
        async with self._client.messages.stream(**body, extra_body=extra) as stream:
            content_type = stream.response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                what = f"a streamed call was answered with Content-Type {content_type!r}"
                raise _malformed(request.model, f"{what}, not text/event-stream")
            started = False
            while True:
                try:
                    event = await anext(stream)
                except StopAsyncIteration:
                    break
                except (ValueError, LookupError, AttributeError, TypeError, RuntimeError) as error:
                    # The SDK decodes and accumulates events as they come: anything but its
                    # own errors means an event did not follow the protocol (bad JSON, a
                    # delta for a block never started).
                    raise _malformed(
                        request.model, f"an event could not be read: {error}"
                    ) from None
                if not started and event.type != "message_start":
                    raise _malformed(
                        request.model, f"a {event.type} event came before message_start"
                    )
                started = True
                if event.type == "text" and on_text is not None:
                    on_text(event.text)  # outside the try: the caller's errors stay its own
                elif event.type == "message_stop":
                    final = event.message
        if final is None:
            raise _malformed(request.model, "the event stream ended before message_stop")
        return final


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the provider asked to wait: ``retry-after-ms``, else ``retry-after`` (seconds or
    an HTTP date; a date in the past is 0). None when neither is given or readable."""
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _status_error(model: str, error: anthropic.APIStatusError) -> ModelError:
    """The ModelError of an error response, or of an error event in the middle of a stream."""
    kind = error.type or ""
    mid_stream = error.status_code < 400
    status = _STATUS_OF_ERROR_TYPE.get(kind) if mid_stream else error.status_code
    message = error.api_message or _excerpt(error.body) or "(no message)"
    if status is None:
        return _malformed(model, f"an error event of unknown type {kind!r}: {message}")
    what = _WHAT_WENT_WRONG.get(
        status, "Anthropic had a server error" if status >= 500 else "Anthropic refused the call"
    )
    where = " in the middle of its stream" if mid_stream else ""
    label = f"HTTP {status} {kind}".rstrip()
    reason = f"the call to {model} failed{where}: {what} ({label}): {message}"
    retryable = status in RETRYABLE_STATUSES
    wait = retry_after(error.response.headers) if retryable else None
    if wait is not None:
        reason += f"; Anthropic asks to wait {wait:g} s before trying again"
    return ModelError(reason=reason, retryable=retryable, status=status, retry_after=wait)


def _malformed(model: str, what: str) -> ModelError:
    return ModelError(reason=f"the call to {model} got a malformed response: {what}")


def _excerpt(body: object) -> str:
    """A body the SDK could not read as JSON, cut to a readable length."""
    text = body if isinstance(body, str) else "" if body is None else repr(body)
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _response(model: str, message: Message) -> ModelResponse:
    """The ModelResponse of a completed message; ModelError when it lacks what the API
    promises (a stop reason, a mapping as a tool's input)."""
    if message.stop_reason is None:
        raise _malformed(model, "the message has no stop_reason (no message_delta arrived)")
    content: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    for block in message.content:
        content.append(block.to_dict(mode="json"))
        if block.type == "tool_use":
            arguments: object = block.input  # built from the stream's JSON, unchecked
            if not isinstance(arguments, dict):
                raise _malformed(model, f"tool_use block {block.id!r} has no object as its input")
            calls.append(ToolCall(block.id, block.name, arguments))
    return ModelResponse(
        model=message.model,
        text="".join(block.text for block in message.content if block.type == "text"),
        stop_reason=message.stop_reason,
        usage=Usage(message.usage.input_tokens, message.usage.output_tokens),
        tool_calls=tuple(calls),
        content=tuple(content),
    )
