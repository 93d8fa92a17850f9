"""From a node to its Python code: a real debugpy session stops in the node's ``update()``
while the tree session goes on answering."""

from __future__ import annotations

import asyncio

from .client import DapClient, launch_configured
from .helpers import PATROL


async def attach_debugpy(target: dict) -> tuple[DapClient, int]:
    """Attach a plain debugpy session as the extension would, with the given breakpoint."""
    reader, writer = await asyncio.open_connection(
        target["connect"]["host"], target["connect"]["port"]
    )
    python = DapClient(reader, writer)
    await python.ok(
        "initialize", {"adapterID": "debugpy", "linesStartAt1": True, "pathFormat": "path"}
    )
    attaching = asyncio.ensure_future(python.request("attach", {"justMyCode": True}))
    await python.wait_for("initialized")
    breakpoint = target["breakpoint"]
    placed = await python.ok(
        "setBreakpoints",
        {
            "source": breakpoint["source"],
            "breakpoints": [{"line": breakpoint["line"], "condition": breakpoint["condition"]}],
        },
    )
    assert placed["breakpoints"][0]["verified"]
    await python.ok("configurationDone")
    assert (await attaching)["success"]
    return python, breakpoint["line"]


async def test_a_node_stops_in_its_python_update_under_debugpy(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"
    target = await client.ok("canopy/debugPython", {"nodeId": "patrol/round/drain"})
    assert target["breakpoint"]["source"]["path"].endswith("factories.py")
    assert target["breakpoint"]["condition"] == "self.canopy_id == 'patrol/round/drain'"
    python, line = await attach_debugpy(target)
    try:
        await client.ok("continue", {"threadId": 1})  # tick 1: drain does not run yet
        assert (await client.next_event("stopped"))["reason"] == "step"
        await client.ok("continue", {"threadId": 1})  # tick 2: drain's update runs
        stopped = await python.wait_for("stopped", reason="breakpoint")
        frames = (await python.ok("stackTrace", {"threadId": stopped["threadId"]}))["stackFrames"]
        assert (frames[0]["name"].rpartition(".")[2], frames[0]["line"]) == ("update", line)
        assert frames[0]["source"]["path"].endswith("factories.py")
        # The tree session still answers while Python is stopped.
        assert (await client.ok("threads"))["threads"][0]["id"] == 1
        await python.ok("continue", {"threadId": stopped["threadId"]})
        assert (await client.next_event("stopped"))["reason"] == "step"  # tick 2 ends
        board = await client.ok("evaluate", {"expression": "battery"})
        assert board["result"] == "70"
    finally:
        await python.request("disconnect", {})
        await python.close()


async def test_only_nodes_with_their_own_update_can_be_debugged_in_python(
    client: DapClient,
) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    refused = await client.request("canopy/debugPython", {"nodeId": "patrol/round"})
    assert not refused["success"]
    assert "has no update() of its own" in refused["message"]
    unknown = await client.request("canopy/debugPython", {"nodeId": "nowhere"})
    assert "no node 'nowhere'" in unknown["message"]
