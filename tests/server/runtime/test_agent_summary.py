"""The fold of an agent's events into the last call a debugger shows: the same for the live
agent and for history, whatever order a cancelled call's late reports arrive in."""

from __future__ import annotations

from typing import Any

from canopy.server.runtime.agent_summary import agent_fields, fold

IDLE: dict[str, Any] = {"kind": "llm", "state": "idle", "model": "m", "output": "/answer"}


def started(call_id: str) -> dict[str, Any]:
    return {"call_id": call_id, "tick": 1, "agent": "llm", "model": "m", "prompt": "Hi"}


def test_a_late_report_of_a_cancelled_call_does_not_land_on_the_next_call() -> None:
    summary = fold(IDLE, "AgentCallStarted", started("a"))
    summary = fold(summary, "AgentCallCancelled", {"call_id": "a", "reason": "preempted"})
    summary = fold(summary, "AgentCallStarted", started("b"))
    late = {"call_id": "a", "round": 1, "tool": "lookup", "input": {}}
    summary = fold(summary, "AgentToolCalled", late)
    summary = fold(summary, "AgentRetried", {"call_id": "a", "attempt": 2})
    assert summary["state"] == "in flight"
    assert summary["call_id"] == "b"
    assert (summary["tool_calls"], summary["retries"]) == ([], 0)
    assert (summary["model"], summary["output"]) == ("m", "/answer")  # the agent's own settings
    summary = fold(summary, "AgentRetried", {"call_id": "b", "attempt": 1})
    summary = fold(summary, "AgentRetried", {"call_id": "b", "attempt": 1})  # the next round's
    assert summary["retries"] == 2


def test_an_answer_then_an_edit_of_its_text_output() -> None:
    summary = fold(IDLE, "AgentCallStarted", started("a"))
    assert agent_fields(summary)["response"] == ""
    answer = {
        "call_id": "a",
        "text": "yes",
        "input_tokens": 10,
        "output_tokens": 2,
        "cost_usd": None,
        "latency_ms": 5.0,
        "retries": 1,
        "outputs": {"/answer": "yes", "/other": 1},
    }
    summary = fold(summary, "AgentCallCompleted", answer)
    fields = agent_fields(summary)
    assert (fields["tokens"], fields["response"], fields["cost"]) == (12, "yes", None)
    summary = fold(summary, "AgentOutputEdited", {"call_id": "a", "key": "/other", "new": 2})
    assert (summary["response"], summary["outputs"]["/other"]) == ("yes", 2)
    summary = fold(summary, "AgentOutputEdited", {"call_id": "a", "key": "/answer", "new": "no"})
    assert (summary["response"], summary["edited"]) == ("no", ["/answer", "/other"])


def test_a_call_that_failed_before_it_started_says_why() -> None:
    failed = {"call_id": "a", "message": "bad template", "error_type": "TemplateError"}
    summary = fold(IDLE, "AgentCallFailed", {**failed, "retries": 0, "latency_ms": 0.0})
    assert (summary["state"], summary["error"], summary["error_type"]) == (
        "failed",
        "bad template",
        "TemplateError",
    )
    assert agent_fields(summary)["tokens"] == 0
