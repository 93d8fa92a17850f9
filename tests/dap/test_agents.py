"""Debugging workflow agents through the adapter: the Agent scope, breakpoint conditions over an
agent's call, edit and continue on its answer, a slow call told in the console, and an agent's
failure told where the failure filter stops. Trees answer from offline fixtures written beside
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canopy.bridge import EventFilter, RecordedEvent, open_store
from canopy.server.llm import ModelRequest

from ..bridge.helpers import read_all
from ..server.runtime.agent_runs import user, write_fixtures
from .client import DapClient, adapter_over_stdio, launch_configured
from .helpers import frame_names, scope_values, scopes, values

MODEL = "claude-haiku-4-5"
TICKET = "I want a refund for my broken kettle"

TRIAGE = f"""blackboard:
  ticket: "{TICKET}"
root:
  type: Sequence
  name: triage
  children:
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


def triage(folder: Path, *, reply_to: str = "refund") -> str:
    """The triage tree in ``folder`` with its fixtures: ``classify`` answers ``refund`` with
    42 tokens, ``reply`` (to a ``reply_to`` ticket) uses 1200."""
    write_fixtures(
        folder / "triage.fixtures.yaml",
        [
            (
                ModelRequest(model=MODEL, messages=user(f"Classify: {TICKET}")),
                {"text": "refund", "usage": {"input_tokens": 40, "output_tokens": 2}},
            ),
            (
                ModelRequest(model=MODEL, messages=user(f"Answer a {reply_to} ticket")),
                {
                    "text": f"We will process your {reply_to}.",
                    "usage": {"input_tokens": 900, "output_tokens": 300},
                },
            ),
        ],
    )
    path = folder / "triage.yaml"
    path.write_text(TRIAGE, encoding="utf-8")
    return str(path)


async def stopped(client: DapClient) -> dict[str, Any]:
    """The next stop that is not the entry."""
    while True:
        event = await client.next_event("stopped")
        if event["reason"] != "entry":
            return event


async def test_the_agent_scope_shows_the_call_at_a_breakpoint_after_it(
    client: DapClient, tmp_path: Path
) -> None:
    program = triage(tmp_path)
    await launch_configured(
        client,
        program,
        mode="auto",
        breakpoints=[{"name": "reply", "condition": "tokens > 0"}],
    )
    event = await stopped(client)
    assert event["reason"] == "breakpoint"
    assert (await frame_names(client))[0] == "reply"
    assert list(await scopes(client)) == ["Node", "Agent", "Blackboard", "Tick"]
    agent = await scope_values(client, "Agent")
    assert agent["kind"] == "'llm'"
    assert agent["model"] == repr(MODEL)
    assert agent["state"] == "'done'"
    assert agent["prompt"] == "'Answer a refund ticket'"
    assert agent["response"] == "'We will process your refund.'"
    assert (agent["input_tokens"], agent["output_tokens"]) == ("900", "300")
    assert agent["retries"] == "0"
    assert "error" not in agent
    assert float(agent["cost_usd"]) > 0
    outputs = next(
        v
        for v in (
            await client.ok("variables", {"variablesReference": (await scopes(client))["Agent"]})
        )["variables"]
        if v["name"] == "outputs"
    )
    assert await values(client, outputs["variablesReference"]) == {
        "/ticket/reply": "'We will process your refund.'"
    }
    edit = {"variablesReference": outputs["variablesReference"], "name": "/ticket/reply"}
    await client.ok("setVariable", {**edit, "value": '"Refund sent."'})
    shown = await scope_values(client, "Agent")
    assert shown["edited"] == "['/ticket/reply']"
    assert shown["outputs"] == "{'/ticket/reply': 'Refund sent.'}"
    assert shown["response"] == "'Refund sent.'"  # the text output is that key
    await client.ok("disconnect", {"terminateDebuggee": True})


async def test_a_condition_over_tokens_stops_only_at_the_agent_that_used_more(
    client: DapClient, tmp_path: Path
) -> None:
    program = triage(tmp_path)
    await launch_configured(
        client,
        program,
        mode="auto",
        breakpoints=[
            {"name": "classify", "condition": "tokens > 1000"},
            {"name": "reply", "condition": "tokens > 1000"},
        ],
    )
    event = await stopped(client)
    assert (event["reason"], await frame_names(client)) == ("breakpoint", ["reply", "triage"])
    await client.ok("continue", {"threadId": 1})
    ended = await client.until(
        lambda: next(iter(client.pending_events("canopy/executionEnded")), None)
    )
    assert ended["reason"] == "completed"
    assert not [e for e in client.pending_events("stopped") if e["reason"] == "breakpoint"]


async def test_a_condition_on_the_response_text(client: DapClient, tmp_path: Path) -> None:
    program = triage(tmp_path)
    await launch_configured(
        client,
        program,
        mode="auto",
        breakpoints=[{"name": "classify", "condition": '"refund" in response'}],
    )
    event = await stopped(client)
    assert event["reason"] == "breakpoint"
    assert (await frame_names(client))[0] == "classify"
    top = (await client.ok("stackTrace", {"threadId": 1}))["stackFrames"][0]
    answer = await client.ok(
        "evaluate", {"expression": "tokens + retries", "frameId": top["id"], "context": "watch"}
    )
    assert answer["result"] == "42"
    await client.ok("disconnect", {"terminateDebuggee": True})


