"""Step back and reverse continue: a read-only view of the recorded past, rebuilt from the
event log; continue returns to the live tree."""

from __future__ import annotations

from .client import DapClient, launch_configured
from .helpers import PATROL, frame_names, frames, scope_values, scopes, step, tick


async def test_step_back_shows_the_previous_tick(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    for _ in range(2):
        await step(client, "next", "step")
    assert await tick(client) == (2, False)
    assert await scope_values(client, "Blackboard") == {"battery": "70"}

    await client.ok("stepBack", {"threadId": 1})
    back = await client.next_event("stopped")
    assert back["reason"] == "step"
    assert back["description"] == "tick 1 (recorded; continue to return to the live tree)"
    assert await tick(client) == (1, True)
    assert await scope_values(client, "Blackboard") == {"battery": "100"}
    shown = await frames(client)
    assert [f["name"] for f in shown] == ["patrol [Repeat] RUNNING"]
    assert all(f["presentationHint"] == "subtle" for f in shown)
    result = await client.ok("evaluate", {"expression": "battery + 1", "frameId": shown[0]["id"]})
    assert result["result"] == "101"  # evaluated over the past, not the live blackboard

    # The past is read-only.
    board = (await scopes(client))["Blackboard"]
    message = await client.fails(
        "setVariable", {"variablesReference": board, "name": "battery", "value": "1"}
    )
    assert message == "the past is read-only: continue to return to the live execution"

    await client.ok("stepBack", {"threadId": 1})
    assert (await client.next_event("stopped"))["description"].startswith("tick 0 ")
    assert await tick(client) == (0, True)
    assert await frame_names(client) == ["patrol"]
    assert (await frames(client))[0]["name"] == "patrol [Repeat] INVALID"
    message = await client.fails("stepBack", {"threadId": 1})
    assert message == "already at the start of the execution"


async def test_reverse_continue_goes_to_the_previous_stop_and_continue_returns_to_live(
    client: DapClient,
) -> None:
    await launch_configured(
        client,
        PATROL,
        mode="manual",
        blackboard={"battery": 100},
        breakpoints=[{"name": "drain"}],
    )
    await client.next_event("stopped")  # entry, tick 0
    await step(client, "continue", "step")  # tick 1
    await step(client, "continue", "breakpoint")  # drain's, tick 2, battery 100
    await step(client, "continue", "step")  # the end of tick 2, battery 70
    assert await scope_values(client, "Blackboard") == {"battery": "70"}

    await client.ok("reverseContinue", {"threadId": 1})
    previous = await client.next_event("stopped")
    assert previous["description"].startswith("tick 2 ")
    assert await tick(client) == (2, True)
    assert await scope_values(client, "Blackboard") == {"battery": "100"}  # before drain ran

    await client.ok("reverseContinue", {"threadId": 1})
    await client.next_event("stopped")
    assert await tick(client) == (1, True)
    await client.ok("reverseContinue", {"threadId": 1})
    await client.next_event("stopped")
    assert await tick(client) == (0, True)

    # Continue leaves the past: the live tree (stopped at the end of tick 2) runs its next
    # tick, as continue does in manual mode.
    back_live = await step(client, "continue")
    assert back_live["reason"] == "step"
    assert await tick(client) == (3, False)
    assert "presentationHint" not in (await frames(client))[0]
    assert await scope_values(client, "Blackboard") == {"battery": "70"}
    board = (await scopes(client))["Blackboard"]
    await client.ok("setVariable", {"variablesReference": board, "name": "battery", "value": "5"})


async def test_the_past_of_an_ended_execution_can_be_visited(client: DapClient) -> None:
    await launch_configured(client, PATROL, blackboard={"battery": 100})
    await client.next_event("terminated")
    await client.ok("stepBack", {"threadId": 1})
    assert (await client.next_event("stopped"))["description"].startswith("tick 6 ")
    assert await tick(client) == (6, True)
    assert await scope_values(client, "Blackboard") == {"battery": "10"}


async def test_reverse_continue_to_a_breakpoint_shows_the_node_it_stopped_at(
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
    await step(client, "continue", "step")
    await step(client, "continue", "breakpoint")  # before drain, tick 2
    assert await frame_names(client) == ["drain", "round", "patrol"]
    await step(client, "continue", "step")
    await client.ok("reverseContinue", {"threadId": 1})
    await client.next_event("stopped")
    assert await frame_names(client) == ["drain", "round", "patrol"]
