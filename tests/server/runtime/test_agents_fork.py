"""Forks and restarts of a workflow: agents whose inputs did not change are answered from the
log, proved by the requests the model's server sees (the real ``anthropic`` SDK against a local
server speaking the Messages API); only what an edit reaches runs live."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from canopy.bridge import EventFilter, ReadPage, open_store
from canopy.server.llm import ModelRequest, ToolSpec
from canopy.server.runtime.control import UnknownExecution
from canopy.server.runtime.engine import CaptureLevel
from canopy.server.runtime.inprocess import InProcessControl

from ..llm.messages_server import MessagesServer, reply
from .agent_runs import Run, events_of, run_tree, user, write_fixtures

MODEL = "claude-haiku-4-5"
TICKET = "I was charged twice"

ROUTE = """
def route(category):
    return {"billing": "queue-b", "refund": "queue-r"}.get(category, "queue-x")
"""

WORKFLOW = """
blackboard:
  ticket: "I was charged twice"
root:
  type: Sequence
  name: triage
  children:
    - type: llm
      name: classify
      params:
        model: claude-haiku-4-5
        prompt: "Classify: {{ ticket }}"
        inputs: [ticket]
        output: category
    - type: python
      name: route
      params:
        function: routing:route
        inputs: [category]
        outputs: [queue]
    - type: llm
      name: summarise
      params:
        model: claude-haiku-4-5
        prompt: "Summarise for {{ queue }} ({{ category }}): {{ ticket }}"
        inputs: [ticket, category, queue]
        output: summary
