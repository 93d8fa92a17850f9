"""Tracing with OpenTelemetry: where spans go (:mod:`.provider`), the GenAI spans of a
workflow's model work (:mod:`.genai`, :class:`TracedModel`), and the server's own HTTP and SQL
spans (:mod:`.instrumentation`). Off unless an OTLP endpoint is configured."""

from .genai import (
    CAPTURE_CONTENT_VARIABLE,
    COST_ATTRIBUTE,
    agent_span,
    capture_message_content,
    chat_span,
    open_workflow_span,
    record_response,
    record_tool_result,
    record_usage,
    tool_span,
    workflow_span,
)
from .instrumentation import instrument_event_log, instrument_http_server
from .provider import POD_SERVICE, SERVER_SERVICE, start_tracing, stop_tracing, tracing_enabled
from .traced_model import TracedModel

__all__ = [
    "CAPTURE_CONTENT_VARIABLE",
    "COST_ATTRIBUTE",
    "POD_SERVICE",
    "SERVER_SERVICE",
    "TracedModel",
    "agent_span",
    "capture_message_content",
    "chat_span",
    "instrument_event_log",
    "instrument_http_server",
    "open_workflow_span",
    "record_response",
    "record_tool_result",
    "record_usage",
    "start_tracing",
    "stop_tracing",
    "tool_span",
    "tracing_enabled",
    "workflow_span",
]
