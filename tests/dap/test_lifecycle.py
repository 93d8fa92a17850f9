"""A session from initialize to terminated: capabilities, the launch modes, entry stops,
the end of an execution, terminate and disconnect."""

from __future__ import annotations

import re

from .client import DapClient, launch_configured
from .helpers import FOREVER, PATROL, PATROL_YAML, frame_names, scope_values, step, tick


async def test_initialize_answers_the_capabilities(client: DapClient) -> None:
    capabilities = await client.ok("initialize", {"adapterID": "canopy"})
    for name in (
        "supportsConfigurationDoneRequest",
        "supportsFunctionBreakpoints",
        "supportsConditionalBreakpoints",
        "supportsHitConditionalBreakpoints",
        "supportsLogPoints",
        "supportsDataBreakpoints",
        "supportsBreakpointLocationsRequest",
        "supportsEvaluateForHovers",
        "supportsSetVariable",
        "supportsSetExpression",
        "supportsStepBack",
        "supportsExceptionInfoRequest",
        "supportsCompletionsRequest",
        "supportsTerminateRequest",
        "supportsClipboardContext",
    ):
        assert capabilities[name] is True, name
    filters = {f["filter"]: f for f in capabilities["exceptionBreakpointFilters"]}
    assert set(filters) == {"raised", "failed"}
    assert filters["raised"]["default"] is True
    assert filters["failed"]["default"] is False


async def test_launch_waits_for_configuration_then_runs_in_auto_mode_to_the_end(
    client: DapClient,
) -> None:
    # patrol from battery 100: rounds end at 70, 40, 10; check_battery fails on tick 7.
    await client.ok("initialize", {"adapterID": "canopy"})
    await client.ok("launch", {"program": PATROL, "blackboard": {"battery": 100}})
    await client.wait_for("initialized")
    (thread,) = (await client.ok("threads"))["threads"]
    assert thread["id"] == 1
    assert re.fullmatch(r"patrol \([0-9a-f]{12}\)", thread["name"])
    assert await tick(client) == (0, False)  # launched paused: nothing ran before configuration
    await client.ok("configurationDone")

    ended = await client.next_event("output")
    assert re.fullmatch(r"execution [0-9a-f]{12} ended: completed\n", ended["output"])
    assert await client.next_event("exited") == {"exitCode": 1}  # the tree failed
    await client.next_event("terminated")
    assert client.pending_events("stopped") == []

    statistics = await client.ok("canopy/statistics")
    assert statistics["ticks"]["count"] == 7
    assert statistics["ticks"]["root_statuses"] == {"RUNNING": 6, "FAILURE": 1}
    final = await client.ok("canopy/stateAt")
    assert (final["tick"], final["root_status"]) == (7, "FAILURE")
    message = await client.fails("continue", {"threadId": 1})
    assert "ended" in message


async def test_stop_on_entry_in_auto_mode(client: DapClient) -> None:
    await launch_configured(client, PATROL, blackboard={"battery": 100}, stopOnEntry=True)
    entry = await client.next_event("stopped")
    assert (entry["reason"], entry["threadId"]) == ("entry", 1)
    assert await tick(client) == (0, False)
    assert await frame_names(client) == ["patrol"]
    await client.ok("continue", {"threadId": 1})
    await client.next_event("continued")
    await client.next_event("exited")
    await client.next_event("terminated")


async def test_manual_mode_stops_at_entry_and_after_every_tick(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"
    for expected_tick, battery in ((1, "100"), (2, "70"), (3, "70"), (4, "40")):
        assert (await step(client, "continue"))["reason"] == "step"
        assert await tick(client) == (expected_tick, False)
        assert (await scope_values(client, "Blackboard"))["battery"] == battery
    await client.ok("terminate")
    assert re.search(r"ended: stopped", (await client.next_event("output"))["output"])
    assert await client.next_event("exited") == {"exitCode": 0}
    await client.next_event("terminated")


async def test_interval_mode_ticks_until_paused(client: DapClient) -> None:
    await launch_configured(
        client, FOREVER, mode="interval", intervalMs=5, blackboard={"battery": 10**9}
    )
    await client.ok("canopy/liveTree", {"threadId": 1})
    await client.wait_for("canopy/nodeStatus", type="TickCompleted", tick=3)
    await client.ok("pause", {"threadId": 1})
    paused = await client.next_event("stopped")
    assert paused["reason"] == "pause"
    ticks, past = await tick(client)
    assert ticks >= 3
    assert not past
    await client.ok("terminate")
    await client.next_event("terminated")


async def test_max_ticks_ends_the_execution(client: DapClient) -> None:
    await launch_configured(client, FOREVER, maxTicks=5, blackboard={"battery": 100})
    assert "ended: max_ticks" in (await client.next_event("output"))["output"]
    assert await client.next_event("exited") == {"exitCode": 0}
    await client.next_event("terminated")
    assert (await client.ok("canopy/stateAt"))["tick"] == 5


async def test_auto_mode_ends_when_the_root_finishes_even_before_max_ticks(
    client: DapClient,
) -> None:
    # With battery_level 0.8 the patrol's root succeeds on tick 2.
    await launch_configured(client, PATROL_YAML, maxTicks=6)
    assert "ended: completed" in (await client.next_event("output"))["output"]
    await client.next_event("terminated")
    assert (await client.ok("canopy/stateAt"))["tick"] == 2


async def test_keep_ticking_runs_a_finished_root_again_until_max_ticks(client: DapClient) -> None:
    await launch_configured(client, PATROL_YAML, maxTicks=6, keepTicking=True)
    assert "ended: max_ticks" in (await client.next_event("output"))["output"]
    assert await client.next_event("exited") == {"exitCode": 0}
    await client.next_event("terminated")
    assert (await client.ok("canopy/stateAt"))["tick"] == 6
    statistics = await client.ok("canopy/statistics", {"threadId": 1})
    # It runs on odd ticks and succeeds on even ones, again and again.
    assert statistics["nodes"]["patrol"]["results"] == {"RUNNING": 3, "SUCCESS": 3}


async def test_keep_ticking_without_max_ticks_ticks_until_terminated(client: DapClient) -> None:
    await launch_configured(client, PATROL_YAML, keepTicking=True)
    await client.ok("canopy/liveTree", {"threadId": 1})
    await client.wait_for("canopy/nodeStatus", type="TickCompleted", tick=5)
    await client.ok("terminate")
    assert "ended: stopped" in (await client.wait_for("output"))["output"]
    await client.next_event("terminated")


async def test_loading_is_reported_as_progress(client: DapClient) -> None:
    await client.ok("initialize", {"adapterID": "canopy", "supportsProgressReporting": True})
    await client.ok("launch", {"program": PATROL, "blackboard": {"battery": 100}})
    started = await client.next_event("progressStart")
    assert started["title"] == f"Loading {PATROL}"
    assert (await client.next_event("progressEnd"))["progressId"] == started["progressId"]
    await client.next_event("initialized")


async def test_disconnect_ends_the_execution_and_the_adapter(client: DapClient) -> None:
    await launch_configured(client, FOREVER, blackboard={"battery": 10**9})
    await client.ok("disconnect", {})
    await client.wait_closed()


async def test_a_client_that_goes_away_ends_the_adapter(client: DapClient) -> None:
    await launch_configured(client, FOREVER, mode="manual", blackboard={"battery": 1})
    await client.next_event("stopped")
    await client.hang_up()  # stdin closed without a disconnect request