"""


def ask(text: str) -> ModelRequest:
    return ModelRequest(model=MODEL, messages=user(text))


@pytest.fixture
def messages(anthropic_messages: MessagesServer) -> MessagesServer:
    """The model's server, with the triage workflow's answers."""
    server = anthropic_messages
    server.script(ask(f"Classify: {TICKET}"), reply("billing"))
    server.script(ask(f"Summarise for queue-b (billing): {TICKET}"), reply("Refund the copy"))
    server.script(ask(f"Summarise for queue-r (refund): {TICKET}"), reply("Refund it now"))
    return server


async def ended(control: InProcessControl, execution_id: str) -> Run:
    async with asyncio.timeout(30):
        info = await control.wait_for_end(execution_id)
    view = await control.view(execution_id)
    return Run(info, await events_of(control, execution_id), dict(view.blackboard))


async def test_a_restart_calls_no_model_and_a_fork_calls_only_what_its_edit_reaches(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    messages: MessagesServer,
) -> None:
    write("routing.py", ROUTE)
    source = await run_tree(sqlite_control, write("triage.yaml", WORKFLOW))
    assert source.blackboard["/summary"] == "Refund the copy"
    assert messages.calls == 2

    restart = await ended(sqlite_control, (await sqlite_control.fork(source.info.id, tick=0)).id)
    assert messages.calls == 2  # every answer came from the log
    assert restart.info.end_reason == "completed"
    assert {k: restart.blackboard[k] for k in ("/category", "/queue", "/summary")} == {
        "/category": "billing",
        "/queue": "queue-b",
        "/summary": "Refund the copy",
    }
    served = {p["node_id"]: p["served_from"] for p in restart.of("AgentCallCompleted")}
    assert set(served) == {"triage/classify", "triage/route", "triage/summarise"}
    assert {s["execution_id"] for s in served.values()} == {source.info.id}
    assert all(p["cost_usd"] == 0.0 for p in restart.of("AgentCallCompleted") if "cost_usd" in p)

    # An edited category is pinned: classify is served but does not overwrite it; route and
    # summarise see new inputs and run live (one model call).
    fork = await sqlite_control.fork(source.info.id, blackboard={"category": "refund"})
    forked = await ended(sqlite_control, fork.id)
    assert messages.calls == 3
    assert forked.blackboard["/category"] == "refund"
    assert forked.blackboard["/queue"] == "queue-r"
    assert forked.blackboard["/summary"] == "Refund it now"
    live = [p["node_id"] for p in forked.of("AgentCallCompleted") if "served_from" not in p]
    assert live == ["triage/route", "triage/summarise"]

    # The diff of the run and its fork, agent by agent.
    diff = await sqlite_control.diff_executions(source.info.id, fork.id)
    agents = {agent.node_id: agent for agent in diff.agents}
    assert list(agents) == ["triage/classify", "triage/route", "triage/summarise"]
    classify = agents["triage/classify"]
    assert classify.a is not None
    assert classify.b is not None
    assert (classify.a.status, classify.b.status, classify.differs) == ("completed", "served", ())
    assert classify.b.cost_usd == 0.0
    assert agents["triage/route"].differs == ("outputs",)
    summarise = agents["triage/summarise"]
    assert summarise.differs == ("outputs", "text")
    assert summarise.b is not None
    assert summarise.b.outputs == {"/summary": "Refund it now"}
    assert summarise.b.input_tokens == 12  # the local server's usage for one call


async def test_the_answers_of_an_ended_execution_are_read_once_for_all_its_forks(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    messages: MessagesServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write("routing.py", ROUTE)
    source = await run_tree(sqlite_control, write("triage.yaml", WORKFLOW))
    store = sqlite_control.store
    original = store.read
    answer_reads: list[EventFilter] = []

    async def read(event_filter: EventFilter, **options: Any) -> ReadPage:
        if "AgentCallCompleted" in event_filter.types:
            answer_reads.append(event_filter)
        return await original(event_filter, **options)

    monkeypatch.setattr(store, "read", read)
    for edit in ({}, {"category": "refund"}):
        forked = await ended(
            sqlite_control, (await sqlite_control.fork(source.info.id, blackboard=edit)).id
        )
        assert forked.info.end_reason == "completed"
    assert len(answer_reads) == 1
    assert forked.blackboard["/category"] == "refund"  # the second fork's edit is pinned
    assert messages.calls == 3  # the first fork was all answers; the second ran two agents


async def test_nodes_named_live_run_even_when_an_answer_fits(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    messages: MessagesServer,
) -> None:
    write("routing.py", ROUTE)
    source = await run_tree(sqlite_control, write("triage.yaml", WORKFLOW))
    fork = await sqlite_control.fork(source.info.id, tick=0, live=["triage/classify"])
    forked = await ended(sqlite_control, fork.id)
    assert messages.calls == 3  # classify again; route and summarise from the log
    live = [p["node_id"] for p in forked.of("AgentCallCompleted") if "served_from" not in p]
    assert live == ["triage/classify"]


async def test_a_silent_run_keeps_no_answers_so_its_fork_runs_live(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    messages: MessagesServer,
) -> None:
    write("routing.py", ROUTE)
    tree = write("triage.yaml", WORKFLOW)
    source = await run_tree(sqlite_control, tree, capture=CaptureLevel.SILENT)
    assert messages.calls == 2
    restart = await ended(sqlite_control, (await sqlite_control.fork(source.info.id, tick=0)).id)
    assert messages.calls == 4  # digests cannot answer anything
    assert not [p for p in restart.of("AgentCallCompleted") if "served_from" in p]
    assert restart.info.end_reason == "completed"


REFUNDS = """
from pathlib import Path


def refund(order):
    with Path(__file__).with_name("refunds.txt").open("a") as done:
        done.write(order + "\\n")
    return "refunded " + order
"""

HANDLE = """
blackboard:
  ticket: "T1"
root:
  type: Sequence
  name: desk
  children:
    - type: llm
      name: handle
      params:
        model: claude-haiku-4-5
        prompt: "Handle: {{ ticket }}"
        inputs: [ticket]
        output: answer
        tools:
          - function: "refunds:refund"
            description: Refund an order
            effects: true
            input_schema: {type: object, properties: {order: {type: string}}}
