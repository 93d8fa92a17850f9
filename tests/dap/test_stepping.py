"""Stepping as DESIGN.md defines it: next runs one tick, stepIn runs to the next node status
change, stepOut until the parent completes; continue in manual mode runs one tick (or up to a
breakpoint); pause stops a running tree."""

from __future__ import annotations

from .client import DapClient, launch_configured
from .helpers import FOREVER, PATROL, frame_names, frames, scope_values, step, tick


async def test_next_step_in_and_step_out(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"
    assert await tick(client) == (0, False)

    assert (await step(client, "next"))["reason"] == "step"
    assert await tick(client) == (1, False)
    assert await frame_names(client) == ["patrol"]  # a whole tick: stopped at the root

    # Tick 2: move goes RUNNING -> SUCCESS, the first status change of the tick.
    assert (await step(client, "stepIn"))["reason"] == "step"
    assert await tick(client) == (2, False)
    assert [f["name"] for f in await frames(client)] == [
        "move [Wait] SUCCESS",
        "round [Sequence] RUNNING",
        "patrol [Repeat] RUNNING",
    ]
    assert await scope_values(client, "Blackboard") == {"battery": "100"}  # drain not yet

    # Out of move: round completes once drain has run, still in tick 2.
    assert (await step(client, "stepOut"))["reason"] == "step"
    assert await frame_names(client) == ["round", "patrol"]
    assert (await frames(client))[0]["name"] == "round [Sequence] SUCCESS"
    assert await tick(client) == (2, False)
    assert await scope_values(client, "Blackboard") == {"battery": "70"}

    assert (await step(client, "next"))["reason"] == "step"  # the rest of tick 2
    assert await tick(client) == (2, False)
    assert await frame_names(client) == ["patrol"]
    assert (await step(client, "next"))["reason"] == "step"
    assert await tick(client) == (3, False)


async def test_a_step_stops_early_at_a_breakpoint(client: DapClient) -> None:
    answers = await launch_configured(
        client,
        PATROL,
        mode="manual",
        blackboard={"battery": 100},
        breakpoints=[{"name": "drain"}],
    )
    (drain,) = answers["setFunctionBreakpoints"]["breakpoints"]
    await client.next_event("stopped")
    await step(client, "next", "step")
    assert await frame_names(client) == ["patrol"]
    await step(client, "stepIn", "step")
    assert await frame_names(client) == ["move", "round", "patrol"]
    interrupted = await step(client, "stepOut")
    assert (interrupted["reason"], interrupted["hitBreakpointIds"]) == ("breakpoint", [drain["id"]])
    assert await frame_names(client) == ["drain", "round", "patrol"]


async def test_continue_in_manual_mode_runs_one_tick_or_up_to_a_breakpoint(
    client: DapClient,
) -> None:
    await launch_configured(
        client,
        PATROL,
        mode="manual",
        blackboard={"battery": 100},
        breakpoints=[{"name": "drain"}],
    )
    await client.next_event("stopped")
    assert (await step(client, "continue"))["reason"] == "step"
    assert await tick(client) == (1, False)
    assert (await step(client, "continue"))["reason"] == "breakpoint"  # mid-tick 2
    assert await tick(client) == (2, False)
    after = await step(client, "continue")  # from mid-tick: the rest of the tick
    assert after["reason"] == "step"
    assert await tick(client) == (2, False)
    assert await scope_values(client, "Blackboard") == {"battery": "70"}


async def test_continue_in_auto_mode_runs_to_the_next_breakpoint(client: DapClient) -> None:
    await launch_configured(
        client, PATROL, blackboard={"battery": 100}, breakpoints=[{"name": "drain"}]
    )
    for expected_tick, battery in ((2, "100"), (4, "70"), (6, "40")):
        stopped = await client.next_event("stopped")
        assert stopped["reason"] == "breakpoint"
        assert await tick(client) == (expected_tick, False)
        assert await scope_values(client, "Blackboard") == {"battery": battery}
        await client.ok("continue", {"threadId": 1})
        await client.next_event("continued")
    await client.next_event("terminated")  # tick 7: check_battery fails at 10


async def test_pause_stops_a_running_tree_and_next_steps_one_tick(client: DapClient) -> None:
    await launch_configured(client, FOREVER, blackboard={"battery": 10**9})
    await client.ok("pause", {"threadId": 1})
    paused = await client.next_event("stopped")
    assert (paused["reason"], paused["threadId"]) == ("pause", 1)
    paused_at, _ = await tick(client)
    node = await scope_values(client, "Node")
    assert node["id"] in ("'forever'", "'forever/spin'", "'forever/drain'")

    stepped = await step(client, "next")
    assert stepped["reason"] == "step"
    assert (await tick(client))[0] in (paused_at, paused_at + 1)  # the end of that tick
    assert await frame_names(client) == ["forever"]

    await client.ok("continue", {"threadId": 1})
    await client.next_event("continued")
    await client.ok("pause", {"threadId": 1})
    assert (await client.next_event("stopped"))["reason"] == "pause"
    await client.ok("terminate")
    await client.next_event("terminated")
