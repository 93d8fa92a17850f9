"""Agents never block the tick: a Parallel of agents runs its calls at the same time, and a call
in flight is cancelled when py_trees stops its agent, the execution ends or the tree is
replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from canopy.server.llm import ModelRequest
from canopy.server.runtime.agents import Agent
from canopy.server.runtime.control import LaunchSpec
from canopy.server.runtime.engine import Mode
from canopy.server.runtime.inprocess import InProcessControl

from ..conftest import eventually
from .agent_runs import Run, events_of, run_tree, user, write_fixtures

MODEL = "claude-haiku-4-5"
FANOUT = 4

MEETING = f"""
import asyncio
import threading

_async_barrier = asyncio.Barrier({FANOUT})
_thread_barrier = threading.Barrier({FANOUT}, timeout=20)


async def meet_async(topic):
    # Passes only once all {FANOUT} calls are waiting here at the same time.
    await _async_barrier.wait()
    return topic.upper()


def meet_sync(topic):
    _thread_barrier.wait()
    return topic.upper()
"""


def fan_out(kind: str, bodies: list[str]) -> str:
    children = "".join(
        f"""
    - type: {kind}
      name: part{index}
      params:
{body}"""
        for index, body in enumerate(bodies)
    )
    return f"""
root:
  type: Parallel
  name: fan
  children:{children}
