"""Small readers of what the adapter shows: frames, scopes and variables by name."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from tests.server.runtime.factories import Drain

from .client import DapClient, launch_configured, speaking_to

TREES = Path(__file__).resolve().parents[1] / "server" / "runtime" / "trees"
PATROL = "tests.server.runtime.factories:patrol"
FOREVER = "tests.server.runtime.factories:forever"
PATROL_YAML = str(TREES / "patrol.yaml")
TRIAGE_YAML = str(TREES / "triage.yaml")
"""Two llm agents answered offline: classify (42 tokens), then reply (1200 tokens)."""


async def frames(client: DapClient, thread_id: int = 1) -> list[dict[str, Any]]:
    """The stack frames of a stopped thread, top (current node) first."""
    return (await client.ok("stackTrace", {"threadId": thread_id}))["stackFrames"]


async def frame_names(client: DapClient, thread_id: int = 1) -> list[str]:
    """Node names of the stack, current node first (frame names read 'name [Kind] STATUS')."""
    return [f["name"].split(" ")[0] for f in await frames(client, thread_id)]


async def scopes(client: DapClient, thread_id: int = 1) -> dict[str, int]:
    """Scope name -> variablesReference, for the top frame."""
    top = (await frames(client, thread_id))[0]
    found = (await client.ok("scopes", {"frameId": top["id"]}))["scopes"]
    return {s["name"]: s["variablesReference"] for s in found}


async def variables(client: DapClient, reference: int, **paging: int) -> list[dict[str, Any]]:
    return (await client.ok("variables", {"variablesReference": reference, **paging}))["variables"]


async def values(client: DapClient, reference: int) -> dict[str, str]:
    """Variable name -> shown value, under a reference."""
    return {v["name"]: v["value"] for v in await variables(client, reference)}


async def scope_values(client: DapClient, scope: str, thread_id: int = 1) -> dict[str, str]:
    """The variables of one scope (Node, Blackboard or Tick) of the top frame."""
    return await values(client, (await scopes(client, thread_id))[scope])


async def tick(client: DapClient, thread_id: int = 1) -> tuple[int, bool]:
    """(tick, past) as the Tick scope shows them."""
    shown = await scope_values(client, "Tick", thread_id)
    return int(shown["tick"]), shown["past"] == "True"


async def step(
    client: DapClient, command: str = "next", reason: str | None = None, thread_id: int = 1
) -> dict[str, Any]:
    """Send a stepping request and return the ``stopped`` event that ends it (which must be
    for ``reason``, when given)."""
    await client.ok(command, {"threadId": thread_id})
    await client.wait_for("continued", threadId=thread_id)
    stopped = await client.next_event("stopped")
    if reason is not None:
        assert stopped["reason"] == reason, stopped
    return stopped


async def core_scenario(client: DapClient) -> None:
    """Launch, stop at a breakpoint, inspect the stack, scopes and blackboard, evaluate, step,
    end: what every transport must carry."""
    answers = await launch_configured(
        client, PATROL, mode="manual", blackboard={"battery": 100}, breakpoints=[{"name": "drain"}]
    )
    (drain,) = answers["setFunctionBreakpoints"]["breakpoints"]
    assert drain["verified"]
    assert (await client.wait_for("stopped"))["reason"] == "entry"
    assert (await step(client, "continue"))["reason"] == "step"  # manual: one tick at a time
    stopped = await step(client, "continue")
    assert (stopped["reason"], stopped["threadId"]) == ("breakpoint", 1)
    assert stopped["hitBreakpointIds"] == [drain["id"]]
    assert await frame_names(client) == ["drain", "round", "patrol"]
    top = (await frames(client))[0]
    found = (await client.ok("scopes", {"frameId": top["id"]}))["scopes"]
    assert [s["name"] for s in found] == ["Node", "Blackboard", "Tick"]
    assert await values(client, found[1]["variablesReference"]) == {"battery": "100"}
    value = await client.ok("evaluate", {"expression": "battery - 1", "frameId": top["id"]})
    assert value["result"] == "99"
    assert (await step(client, "next"))["reason"] == "step"
    assert await scope_values(client, "Blackboard") == {"battery": "70"}
    await client.ok("disconnect", {"terminateDebuggee": True})


# -- stepping into a node's Python code -----------------------------------------------------

START_DEBUGGING = {"supportsStartDebuggingRequest": True}
UPDATE_LINE = inspect.getsourcelines(Drain.update)[1] + 1
"""The first line of ``Drain.update()``'s body, where a step into it stops."""


async def stopped_before_drain(
    client: DapClient, initialize: dict[str, Any] | None = None, **launch: Any
) -> list[dict[str, Any]]:
    """Launch the patrol and stop before drain's update (tick 2); its frames, drain first."""
    await launch_configured(
        client,
        PATROL,
        mode="manual",
        blackboard={"battery": 100},
        breakpoints=[{"name": "drain"}],
        initialize=initialize,
        **launch,
    )
    assert (await client.next_event("stopped"))["reason"] == "entry"
    await client.ok("continue", {"threadId": 1})
    assert (await client.next_event("stopped"))["reason"] == "step"  # tick 1 ends
    await client.ok("continue", {"threadId": 1})
    assert (await client.next_event("stopped"))["reason"] == "breakpoint"
    found = await frames(client)
    assert found[0]["name"].startswith("drain ")
    return found


async def python_target(client: DapClient, frame: dict[str, Any]) -> int:
    """The id of the step-in target into drain's ``update()``, checking what is offered."""
    targets = (await client.ok("stepInTargets", {"frameId": frame["id"]}))["targets"]
    assert [t["label"] for t in targets] == [
        "next status change",
        "into Drain.update() (factories.py)",
    ]
    return int(targets[1]["id"])


@contextlib.asynccontextmanager
async def child_session(
    spare_adapters: Callable[[], subprocess.Popen[bytes]], request: dict[str, Any]
) -> AsyncIterator[tuple[DapClient, dict[str, Any]]]:
    """What VS Code does with ``startDebugging``: a new adapter of the same type, attached
    with the configuration given; yields it and the attach response."""
    async with speaking_to(spare_adapters()) as child:
        await child.ok(
            "initialize",
            {"adapterID": "canopy", "linesStartAt1": True, "pathFormat": "path"},
        )
        attaching = asyncio.ensure_future(
            child.request("attach", request["arguments"]["configuration"])
        )
        capabilities = await child.next_event("capabilities")
        assert capabilities["capabilities"]["supportsStepBack"] is False  # Canopy's, off
        await child.wait_for("initialized")
        # VS Code sends the tree's filters (from the first initialize): debugpy gets its own.
        filters = await child.ok("setExceptionBreakpoints", {"filters": ["failed", "uncaught"]})
        refused, kept = filters["breakpoints"]
        assert not refused["verified"]
        assert refused["message"].startswith("a tree's filter: Python stops only on ")
        assert kept.get("verified", True)
        await child.ok("configurationDone")
        attached = await attaching
        yield child, attached
