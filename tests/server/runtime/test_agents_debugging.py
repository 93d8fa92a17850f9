"""Debugging agents through the control contract: the last call in the node state (live and
in the recorded past), conditions over its fields, edits of its answer recorded as such, a
slow call told once, and an agent's failure told where the failure filter stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from canopy.server.llm import ModelRequest
from canopy.server.runtime.agent_capture import digest
from canopy.server.runtime.breakpoints import BreakpointSpec, ExceptionFilter, WatchSpec
from canopy.server.runtime.control import ExecutionView, LaunchSpec
from canopy.server.runtime.engine import CaptureLevel, Mode, RunState, StepKind
from canopy.server.runtime.expressions import ExpressionError
from canopy.server.runtime.inprocess import InProcessControl

from .agent_runs import events_of, run_tree, user, write_fixtures

MODEL = "claude-haiku-4-5"
TICKET = "I want a refund for my broken kettle"

TRIAGE = f"""
blackboard:
  ticket: "{TICKET}"
root:
  type: Sequence
  name: triage
  children:
    - type: Success
      name: receive
    - type: llm
      name: classify
      params:
        model: {MODEL}
        prompt: "Classify: {{{{ ticket }}}}"
        inputs: [ticket]
        output: /ticket/category
    - type: llm
      name: reply
      params:
        model: {MODEL}
        prompt: "Answer a {{{{ category }}}} ticket"
        inputs: [/ticket/category]
        output: /ticket/reply
