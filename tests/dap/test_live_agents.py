"""The live tree's stream carries the workflow's agent calls: a timeline of calls sees each one
start and end as it happens, and can ask for those that came before it opened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canopy.server.llm import ModelRequest

from ..server.runtime.agent_runs import user, write_fixtures
from .client import DapClient, launch_configured
from .helpers import step

MODEL = "claude-haiku-4-5"

WORKFLOW = f"""
root:
  type: Sequence
  name: triage
  children:
    - type: Parallel
      name: fan
      children:
        - type: llm
          name: classify
          params:
            model: {MODEL}
            prompt: "Classify the ticket"
            output: category
        - type: llm
          name: summarize
          params:
            model: {MODEL}
            prompt: "Summarize the ticket"
            output: summary
    - type: llm
      name: reply
      params:
        model: {MODEL}
        prompt: "Reply to the ticket"
        output: answer
"""


def workflow(folder: Path) -> str:
    """The triage workflow: two answered calls side by side, then one with no fixture (which
    fails, MissingFixture)."""
    write_fixtures(
        folder / "triage.fixtures.yaml",
        [
            (
                ModelRequest(model=MODEL, messages=user("Classify the ticket")),
                {"text": "billing", "usage": {"input_tokens": 12, "output_tokens": 1}},
            ),
            (
                ModelRequest(model=MODEL, messages=user("Summarize the ticket")),
                {"text": "short", "latency_ms": 50},
            ),
        ],
    )
    tree = folder / "triage.yaml"
    tree.write_text(WORKFLOW, encoding="utf-8")
    return str(tree)


def agent_events(client: DapClient, since: int = 0) -> list[dict[str, Any]]:
    """Every agent event the batches brought since the client's event ``since``."""
    return [
        call
        for event in client.events[since:]
        if event["event"] == "canopy/nodeStatuses"
        for call in event["body"]["agents"]
    ]


async def test_the_agents_calls_arrive_on_the_live_stream_as_they_happen(
    client: DapClient, tmp_path: Path
) -> None:
    await launch_configured(client, workflow(tmp_path), mode="auto", stopOnEntry=True)
    await client.next_event("stopped")
    await client.ok("canopy/liveTree", {"threadId": 1, "batchMs": 20})
    await client.ok("continue", {"threadId": 1})
    await client.wait_for("exited")
    calls = agent_events(client)
    kinds = [(call["type"], call["node_id"].rpartition("/")[2]) for call in calls]
    assert sorted(kinds[:2]) == [
        ("AgentCallStarted", "classify"),
        ("AgentCallStarted", "summarize"),
    ]
    assert ("AgentCallCompleted", "classify") in kinds
    assert ("AgentCallCompleted", "summarize") in kinds
    assert kinds[-2:] == [("AgentCallStarted", "reply"), ("AgentCallFailed", "reply")]
    offsets = [call["offset"] for call in calls]
    assert offsets == sorted(set(offsets))  # in log order, each once
    completed = {c["node_id"]: c for c in calls if c["type"] == "AgentCallCompleted"}
    classified = completed["triage/fan/classify"]
    assert (classified["input_tokens"], classified["output_tokens"]) == (12, 1)
    assert classified["agent"] == "llm"
    assert classified["retries"] == 0
    assert "text" not in classified  # the answer's content stays in the log
    started = next(c for c in calls if c["call_id"] == classified["call_id"])
    assert started["type"] == "AgentCallStarted"
    assert "prompt" not in started
    assert classified["time"] >= started["time"] > 1e12  # milliseconds since the epoch
    failed = calls[-1]
    assert failed["error_type"] == "MissingFixture"
    assert "Reply to the ticket" in failed["message"]
    assert failed["latency_ms"] >= 0


async def test_a_late_timeline_asks_for_the_calls_that_came_before_it(
    client: DapClient, tmp_path: Path
) -> None:
    await launch_configured(client, workflow(tmp_path), mode="manual", stopOnEntry=True)
    await client.next_event("stopped")
    await step(client, "next", "step")  # tick 1: both calls of the fan start
    picture = (await client.ok("canopy/picture", {"format": "json"}))["content"]
    first = len(client.events)
    await client.ok(
        "canopy/liveTree", {"batchMs": 20, "after": picture["offset"], "agentsAfter": 0}
    )
    batch = await client.next_event("canopy/nodeStatuses")
    early = [c for c in batch["agents"] if c["offset"] <= picture["offset"]]
    assert sorted(c["node_id"] for c in early if c["type"] == "AgentCallStarted") == [
        "triage/fan/classify",
        "triage/fan/summarize",
    ]
    assert batch["changes"] == {}  # the statuses before the picture are in the picture
    assert agent_events(client, first)[0] == batch["agents"][0]
    message = await client.fails("canopy/liveTree", {"batchMs": 20, "agentsAfter": -2})
    assert message == "canopy/liveTree: agentsAfter is a log offset, not -2"
    assert (await client.ok("threads"))["threads"]  # the session is still healthy


async def test_the_single_event_stream_sends_agent_calls_of_their_own(
    client: DapClient, tmp_path: Path
) -> None:
    await launch_configured(client, workflow(tmp_path), mode="manual", stopOnEntry=True)
    await client.next_event("stopped")
    await step(client, "next", "step")  # tick 1: both calls of the fan start
    picture = (await client.ok("canopy/picture", {"format": "json"}))["content"]
    first = len(client.events)
    await client.ok("canopy/liveTree", {"after": picture["offset"], "agentsAfter": 0})
    call = await client.wait_for("canopy/agentCall", type="AgentCallStarted")
    assert call["threadId"] == 1
    assert call["offset"] <= picture["offset"]  # from before the picture, as asked
    assert call["node_id"] in {"triage/fan/classify", "triage/fan/summarize"}
    assert call["agent"] == "llm"
    assert "prompt" not in call
    await step(client, "next", "step")
    done = await client.wait_for("canopy/nodeStatus", type="TickCompleted")
    assert done["tick"] == 2
    statuses = [e["body"] for e in client.events[first:] if e["event"] == "canopy/nodeStatus"]
    assert min(status["offset"] for status in statuses) > picture["offset"]


LATE = f"""
root:
  type: llm
  name: draft
  params:
    model: {MODEL}
    prompt: "Draft an answer"
    output: answer
    timeout_s: 0.5
"""


async def test_a_call_running_late_is_told_on_the_live_stream_before_it_ends(
    client: DapClient, tmp_path: Path
) -> None:
    write_fixtures(
        tmp_path / "late.fixtures.yaml",
        [(ModelRequest(model=MODEL, messages=user("Draft an answer")), {"latency_ms": 60000})],
    )
    tree = tmp_path / "late.yaml"
    tree.write_text(LATE, encoding="utf-8")
    await launch_configured(client, str(tree), mode="auto", stopOnEntry=True)
    await client.next_event("stopped")
    await client.ok("canopy/liveTree", {"threadId": 1, "batchMs": 20})
    await client.ok("continue", {"threadId": 1})
    await client.wait_for("exited")
    calls = agent_events(client)
    assert [call["type"] for call in calls] == [
        "AgentCallStarted",
        "AgentSlow",
        "AgentCallFailed",
    ]
    slow = calls[1]
    assert (slow["basis"], slow["expected_ms"]) == ("timeout", 400.0)
    assert slow["elapsed_ms"] > 400
    assert slow["call_id"] == calls[0]["call_id"]