"""


def python_body(function: str, index: int) -> str:
    return (
        f'        function: "meeting:{function}"\n'
        f"        inputs: [/part{index}/topic]\n"
        f"        outputs: [result{index}]\n"
        "        timeout_s: 20"
    )


@pytest.mark.parametrize("function", ["meet_async", "meet_sync"])
async def test_a_parallel_of_python_agents_runs_their_calls_together(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], function: str
) -> None:
    write("meeting.py", MEETING)
    bodies = [python_body(function, index) for index in range(FANOUT)]
    path = write("fan.yaml", fan_out("python", bodies))
    topics = {f"part{index}/topic": f"t{index}" for index in range(FANOUT)}
    run = await run_tree(sqlite_control, path, blackboard=topics)
    assert not run.of("AgentCallFailed"), [p["message"] for p in run.of("AgentCallFailed")]
    assert {run.blackboard[f"/result{index}"] for index in range(FANOUT)} == {
        f"T{index}" for index in range(FANOUT)
    }


def starts_and_ends(run: Run) -> tuple[list[int], list[int]]:
    """When each call started (its event's time) and when it had at the earliest ended (that
    time plus its latency, measured from the call's own start, which comes after), in µs."""
    starts = {e.payload["call_id"]: e.time_us for e in run.events if e.type == "AgentCallStarted"}
    ends = [
        starts[p["call_id"]] + int(p["latency_ms"] * 1000) for p in run.of("AgentCallCompleted")
    ]
    return list(starts.values()), ends


def model_fan_out(write: Callable[[str, str], Path], tmp_path: Path, *, latency_ms: int) -> Path:
    """A Parallel of FANOUT model agents, each answered offline after ``latency_ms``."""
    prompts = [f"Summarise part {index}" for index in range(FANOUT)]
    write_fixtures(
        tmp_path / "fan.fixtures.yaml",
        [
            (
                ModelRequest(model=MODEL, messages=user(p)),
                {"text": f"s{i}", "latency_ms": latency_ms},
            )
            for i, p in enumerate(prompts)
        ],
    )
    bodies = [
        f'        model: {MODEL}\n        prompt: "{prompt}"\n        output: summary{index}'
        for index, prompt in enumerate(prompts)
    ]
    return write("fan.yaml", fan_out("llm", bodies))


async def test_a_parallel_of_model_calls_overlaps(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    run = await run_tree(sqlite_control, model_fan_out(write, tmp_path, latency_ms=300))
    assert [run.blackboard[f"/summary{index}"] for index in range(FANOUT)] == [
        f"s{index}" for index in range(FANOUT)
    ]
    starts, ends = starts_and_ends(run)
    assert len(starts) == len(ends) == FANOUT
    assert max(starts) < min(ends)  # every call started before any of them ended
    first_completed = run.types().index("AgentCallCompleted")
    assert run.types()[:first_completed] == ["AgentCallStarted"] * FANOUT


async def test_in_auto_mode_a_tree_waiting_on_calls_ticks_when_one_finishes_not_before(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    program = model_fan_out(write, tmp_path, latency_ms=200)
    info = await sqlite_control.launch(LaunchSpec(str(program), mode=Mode.AUTO))
    async with asyncio.timeout(30):
        ended = await sqlite_control.wait_for_end(info.id)
    assert (ended.end_reason, ended.tick) == ("completed", ended.tick)
    # One tick starts the calls; each finished call wakes at most one more (polling them in a
    # busy loop would have ticked thousands of times in their 200 ms).
    assert 2 <= ended.tick <= FANOUT + 1
    ticks = [e for e in await events_of(sqlite_control, info.id) if e.type == "TickCompleted"]
    assert len(ticks) == ended.tick


async def test_in_interval_mode_a_finished_call_is_taken_up_before_the_next_interval(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    program = model_fan_out(write, tmp_path, latency_ms=50)
    spec = LaunchSpec(str(program), mode=Mode.INTERVAL, interval_ms=SLOW)
    info = await sqlite_control.launch(spec)
    async with asyncio.timeout(30):  # the interval alone would keep it a minute per tick
        ended = await sqlite_control.wait_for_end(info.id)
    assert ended.end_reason == "completed"
    # The first tick starts the calls; each finished call brings one more tick at most.
    assert 2 <= ended.tick <= FANOUT + 1


SLOW = 60_000
"""An answer that takes a minute: the call is surely in flight when it is cancelled."""


def agent_calls_running() -> list[asyncio.Task[object]]:
    """The agent calls still running on this loop."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "timed" and not task.done()
    ]


async def no_call_left() -> None:
    """Wait until every agent call on this loop has unwound."""
    await eventually(lambda: not agent_calls_running(), "the agents' calls unwind")


THOUGHT = " ".join(f"word{index}" for index in range(1000))
"""A long answer, streamed word by word over a minute."""


def guarded(tmp_path: Path, write: Callable[[str, str], Path]) -> Path:
    """A Selector whose first branch succeeds once ``done`` is on the blackboard; the second
    is an agent whose answer takes a minute."""
    prompt = "Think hard"
    answer = {"text": THOUGHT, "latency_ms": SLOW}
    write_fixtures(
        tmp_path / "guard.fixtures.yaml",
        [(ModelRequest(model=MODEL, messages=user(prompt)), answer)],
    )
    return write(
        "guard.yaml",
        f"""
        root:
          type: Selector
          name: guard
          params: {{memory: false}}
          children:
            - type: CheckBlackboardVariableExists
              name: done
              params: {{variable_name: done}}
            - type: llm
              name: think
              params: {{model: {MODEL}, prompt: "{prompt}", output: thought}}
        """,
    )


async def start_thinking(control: InProcessControl, path: Path) -> str:
    """Launch the guarded tree in manual mode and tick once: the agent's call is in flight."""
    info = await control.launch(LaunchSpec(str(path)))
    await control.tick(info.id)
    await control.settle(info.id)
    view = await control.view(info.id)
    assert {n["id"]: n["status"] for n in view.nodes}["guard/think"] == "RUNNING"
    return info.id


async def test_a_higher_priority_branch_cancels_the_call_in_flight(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    execution_id = await start_thinking(sqlite_control, guarded(tmp_path, write))
    await sqlite_control.set_blackboard(execution_id, "done", True)
    await sqlite_control.tick(execution_id)
    async with asyncio.timeout(30):
        info = await sqlite_control.wait_for_end(execution_id)
    assert info.end_reason == "completed"
    await no_call_left()
    events = await events_of(sqlite_control, execution_id)
    types = [e.type for e in events if e.type.startswith("Agent")]
    assert types == ["AgentCallStarted", "AgentCallCancelled"]
    cancelled = next(e.payload for e in events if e.type == "AgentCallCancelled")
    assert cancelled["reason"] == "preempted"
    assert cancelled["node_id"] == "guard/think"
    assert cancelled["tick"] == 2
    after = [(e.type, e.payload.get("node_id")) for e in events]
    index = after.index(("AgentCallCancelled", "guard/think"))
    assert ("NodeStatusChanged", "guard/think") in after[index:]  # then it turns INVALID


async def test_terminating_the_execution_cancels_the_call_in_flight(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    execution_id = await start_thinking(sqlite_control, guarded(tmp_path, write))
    await sqlite_control.terminate(execution_id)
    await no_call_left()
    events = await events_of(sqlite_control, execution_id)
    cancelled = [e.payload for e in events if e.type == "AgentCallCancelled"]
    assert [c["reason"] for c in cancelled] == ["ended"]
    assert [e.type for e in events][-2:] == ["AgentCallCancelled", "ExecutionEnded"]


async def test_reloading_the_tree_cancels_the_old_trees_call(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    path = guarded(tmp_path, write)
    execution_id = await start_thinking(sqlite_control, path)
    await sqlite_control.reload(execution_id, str(path))
    await no_call_left()
    events = await events_of(sqlite_control, execution_id)
    cancelled = [e.payload for e in events if e.type == "AgentCallCancelled"]
    assert [c["reason"] for c in cancelled] == ["reloaded"]
    await sqlite_control.terminate(execution_id)


async def test_the_text_streamed_so_far_is_on_the_agent(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    execution_id = await start_thinking(sqlite_control, guarded(tmp_path, write))
    execution = sqlite_control._entries[execution_id].execution
    agent = execution.node_by_id("guard/think")
    assert isinstance(agent, Agent)
    await eventually(lambda: bool(agent.partial), "the first words of the answer arrive")
    assert THOUGHT.startswith(agent.partial)
    assert agent.partial != THOUGHT  # the answer is still coming
    await sqlite_control.terminate(execution_id)