"""


def classify() -> ModelRequest:
    return ModelRequest(model=MODEL, messages=user(f"Classify: {TICKET}"))


def reply(category: str) -> ModelRequest:
    return ModelRequest(model=MODEL, messages=user(f"Answer a {category} ticket"))


def triage_fixtures(folder: Path, *, reply_to: str = "refund") -> Path:
    """``classify`` answers ``refund`` with 40 + 2 tokens; ``reply`` (to ``reply_to``) uses
    900 + 300."""
    return write_fixtures(
        folder / "triage.fixtures.yaml",
        [
            (classify(), {"text": "refund", "usage": {"input_tokens": 40, "output_tokens": 2}}),
            (
                reply(reply_to),
                {
                    "text": f"We will process your {reply_to}.",
                    "usage": {"input_tokens": 900, "output_tokens": 300},
                },
            ),
        ],
    )


async def stopped_at(
    control: InProcessControl, execution_id: str, spec: BreakpointSpec
) -> ExecutionView:
    """Set one breakpoint, run in auto mode, wait (30 s at most) for the stop."""
    await control.set_breakpoints(execution_id, [spec])
    await control.set_mode(execution_id, Mode.AUTO)
    async with asyncio.timeout(30):
        await control.wait_for_stop(execution_id)
    return await control.view(execution_id)


async def launch(control: InProcessControl, path: Path, **spec: Any) -> str:
    info = await control.launch(LaunchSpec(str(path), mode=Mode.PAUSED, **spec))
    return info.id


def node(view: ExecutionView, name: str) -> dict[str, Any]:
    return next(n for n in view.nodes if n["name"] == name)


async def test_an_agents_last_call_is_in_its_node_state_and_in_the_past(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    triage_fixtures(tmp_path)
    execution_id = await launch(sqlite_control, write("triage.yaml", TRIAGE))
    before = await sqlite_control.view(execution_id)
    assert node(before, "classify")["agent"] == {
        "kind": "llm",
        "state": "idle",
        "model": MODEL,
        "output": "/ticket/category",
    }
    assert "agent" not in node(before, "receive")
    await sqlite_control.set_mode(execution_id, Mode.INTERVAL, interval_ms=5)
    async with asyncio.timeout(30):
        await sqlite_control.wait_for_end(execution_id)
    view = await sqlite_control.view(execution_id)
    call = node(view, "reply")["agent"]
    assert call["state"] == "done"
    assert call["prompt"] == "Answer a refund ticket"
    assert call["response"] == "We will process your refund."
    assert (call["input_tokens"], call["output_tokens"]) == (900, 300)
    assert call["cost_usd"] == pytest.approx((900 * 1.0 + 300 * 5.0) / 1e6)
    assert call["retries"] == 0
    assert call["latency_ms"] >= 0
    assert call["outputs"] == {"/ticket/reply": "We will process your refund."}
    assert call["tool_calls"] == []
    # The recorded past shows the same call, folded from the log.
    past = await sqlite_control.step_back(execution_id)
    assert past.past
    recorded = node(past, "classify")["agent"]
    assert recorded["state"] == "done"
    assert (recorded["prompt"], recorded["response"]) == (f"Classify: {TICKET}", "refund")
    # reply answered in the last tick: the tick before, its call was in flight.
    assert node(past, "reply")["agent"]["state"] == "in flight"
    assert node(past, "reply")["agent"]["prompt"] == "Answer a refund ticket"
    assert "agent" not in node(past, "receive")
    assert await sqlite_control.evaluate(execution_id, "tokens", node_id="triage/classify") == 42
    start = await sqlite_control.reverse_continue(execution_id)  # no stops: to the start
    assert (start.tick, node(start, "classify")["agent"]) == (0, {"kind": "llm", "state": "idle"})


async def test_expressions_at_an_agent_name_its_call_and_elsewhere_are_refused(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    triage_fixtures(tmp_path)
    run = await run_tree(sqlite_control, write("triage.yaml", TRIAGE))
    execution_id = run.info.id

    async def at(name: str, expression: str) -> Any:
        return await sqlite_control.evaluate(execution_id, expression, node_id=f"triage/{name}")

    assert await at("reply", "tokens") == 1200
    assert await at("reply", "input_tokens > 800 and output_tokens == 300")
    assert await at("reply", '"refund" in response')
    assert not await at("classify", '"kettle" in response')
    assert await at("classify", '"kettle" in prompt')
    assert await at("reply", "cost > 0.001")
    assert await at("reply", "retries == 0 and latency_ms >= 0")
    with pytest.raises(ExpressionError) as refused:
        await at("receive", "tokens > 10")
    assert str(refused.value) == (
        "column 1: 'tokens' is a field of an agent's call, and node 'receive' is not an agent"
    )
    names = await sqlite_control.expression_names(execution_id)
    assert {"tokens", "response", "cost", "prompt"} <= set(names)


async def test_a_condition_over_tokens_stops_after_the_agent_that_used_more(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    triage_fixtures(tmp_path)
    execution_id = await launch(sqlite_control, write("triage.yaml", TRIAGE))
    await sqlite_control.set_breakpoints(
        execution_id,
        [
            BreakpointSpec(node="classify", condition="tokens > 1000"),
            BreakpointSpec(node="reply", condition="tokens > 1000"),
        ],
    )
    await sqlite_control.set_mode(execution_id, Mode.AUTO)
    async with asyncio.timeout(30):
        stop = await sqlite_control.wait_for_stop(execution_id)
    assert (stop.node_id, stop.position, stop.reason) == ("triage/reply", "after", "breakpoint")
    view = await sqlite_control.view(execution_id)
    assert node(view, "reply")["agent"]["state"] == "done"
    assert node(view, "classify")["agent"]["input_tokens"] == 40
    await sqlite_control.resume(execution_id, StepKind.CONTINUE)
    async with asyncio.timeout(30):
        info = await sqlite_control.wait_for_end(execution_id)
    assert info.end_reason == "completed"
    events = await events_of(sqlite_control, execution_id)
    assert [e.payload["node_id"] for e in events if e.type == "DebuggerStopped"] == ["triage/reply"]


@pytest.mark.parametrize("capture", [CaptureLevel.VERBOSE, CaptureLevel.SILENT])
async def test_an_edited_answer_is_what_runs_next_and_the_log_says_so(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    tmp_path: Path,
    capture: CaptureLevel,
) -> None:
    triage_fixtures(tmp_path, reply_to="shipping")
    execution_id = await launch(sqlite_control, write("triage.yaml", TRIAGE), capture=capture)
    view = await stopped_at(
        sqlite_control, execution_id, BreakpointSpec(node="classify", condition="tokens > 0")
    )
    assert node(view, "classify")["agent"]["response"] == "refund"
    await sqlite_control.set_blackboard(execution_id, "/ticket/category", "shipping")
    edited = node(await sqlite_control.view(execution_id), "classify")["agent"]
    assert (edited["response"], edited["edited"]) == ("shipping", ["/ticket/category"])
    await sqlite_control.resume(execution_id, StepKind.CONTINUE)
    async with asyncio.timeout(30):
        await sqlite_control.wait_for_end(execution_id)
    view = await sqlite_control.view(execution_id)
    assert view.blackboard["/ticket/reply"] == "We will process your shipping."
    events = await events_of(sqlite_control, execution_id)
    (edit,) = [e.payload for e in events if e.type == "AgentOutputEdited"]
    (answered,) = [
        e.payload
        for e in events
        if e.type == "AgentCallCompleted" and e.payload["node_id"] == "triage/classify"
    ]
    assert (edit["node_id"], edit["key"], edit["call_id"]) == (
        "triage/classify",
        "/ticket/category",
        answered["call_id"],
    )
    if capture is CaptureLevel.VERBOSE:
        assert (edit["old"], edit["new"]) == ("refund", "shipping")
        started = [e.payload for e in events if e.type == "AgentCallStarted"]
        assert started[-1]["prompt"] == "Answer a shipping ticket"
    else:
        assert not {"old", "new"} & set(edit)
        assert edit["digest"] == digest({"old": "refund", "new": "shipping"})


async def test_a_write_that_is_no_answer_of_an_agent_is_no_edit(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    triage_fixtures(tmp_path)
    execution_id = await launch(sqlite_control, write("triage.yaml", TRIAGE))
    # Before classify answered, its output key is just a key.
    await sqlite_control.set_blackboard(execution_id, "/ticket/category", "refund")
    await sqlite_control.set_blackboard(execution_id, "/elsewhere", 1)
    await sqlite_control.set_mode(execution_id, Mode.INTERVAL, interval_ms=5)
    async with asyncio.timeout(30):
        await sqlite_control.wait_for_end(execution_id)
    events = await events_of(sqlite_control, execution_id)
    assert not [e for e in events if e.type == "AgentOutputEdited"]


STEPS = """
import time
from pathlib import Path

