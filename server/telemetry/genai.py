"""Spans of a workflow's model work, named and shaped by OpenTelemetry's GenAI conventions.

A workflow run is ``invoke_workflow {name}``; each agent in it ``invoke_agent {name}``; each
model call ``chat {model}`` (a client span: the provider is another service); each tool the
model asked for ``execute_tool {name}``. Opened inside one another they form one trace, which
a GenAI-aware backend shows as the run's tree with token counts and costs on it.

What was said is not put on spans unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
is true, as the conventions ask: prompts, answers, tool arguments and results often hold
users' data, and an error's message may quote the prompt, so without the opt-in a failed span
says only which error it was (``error.type``), never its text.

With tracing off every span here is the API's no-op span: what a span would record from a
response, and any content, is not even computed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import orjson
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import error_attributes, http_attributes
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from canopy.bridge import CanopyError

from .. import __version__
from ..llm.model import ModelError, ModelRequest, ModelResponse, Usage

__all__ = [
    "CAPTURE_CONTENT_VARIABLE",
    "COST_ATTRIBUTE",
    "agent_span",
    "capture_message_content",
    "chat_span",
    "record_response",
    "record_tool_result",
    "record_usage",
    "tool_span",
    "workflow_span",
]

CAPTURE_CONTENT_VARIABLE: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURING: Final = frozenset({"true", "span_only", "span_and_event"})
"""Values that put content on spans: ``true`` and the newer modes that include spans."""
COST_ATTRIBUTE: Final = "canopy.cost_usd"
"""What a call (or an agent's calls together) cost in US dollars, when its model has a price."""

_tracer = trace.get_tracer("canopy.server.telemetry", __version__)


def capture_message_content() -> bool:
    """Whether the environment opts in to prompts, answers and tool data on spans."""
    return os.environ.get(CAPTURE_CONTENT_VARIABLE, "").strip().lower() in _CAPTURING


@contextmanager
def workflow_span(name: str) -> Iterator[Span]:
    """``invoke_workflow {name}``: one run of the workflow ``name``."""
    attributes = {
        gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.INVOKE_WORKFLOW.value,
        gen_ai.GEN_AI_WORKFLOW_NAME: name,
    }
    with _span(f"invoke_workflow {name}", SpanKind.INTERNAL, attributes) as span:
        yield span


def open_workflow_span(name: str) -> Span:
    """An ``invoke_workflow {name}`` span that is not made current: for a run that outlives
    any one block (an execution's agents join it with ``trace.use_span``); the caller ends it."""
    return _tracer.start_span(
        f"invoke_workflow {name}",
        kind=SpanKind.INTERNAL,
        attributes={
            gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.INVOKE_WORKFLOW.value,
            gen_ai.GEN_AI_WORKFLOW_NAME: name,
        },
    )


@contextmanager
def agent_span(
    name: str,
    *,
    agent_id: str | None = None,
    provider: str | None = None,
    model: str | None = None,
) -> Iterator[Span]:
    """``invoke_agent {name}``: one agent's turn, in process (hence an internal span).
    ``agent_id`` tells apart runs of the same agent (e.g. the tree node's id); ``provider``
    and ``model`` are those its calls go to, when it has one."""
    attributes: dict[str, AttributeValue] = {
        gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value,
        gen_ai.GEN_AI_AGENT_NAME: name,
    }
    if agent_id is not None:
        attributes[gen_ai.GEN_AI_AGENT_ID] = agent_id
    if provider is not None:
        attributes[gen_ai.GEN_AI_PROVIDER_NAME] = provider
    if model is not None:
        attributes[gen_ai.GEN_AI_REQUEST_MODEL] = model
    with _span(f"invoke_agent {name}", SpanKind.INTERNAL, attributes) as span:
        yield span


@contextmanager
def tool_span(
    name: str, *, call_id: str | None = None, arguments: Mapping[str, Any] | None = None
) -> Iterator[Span]:
    """``execute_tool {name}``: running the tool a model asked for with ``call_id``.
    ``arguments`` go on the span only with content capture on."""
    attributes: dict[str, AttributeValue] = {
        gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value,
        gen_ai.GEN_AI_TOOL_NAME: name,
        gen_ai.GEN_AI_TOOL_TYPE: "function",
    }
    if call_id is not None:
        attributes[gen_ai.GEN_AI_TOOL_CALL_ID] = call_id
    if arguments is not None and capture_message_content():
        attributes[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS] = _json(arguments)
    with _span(f"execute_tool {name}", SpanKind.INTERNAL, attributes) as span:
        yield span


@contextmanager
def chat_span(
    request: ModelRequest, provider: str, *, capture_content: bool | None = None
) -> Iterator[Span]:
    """``chat {model}``: one call of ``request`` to ``provider`` (a client span). The
    request's parameters are set at the start, where a sampler sees them; the response's
    with :func:`record_response`. ``capture_content`` (default: the environment's opt-in)
    adds the system prompt and messages."""
    attributes: dict[str, AttributeValue] = {
        gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.CHAT.value,
        gen_ai.GEN_AI_PROVIDER_NAME: provider,
        gen_ai.GEN_AI_REQUEST_MODEL: request.model,
        gen_ai.GEN_AI_REQUEST_MAX_TOKENS: request.max_tokens,
    }
    if request.temperature is not None:
        attributes[gen_ai.GEN_AI_REQUEST_TEMPERATURE] = request.temperature
    if request.stop_sequences:
        attributes[gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES] = list(request.stop_sequences)
    with _span(f"chat {request.model}", SpanKind.CLIENT, attributes) as span:
        if span.is_recording() and _capturing(capture_content):
            if request.system is not None:
                span.set_attribute(
                    gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS,
                    _json([{"type": "text", "content": request.system}]),
                )
            input_messages = [_message(message) for message in request.messages]
            span.set_attribute(gen_ai.GEN_AI_INPUT_MESSAGES, _json(input_messages))
        yield span


def record_response(
    span: Span,
    response: ModelResponse,
    *,
    cost_usd: float | None = None,
    capture_content: bool | None = None,
) -> None:
    """Put what the model answered on its ``chat`` span: the model that answered, why it
    stopped, the tokens and (when known) the cost; the answer itself only with content
    capture on."""
    if not span.is_recording():
        return
    span.set_attribute(gen_ai.GEN_AI_RESPONSE_MODEL, response.model)
    span.set_attribute(gen_ai.GEN_AI_RESPONSE_FINISH_REASONS, [response.stop_reason])
    record_usage(span, response.usage, cost_usd)
    if _capturing(capture_content):
        output = {
            "role": "assistant",
            "parts": [_part(block) for block in response.content],
            "finish_reason": response.stop_reason,
        }
        span.set_attribute(gen_ai.GEN_AI_OUTPUT_MESSAGES, _json([output]))


def record_usage(span: Span, usage: Usage, cost_usd: float | None = None) -> None:
    """Tokens (and cost, when known) on a ``chat`` span, or an agent's total on its
    ``invoke_agent`` span."""
    if not span.is_recording():
        return
    span.set_attribute(gen_ai.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
    span.set_attribute(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
    if cost_usd is not None:
        span.set_attribute(COST_ATTRIBUTE, cost_usd)


def record_tool_result(span: Span, result: Any) -> None:
    """What a tool returned, on its ``execute_tool`` span, only with content capture on."""
    if span.is_recording() and capture_message_content():
        span.set_attribute(gen_ai.GEN_AI_TOOL_CALL_RESULT, _json(result))


@contextmanager
def _span(name: str, kind: SpanKind, attributes: Mapping[str, AttributeValue]) -> Iterator[Span]:
    """A current span that records how the block failed, if it did (cancellation included),
    and lets the error through."""
    with _tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            _record_failure(span, error)
            raise


def _record_failure(span: Span, error: BaseException) -> None:
    """``error.type`` (the Canopy error code, else the exception's class) and an ERROR
    status; the message only with content capture on, since it may quote the prompt."""
    if not span.is_recording():
        return
    kind = error.code if isinstance(error, CanopyError) else type(error).__qualname__
    span.set_attribute(error_attributes.ERROR_TYPE, kind)
    if isinstance(error, ModelError) and error.status is not None:
        span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, error.status)
    if isinstance(error, asyncio.CancelledError):
        span.set_status(Status(StatusCode.ERROR, "cancelled"))
    elif capture_message_content():
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {error}"))
        span.record_exception(error)
    else:
        span.set_status(Status(StatusCode.ERROR, kind))


def _capturing(explicit: bool | None) -> bool:
    return capture_message_content() if explicit is None else explicit


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A Messages API message as the conventions' ``ChatMessage`` (a role and parts)."""
    content = message.get("content")
    if isinstance(content, str):
        parts = [{"type": "text", "content": content}]
    else:
        parts = [_part(block) for block in content or () if isinstance(block, Mapping)]
    return {"role": message.get("role", "user"), "parts": parts}


def _part(block: Mapping[str, Any]) -> dict[str, Any]:
    """A Messages API content block as a conventions' message part: text, a tool call, a
    tool's response, or (images, documents...) the block as a generic part of its type."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "content": block.get("text", "")}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": block.get("id"),
            "name": block.get("name"),
            "arguments": block.get("input"),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": block.get("tool_use_id"),
            "response": block.get("content"),
        }
    return dict(block)


def _json(value: Any) -> str:
    """Structured content as the JSON string spans carry (attributes cannot nest)."""
    return orjson.dumps(value, default=str).decode()
