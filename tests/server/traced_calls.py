"""Model work under tracing, in a process of its own as a pod worker would do it: tracing set
up from the environment, spans opened, the provider shut down at the end (which exports them).
``test_telemetry.py`` runs it as ``python -m tests.server.traced_calls SCENARIO FIXTURES``
against its local collector; a process of its own, because a process installs its tracer
provider once."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from canopy.bridge import open_store
from canopy.server.llm import ModelRequest, ToolSpec
from canopy.server.llm.costs import CostTable
from canopy.server.llm.offline import MissingFixture, OfflineModel
from canopy.server.runtime.control import LaunchSpec
from canopy.server.runtime.engine import Mode
from canopy.server.runtime.inprocess import InProcessControl
from canopy.server.telemetry import (
    POD_SERVICE,
    TracedModel,
    agent_span,
    record_tool_result,
    record_usage,
    start_tracing,
    stop_tracing,
    tool_span,
    workflow_span,
)

ANSWERED = ModelRequest(
    model="claude-sonnet-4-5",
    messages=({"role": "user", "content": "Classify: my card was charged twice"},),
    system="Answer with one word.",
    max_tokens=64,
    temperature=0.0,
)
UNANSWERED = ModelRequest(
    model="claude-sonnet-4-5", messages=({"role": "user", "content": "nobody recorded this"},)
)
FOLLOW_UP = ModelRequest(
    model="claude-haiku-4-5",
    messages=(
        *ANSWERED.messages,
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "lookup_order", "input": {"order": 17}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "refunded"}],
        },
    ),
)
"""The turn after the tool ran: the model's call and the tool's result sent back."""
SLOW = ModelRequest(
    model="claude-haiku-4-5", messages=({"role": "user", "content": "take your time"},)
)


async def calls(model: TracedModel) -> None:
    """One answered call, one the fixtures lack, one cancelled while it waits."""
    await model.complete(ANSWERED)
    with contextlib.suppress(MissingFixture):
        await model.complete(UNANSWERED)
    waiting = asyncio.create_task(model.complete(SLOW))
    await asyncio.sleep(0)  # the call starts, and waits for its answer
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


async def nested(model: TracedModel) -> None:
    """A workflow whose agent calls the model, runs the tool the model asked for, and sends
    the model the result."""
    with (
        workflow_span("support-triage"),
        agent_span(
            "classifier", agent_id="node-3", provider=model.provider, model=ANSWERED.model
        ) as agent,
    ):
        response = await model.complete(ANSWERED)
        record_usage(agent, response.usage)
        with tool_span("lookup_order", call_id="call_1", arguments={"order": "A-17"}) as tool:
            record_tool_result(tool, {"status": "refunded"})
        await model.complete(FOLLOW_UP)


WORKFLOW = """
root:
  type: Sequence
  name: triage
  children:
    - type: llm
      name: classify
      params:
        model: claude-sonnet-4-5
        prompt: "Classify: my card was charged twice"
        output: category
        tools:
          - function: "tests.server.traced_calls:lookup_order"
            description: Find an order
            input_schema: {type: object, properties: {order: {type: string}}}
"""


def lookup_order(order: str) -> str:
    """The tool of the traced workflow."""
    return f"order {order}: refunded"


async def workflow(model: TracedModel) -> None:
    """A real execution of a one-agent workflow whose model asks for a tool: the runtime opens
    the spans itself (the model given is not used: the agent opens its own)."""
    folder = Path(sys.argv[2]).parent
    tree = folder / "triage.yaml"
    tree.write_text(WORKFLOW, encoding="utf-8")
    ask = ModelRequest(
        model="claude-sonnet-4-5",
        messages=({"role": "user", "content": "Classify: my card was charged twice"},),
        tools=(ToolSpec("lookup_order", "Find an order", LOOKUP_INPUT),),
    )
    use = {"type": "tool_use", "id": "call_1", "name": "lookup_order", "input": {"order": "A-17"}}
    result = {"type": "tool_result", "tool_use_id": "call_1", "content": "order A-17: refunded"}
    answer = replace(
        ask,
        messages=(
            *ask.messages,
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [result]},
        ),
    )
    responses = {
        ask.fingerprint(): {"tool_calls": [{k: use[k] for k in ("id", "name", "input")}]},
        answer.fingerprint(): {"text": "billing", "usage": {"input_tokens": 42}},
    }
    tree.with_name("triage.fixtures.yaml").write_text(
        yaml.safe_dump({"responses": responses}), encoding="utf-8"
    )
    async with open_store(f"sqlite:///{folder / 'events.db'}") as store:
        control = InProcessControl(store, tenant_id="acme")
        info = await control.launch(LaunchSpec(str(tree), mode=Mode.AUTO))
        ended = await asyncio.wait_for(control.wait_for_end(info.id), 30)
        assert ended.end_reason == "completed", ended
        await control.close()


LOOKUP_INPUT = {"type": "object", "properties": {"order": {"type": "string"}}}
SCENARIOS = {"calls": calls, "nested": nested, "workflow": workflow}


def main() -> None:
    scenario, fixtures = SCENARIOS[sys.argv[1]], Path(sys.argv[2])
    if start_tracing(POD_SERVICE) is None:
        sys.exit("no collector configured")
    try:
        asyncio.run(scenario(TracedModel(OfflineModel(fixtures), costs=CostTable())))
    finally:
        stop_tracing()


if __name__ == "__main__":
    main()
