"""What a language model is to Canopy: a request in, a response (or a :class:`ModelError`) out.

The shapes follow Anthropic's Messages API (messages of content blocks, tools with JSON Schema
inputs, ``tool_use`` calls, a stop reason, token usage), because that is the provider Canopy
speaks to and the one its offline fixtures imitate. A request is plain data so that it can be
hashed: the hash keys offline fixtures and tells a fork whether an agent's inputs changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import orjson

from canopy.bridge import CanopyError

__all__ = [
    "LanguageModel",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "TextSink",
    "ToolCall",
    "ToolSpec",
    "Usage",
]

TextSink = Callable[[str], None]
"""Receives each piece of text as the model streams it (called on the event loop)."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and the JSON Schema of its input."""

    name: str
    description: str
    input_schema: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The tool as the Messages API takes it."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": dict(self.input_schema),
        }


@dataclass(frozen=True)
class ModelRequest:
    """One Messages call. ``messages`` are Messages API messages (``role`` and ``content``, the
    content a string or a list of blocks), already resolved: no template is left in them."""

    model: str
    messages: tuple[Mapping[str, Any], ...]
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    stop_sequences: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The request body of the Messages API (without ``stream``)."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": [dict(message) for message in self.messages],
        }
        if self.system is not None:
            body["system"] = self.system
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.stop_sequences:
            body["stop_sequences"] = list(self.stop_sequences)
        if self.tools:
            body["tools"] = [tool.to_json() for tool in self.tools]
        return body

    def fingerprint(self) -> str:
        """A stable hash of everything that shapes the answer (``sha256:`` and 64 hex digits).

        Equal requests hash equal across processes and versions: the body is serialised with
        sorted keys, so neither dict order nor the Python version changes it.
        """
        canonical = orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class ToolCall:
    """A ``tool_use`` block of a response: the model asks for tool ``name`` with ``input``."""

    id: str
    name: str
    input: Mapping[str, Any]


@dataclass(frozen=True)
class Usage:
    """Tokens a call consumed, as the provider counted them."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ModelResponse:
    """What the model answered. ``content`` keeps the response's blocks as the API gave them,
    so a tool loop can send them back as the assistant's turn unchanged."""

    model: str
    text: str
    stop_reason: str
    usage: Usage = field(default_factory=Usage)
    tool_calls: tuple[ToolCall, ...] = ()
    content: tuple[Mapping[str, Any], ...] = ()


class ModelError(CanopyError):
    """A call did not produce a response. ``retryable`` says whether the same request may
    succeed later (rate limits, overload, timeouts, 5xx); ``retry_after`` is the provider's own
    advice in seconds, when it gave one; ``status`` the HTTP status, when there was one."""

    fields: ClassVar[Mapping[str, str]] = {
        "reason": "reason",
        "retryable": "retryable",
        "status": "model_status",  # ``status`` is the HTTP status of a problem document
        "retry_after": "retry_after",
    }

    def __init__(
        self,
        *,
        reason: str,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        super().__init__(reason)


class LanguageModel(Protocol):
    """A provider of Messages calls. Implementations: ``anthropic`` (the real API through the
    ``anthropic`` SDK) and ``offline`` (answers from a fixture file, no network)."""

    @property
    def provider(self) -> str:
        """The provider's name as OpenTelemetry's ``gen_ai.provider.name`` gives it."""
        ...

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        """Answer ``request`` once (no retries: the caller decides), streaming text pieces to
        ``on_text`` as they arrive. Raises :class:`ModelError`; cancellation cancels the call."""
        ...

    async def close(self) -> None:
        """Release what the model keeps open (its connections), once its execution has
        ended; no call follows."""
        ...