async def test_an_edited_answer_is_what_the_next_agent_reads_and_the_log_says_so(
    tmp_path: Path,
) -> None:
    program = triage(tmp_path, reply_to="shipping")
    data_dir = tmp_path / ".canopy"
    async with adapter_over_stdio(data_dir) as client:
        await launch_configured(
            client,
            program,
            mode="auto",
            breakpoints=[
                {"name": "classify", "condition": "tokens > 0"},
                {"name": "reply", "condition": "tokens > 0"},
            ],
        )
        await stopped(client)
        agent = (await scopes(client))["Agent"]
        refused = await client.fails(
            "setVariable", {"variablesReference": agent, "name": "tokens", "value": "1"}
        )
        assert refused == (
            "tokens tells of the agent's call: only response and outputs can be edited"
        )
        edited = await client.ok(
            "setVariable",
            {"variablesReference": agent, "name": "response", "value": '"shipping"'},
        )
        assert edited["value"] == "'shipping'"
        shown = await scope_values(client, "Agent")
        assert (shown["response"], shown["edited"]) == ("'shipping'", "['/ticket/category']")
        await client.ok("continue", {"threadId": 1})
        await stopped(client)
        assert (await frame_names(client))[0] == "reply"
        assert (await scope_values(client, "Agent"))["prompt"] == "'Answer a shipping ticket'"
        await client.ok("continue", {"threadId": 1})
        ended = await client.wait_for("canopy/executionEnded")
        assert ended["reason"] == "completed"
        await client.ok("disconnect", {"terminateDebuggee": True})
        await client.wait_closed()
    events = await logged(data_dir, ended["executionId"])
    (edit,) = [e.payload for e in events if e.type == "AgentOutputEdited"]
    assert (edit["node_id"], edit["key"], edit["old"], edit["new"]) == (
        "triage/classify",
        "/ticket/category",
        "refund",
        "shipping",
    )
    changed = [e.payload for e in events if e.type == "BlackboardChanged"]
    assert {"key": "/ticket/category", "writer": "client", "new": "shipping"}.items() <= next(
        p for p in changed if p.get("writer") == "client"
    ).items()


async def logged(data_dir: Path, execution_id: str) -> list[RecordedEvent]:
    """The execution's events in the adapter's log."""
    async with open_store(f"sqlite:///{data_dir / 'events.db'}") as store:
        stream = EventFilter.of("local", streams=[f"execution/{execution_id}"])
        return [e async for e in read_all(store, stream)]


SLOW = f"""root:
  type: Sequence
  name: support
  children:
    - type: llm
      name: draft
      params:
        model: {MODEL}
        prompt: "Draft an answer"
        output: /draft
        timeout_s: 2
"""


async def test_a_slow_agent_is_told_in_the_console_and_its_timeout_stops_the_failure_filter(
    tmp_path: Path,
) -> None:
    write_fixtures(
        tmp_path / "support.fixtures.yaml",
        [
            (
                ModelRequest(model=MODEL, messages=user("Draft an answer")),
                {"text": "Hello", "latency_ms": 60000},
            )
        ],
    )
    program = tmp_path / "support.yaml"
    program.write_text(SLOW, encoding="utf-8")
    data_dir = tmp_path / ".canopy"
    async with adapter_over_stdio(data_dir) as client:
        await launch_configured(client, str(program), mode="auto", exception_filters=["failed"])

        def slow_line() -> dict[str, Any] | None:
            lines = client.pending_events("output")
            return next((e for e in lines if "is slow" in e["output"]), None)

        told = await client.until(slow_line)
        assert told["category"] == "important"
        assert told["output"].startswith("agent draft (support/draft) is slow: ")
        assert "80% of its timeout of 2 s" in told["output"]
        event = await stopped(client)
        assert event["reason"] == "exception"
        assert event["description"] == (
            "draft returned FAILURE: node 'support/draft': no answer within 2 s (timeout_s)"
        )
        assert event["text"] == event["description"]
        info = await client.ok("exceptionInfo", {"threadId": 1})
        assert info["description"] == event["description"]
        assert (await scope_values(client, "Agent"))["state"] == "'failed'"
        await client.ok("continue", {"threadId": 1})
        root = await stopped(client)  # the failure reaches the root: a node with no error
        assert root["description"] == "support returned FAILURE"
        await client.ok("continue", {"threadId": 1})
        ended = await client.wait_for("canopy/executionEnded")
        await client.ok("disconnect", {"terminateDebuggee": True})
        await client.wait_closed()
    events = await logged(data_dir, ended["executionId"])
    (slow,) = [e.payload for e in events if e.type == "AgentSlow"]
    assert (slow["basis"], slow["expected_ms"]) == ("timeout", 1600.0)
    assert slow["elapsed_ms"] > 1600