CALLS = []


def work(flag):
    CALLS.append(flag)
    if len(CALLS) == 4:  # the fourth call runs until the test lets it go
        while not Path(flag).exists():
            time.sleep(0.005)
    return len(CALLS)
"""

LOOP = """
root:
  type: Sequence
  name: loop
  children:
    - type: python
      name: work
      params:
        function: "steps:work"
        inputs: [flag]
        outputs: [/count]
"""


async def test_a_call_past_three_times_the_median_is_told_once(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("steps.py", STEPS)
    flag = tmp_path / "go"
    info = await sqlite_control.launch(
        LaunchSpec(
            str(write("loop.yaml", LOOP)),
            mode=Mode.INTERVAL,
            interval_ms=5,
            keep_ticking=True,
            blackboard={"flag": str(flag)},
        )
    )
    notes = sqlite_control.notifications(info.id)
    async with asyncio.timeout(30):
        async for note in notes:
            if note.kind == "output" and "is slow" in note.text:
                break
    flag.touch()
    assert note.category == "important"
    assert note.text.startswith("agent work (loop/work) is slow: ")
    assert "3 times its median latency of " in note.text
    answers = 0
    async with asyncio.timeout(30):
        async for _ in sqlite_control.events(info.id, types=["AgentCallCompleted"]):
            answers += 1
            if answers == 4:  # the slow call answered once let go
                break
    await sqlite_control.terminate(info.id)
    events = await events_of(sqlite_control, info.id)
    started = [e.payload["call_id"] for e in events if e.type == "AgentCallStarted"]
    slow = [e.payload for e in events if e.type == "AgentSlow"]
    assert slow[0]["call_id"] == started[3]
    assert slow[0]["basis"] == "median"
    assert slow[0]["elapsed_ms"] > slow[0]["expected_ms"]
    assert len({p["call_id"] for p in slow}) == len(slow)  # once per call


FAILING = f"""
blackboard:
  ticket: "{TICKET}"
root:
  type: Sequence
  name: triage
  children:
    - type: llm
      name: classify
      params:
        model: {MODEL}
        prompt: "Classify: {{{{ missing }}}}"
        inputs: [ticket]
        output: /ticket/category
"""


async def test_the_failure_filter_stops_at_a_failed_agent_saying_why(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    triage_fixtures(tmp_path)
    execution_id = await launch(sqlite_control, write("triage.yaml", FAILING))
    await sqlite_control.set_exception_filters(execution_id, [ExceptionFilter.FAILED])
    await sqlite_control.set_mode(execution_id, Mode.AUTO)
    async with asyncio.timeout(30):
        stop = await sqlite_control.wait_for_stop(execution_id)
    assert (stop.reason, stop.node_id) == ("failure", "triage/classify")
    assert stop.description.startswith("classify returned FAILURE: node 'triage/classify': ")
    assert "missing" in stop.description
    view = await sqlite_control.view(execution_id)
    assert view.state is RunState.STOPPED
    call = node(view, "classify")["agent"]
    assert call["state"] == "failed"
    assert call["error_type"] == "TemplateError"
    assert call["error"] == stop.description.removeprefix("classify returned FAILURE: ")


async def test_a_watch_condition_reads_the_call_of_the_agent_that_wrote(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    triage_fixtures(tmp_path)
    execution_id = await launch(sqlite_control, write("triage.yaml", TRIAGE))
    await sqlite_control.set_watches(
        execution_id,
        [
            WatchSpec("/ticket/category", "tokens > 1000"),  # classify used 42: no stop
            WatchSpec("/ticket/reply", 'tokens > 1000 and "refund" in response'),
        ],
    )
    await sqlite_control.set_mode(execution_id, Mode.AUTO)
    async with asyncio.timeout(30):
        stop = await sqlite_control.wait_for_stop(execution_id)
    assert (stop.reason, stop.node_id) == ("data breakpoint", "triage/reply")
    assert stop.description == "/ticket/reply changed to 'We will process your refund.'"
    await sqlite_control.terminate(execution_id)