"""

REFUND = ToolSpec(
    "refund", "Refund an order", {"type": "object", "properties": {"order": {"type": "string"}}}
)


def refund_turns(ticket: str, order: str, answer: str) -> list[tuple[ModelRequest, dict[str, Any]]]:
    """The model asks for ``refund(order)`` about ``ticket``, then answers ``answer``."""
    asked = ModelRequest(model=MODEL, messages=user(f"Handle: {ticket}"), tools=(REFUND,))
    use = {"id": "call_1", "name": "refund", "input": {"order": order}}
    result = {"type": "tool_result", "tool_use_id": "call_1", "content": f"refunded {order}"}
    then = replace(
        asked,
        messages=(
            *asked.messages,
            {"role": "assistant", "content": [{"type": "tool_use", **use}]},
            {"role": "user", "content": [result]},
        ),
    )
    return [(asked, {"tool_calls": [use]}), (then, {"text": answer})]


async def test_a_tool_with_effects_never_runs_again_in_a_fork_unless_its_node_is_live(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("refunds.py", REFUNDS)
    write_fixtures(
        tmp_path / "desk.fixtures.yaml",
        [
            *refund_turns("T1", "A-1", "done"),
            *refund_turns("T1 again", "A-1", "done again"),
            *refund_turns("T2", "A-2", "done too"),
        ],
    )
    refunds = tmp_path / "refunds.txt"
    source = await run_tree(sqlite_control, write("desk.yaml", HANDLE))
    assert refunds.read_text() == "A-1\n"

    # The agent runs live (its prompt changed); the refund it asks for again is served.
    again = await ended(
        sqlite_control,
        (await sqlite_control.fork(source.info.id, blackboard={"ticket": "T1 again"})).id,
    )
    assert again.blackboard["/answer"] == "done again"
    assert refunds.read_text() == "A-1\n"
    tool = again.one("AgentToolCalled")
    assert tool["served_from"]["execution_id"] == source.info.id
    assert tool["output"] == "refunded A-1"

    # A refund the source never made is refused...
    other = await ended(
        sqlite_control, (await sqlite_control.fork(source.info.id, blackboard={"ticket": "T2"})).id
    )
    failed = other.one("AgentCallFailed")
    assert failed["error_type"] == "EffectsRefused"
    assert "tool 'refund' has effects" in failed["message"]
    assert refunds.read_text() == "A-1\n"
    # ... unless the user lets the node run live.
    live = await sqlite_control.fork(
        source.info.id, blackboard={"ticket": "T2"}, live=["desk/handle"]
    )
    assert (await ended(sqlite_control, live.id)).blackboard["/answer"] == "done too"
    assert refunds.read_text() == "A-1\nA-2\n"


async def test_a_restart_after_a_fix_runs_the_fixed_agent_and_serves_the_rest(
    sqlite_control: InProcessControl,
    write: Callable[[str, str], Path],
    messages: MessagesServer,
) -> None:
    routing = write(
        "routing.py", 'def route(category):\n    return {"refund": "queue-r"}[category]\n'
    )
    source = await run_tree(sqlite_control, write("triage.yaml", WORKFLOW))
    assert source.one("AgentCallFailed")["error_type"] == "builtins.KeyError"  # billing unknown
    assert messages.calls == 1

    routing.write_text(ROUTE, encoding="utf-8")
    later = routing.stat().st_mtime_ns + 1_000_000_000  # an edit the clock can tell apart
    os.utime(routing, ns=(later, later))
    restart = await ended(sqlite_control, (await sqlite_control.fork(source.info.id, tick=0)).id)
    assert restart.blackboard["/queue"] == "queue-b"
    assert restart.blackboard["/summary"] == "Refund the copy"
    served = [p["node_id"] for p in restart.of("AgentCallCompleted") if "served_from" in p]
    assert served == ["triage/classify"]  # the failed agent ran again, with the fix
    assert messages.calls == 2  # classify from the log; summarise for the first time


async def test_an_execution_another_process_ran_forks_from_its_log(
    sqlite_url: str,
    write: Callable[[str, str], Path],
    messages: MessagesServer,
) -> None:
    """An editor restarted, a pod that died: the fork reads how the source was launched and
    what it answered from the log alone."""
    write("routing.py", ROUTE)
    async with open_store(sqlite_url) as store:
        first = InProcessControl(store, tenant_id="acme")
        source = await run_tree(first, write("triage.yaml", WORKFLOW))
        await first.close()
        second = InProcessControl(store, tenant_id="acme")
        fork = await second.fork(source.info.id, blackboard={"category": "refund"})
        forked = await ended(second, fork.id)
        await second.close()
        with pytest.raises(UnknownExecution):
            await InProcessControl(store, tenant_id="globex").fork(source.info.id)
    assert messages.calls == 3
    assert forked.blackboard["/summary"] == "Refund it now"
    assert forked.info.program == source.info.program
    served = [p["node_id"] for p in forked.of("AgentCallCompleted") if "served_from" in p]
    assert served == ["triage/classify"]
