"""What a debugger shows of an agent: its last call, folded from the payloads of its events.

A live agent folds each event it records (with its content, even under silent capture: the
live view shows what the blackboard holds anyway); history folds the recorded events to show
the same for a past state (with digests in place of content under silent capture). One fold
for both, so a view of the past reads like the live one.

Expressions at an agent node name the last call's fields (:data:`AGENT_NAMES`):
``tokens > 2000``, ``retries > 0``, ``"refund" in response``, ``cost > 0.01``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["AGENT_EVENTS", "AGENT_NAMES", "CallState", "agent_fields", "fold"]

AGENT_NAMES: Final = (
    "tokens",
    "input_tokens",
    "output_tokens",
    "retries",
    "response",
    "cost",
    "latency_ms",
    "prompt",
)
"""What an expression evaluated at an agent node can name of its last call."""


class CallState:
    """The ``state`` of an agent's last call."""

    IDLE: Final = "idle"
    IN_FLIGHT: Final = "in flight"
    DONE: Final = "done"
    FAILED: Final = "failed"
    CANCELLED: Final = "cancelled"


_KEPT: Final = ("kind", "model", "function", "output")
"""What a summary keeps from one call to the next: the agent's own settings."""
_OF_A_CALL: Final = frozenset({"AgentRetried", "AgentToolCalled", "AgentSlow"})
"""Events told while a call runs: folded only into that call's summary (a cancelled call's
late report must not land on the next call)."""


def fold(summary: Mapping[str, Any], event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` after one of the agent's events (a new dict: readers on other threads see
    one whole summary or the next)."""
    if event_type in _OF_A_CALL and payload.get("call_id") != summary.get("call_id"):
        return dict(summary)
    folder = _FOLDERS.get(event_type)
    return folder(dict(summary), payload) if folder is not None else dict(summary)


def agent_fields(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The names of :data:`AGENT_NAMES` over a summary: before an answer, 0 tokens and an empty
    response (a condition on a running agent is simply false, not an error; the text streamed
    so far is not the answer a condition on ``response`` is about)."""
    answered = summary.get("state") != CallState.IN_FLIGHT
    input_tokens = summary.get("input_tokens") or 0
    output_tokens = summary.get("output_tokens") or 0
    cost = summary.get("cost_usd", 0.0)
    return {
        "tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "retries": summary.get("retries") or 0,
        "response": (summary.get("response") if answered else None) or "",
        "cost": cost,
        "latency_ms": summary.get("latency_ms") or 0.0,
        "prompt": summary.get("prompt") or "",
    }


def _started(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = {name: summary[name] for name in _KEPT if name in summary}
    call["kind"] = payload.get("agent", call.get("kind"))
    for name in ("model", "function"):
        if name in payload:
            call[name] = payload[name]
    call.update(
        state=CallState.IN_FLIGHT,
        call_id=payload.get("call_id"),
        tick=payload.get("tick"),
        input_tokens=0,
        output_tokens=0,
        cost_usd=0.0,
        retries=0,
        tool_calls=[],
    )
    if "prompt" in payload:
        call["prompt"] = payload["prompt"]
    if "inputs" in payload:
        call["inputs"] = payload["inputs"]
    if "digest" in payload:
        call["digests"] = {"call": payload["digest"]}
    return call


def _retried(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    summary["retries"] = summary.get("retries", 0) + 1  # over every round, as the answer counts
    return summary


def _tool_called(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    call = {
        name: payload[name]
        for name in ("round", "tool", "input", "output", "error", "digest")
        if name in payload
    }
    summary["tool_calls"] = [*summary.get("tool_calls", []), call]
    return summary


def _completed(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    summary.update(state=CallState.DONE, call_id=payload.get("call_id"))
    if "text" in payload:
        summary["response"] = payload["text"]
    for name in ("model", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "retries"):
        if name in payload:
            summary[name] = payload[name]
    if payload.get("tool_calls") and not summary.get("tool_calls"):
        summary["tool_calls"] = list(payload["tool_calls"])  # answered from the log
    if "outputs" in payload:
        summary["outputs"] = dict(payload["outputs"])
    if "served_from" in payload:
        summary["served_from"] = dict(payload["served_from"])
    if "digest" in payload:
        summary["digests"] = {**summary.get("digests", {}), "answer": payload["digest"]}
    return summary


def _failed(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    summary.update(
        state=CallState.FAILED,
        call_id=payload.get("call_id"),
        error=payload.get("message"),
        error_type=payload.get("error_type"),
        retries=payload.get("retries", summary.get("retries", 0)),
        latency_ms=payload.get("latency_ms"),
    )
    return summary


def _cancelled(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    summary.update(
        state=CallState.CANCELLED,
        cancelled=payload.get("reason"),
        latency_ms=payload.get("latency_ms"),
    )
    return summary


def _slow(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    summary["slow"] = {
        name: payload[name] for name in ("elapsed_ms", "expected_ms", "basis") if name in payload
    }
    return summary


def _edited(summary: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """The client changed an output the call wrote: the summary shows what downstream reads."""
    key = payload["key"]
    summary["edited"] = sorted({*summary.get("edited", []), key})
    if "new" in payload:
        if isinstance(summary.get("outputs"), dict):
            summary["outputs"] = {**summary["outputs"], key: payload["new"]}
        if summary.get("output") == key:
            summary["response"] = payload["new"]
    return summary


_FOLDERS: Final = {
    "AgentCallStarted": _started,
    "AgentRetried": _retried,
    "AgentToolCalled": _tool_called,
    "AgentCallCompleted": _completed,
    "AgentCallFailed": _failed,
    "AgentCallCancelled": _cancelled,
    "AgentSlow": _slow,
    "AgentOutputEdited": _edited,
}
AGENT_EVENTS: Final = frozenset(_FOLDERS)
"""The event types a summary folds."""
