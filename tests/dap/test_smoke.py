"""The adapter end to end over a real pipe: launch, stop at a breakpoint, inspect, step, end."""

from __future__ import annotations

from pathlib import Path

from .client import adapter_over_stdio, launch_configured

PATROL = "tests.server.runtime.factories:patrol"


async def test_a_breakpoint_stops_and_the_state_can_be_inspected(tmp_path: Path) -> None:
    async with adapter_over_stdio(tmp_path) as client:
        await launch_configured(
            client,
            PATROL,
            mode="manual",
            blackboard={"battery": 100},
            breakpoints=[{"name": "drain"}],
        )
        await client.wait_for("stopped", reason="entry")
        await client.ok("continue", {"threadId": 1})
        await client.wait_for("stopped", reason="step")  # manual mode: one tick at a time
        await client.ok("continue", {"threadId": 1})
        stopped = await client.wait_for("stopped", reason="breakpoint")
        assert stopped["threadId"] == 1
        frames = (await client.ok("stackTrace", {"threadId": 1}))["stackFrames"]
        assert [f["name"].split(" ")[0] for f in frames] == ["drain", "round", "patrol"]
        scopes = (await client.ok("scopes", {"frameId": frames[0]["id"]}))["scopes"]
        assert [s["name"] for s in scopes] == ["Node", "Blackboard", "Tick"]
        board = await client.ok(
            "variables", {"variablesReference": scopes[1]["variablesReference"]}
        )
        assert {v["name"]: v["value"] for v in board["variables"]} == {"battery": "100"}
        value = await client.ok(
            "evaluate", {"expression": "battery - 1", "frameId": frames[0]["id"]}
        )
        assert value["result"] == "99"
        await client.ok("disconnect", {"terminateDebuggee": True})
