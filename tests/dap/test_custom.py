"""The custom requests: canopy/reload (hot reload), canopy/timeline, canopy/statistics,
canopy/stateAt, canopy/picture, canopy/diff, canopy/fork and canopy/restart, and
canopy/liveTree (canopy/nodeStatus events)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from .client import DapClient, adapter_over_stdio, launch_configured
from .helpers import FOREVER, PATROL, PATROL_YAML, frame_names, scope_values, step, tick


async def test_hot_reload_rebinds_breakpoints_and_reports_the_unbound(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    assert (await step(client, "next"))["reason"] == "step"  # the end of tick 1: battery 100
    placed = await client.ok(
        "setFunctionBreakpoints", {"breakpoints": [{"name": "drain"}, {"name": "move"}]}
    )
    drain, move = placed["breakpoints"]
    (thread,) = (await client.ok("threads"))["threads"]

    # forever has a drain (amount 1) but no move.
    reloaded = await client.ok("canopy/reload", {"threadId": 1, "program": FOREVER})
    assert reloaded == {"unboundBreakpoints": ["move"]}
    changes = [await client.next_event("breakpoint") for _ in range(2)]
    assert changes == [
        {"reason": "changed", "breakpoint": {"id": drain["id"], "verified": True}},
        {
            "reason": "changed",
            "breakpoint": {
                "id": move["id"],
                "verified": False,
                "message": "no node with id or name 'move' in tree 'forever'",
            },
        },
    ]
    await client.wait_for("invalidated", areas=["all"], threadId=1)

    # Same execution, same thread, new tree, blackboard kept.
    assert (await client.ok("threads"))["threads"] == [thread]
    assert await frame_names(client) == ["forever"]
    assert await scope_values(client, "Blackboard") == {"battery": "100"}
    hit = await step(client, "continue")
    assert (hit["reason"], hit["hitBreakpointIds"]) == ("breakpoint", [drain["id"]])
    assert await frame_names(client) == ["drain", "forever"]
    assert await tick(client) == (2, False)


async def test_hot_reload_of_a_tree_file_moves_its_line_breakpoints(client: DapClient) -> None:
    await launch_configured(client, PATROL_YAML, mode="manual")
    (on_go_to_a,) = (
        await client.ok(
            "setBreakpoints", {"source": {"path": PATROL_YAML}, "breakpoints": [{"line": 29}]}
        )
    )["breakpoints"]
    await client.next_event("stopped")
    await client.ok("canopy/reload", {"program": PATROL})  # not a tree file any more
    (change,) = [await client.next_event("breakpoint")]
    assert change["breakpoint"]["id"] == on_go_to_a["id"]
    assert change["breakpoint"]["verified"] is False
    assert change["breakpoint"]["message"] == f"no node at or after line 29 of {PATROL_YAML}"
    await client.ok("canopy/reload", {"program": PATROL_YAML})
    again = await client.next_event("breakpoint")
    assert again["breakpoint"] == {
        "id": on_go_to_a["id"],
        "verified": True,
        "line": 29,
        "source": {"path": PATROL_YAML, "name": "patrol.yaml"},
    }


async def test_hot_reload_can_reset_the_blackboard_and_survives_a_bad_tree(
    client: DapClient,
) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    await step(client, "next", "step")
    await step(client, "next", "step")
    assert await scope_values(client, "Blackboard") == {"battery": "70"}

    message = await client.fails(
        "canopy/reload", {"program": "tests.server.runtime.factories:missing"}
    )
    assert message.startswith("the tree cannot be loaded:\n")
    assert "has no function 'missing'" in message
    assert await scope_values(client, "Blackboard") == {"battery": "70"}  # untouched

    await client.ok("canopy/reload", {"keepBlackboard": False})
    assert await scope_values(client, "Blackboard") == {"battery": "100"}  # the launch's
    assert await tick(client) == (2, False)  # same execution, history kept
    await step(client, "next", "step")
    assert await tick(client) == (3, False)


async def test_a_fork_joins_the_session_as_a_thread_and_ends_alone(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    await step(client, "next", "step")
    await step(client, "next", "step")  # tick 2: battery 70

    # A negative battery makes check_battery raise at the fork's first tick.
    forked = await client.ok("canopy/fork", {"threadId": 1, "blackboard": {"battery": -1}})
    assert forked["threadId"] == 2
    await client.wait_for("thread", reason="started", threadId=2)
    assert (await client.next_event("stopped"))["threadId"] == 2  # manual, as its source
    threads = (await client.ok("threads"))["threads"]
    assert [t["id"] for t in threads] == [1, 2]
    assert forked["executionId"] in threads[1]["name"]
    assert await scope_values(client, "Blackboard", thread_id=2) == {"battery": "-1"}
    assert await scope_values(client, "Blackboard", thread_id=1) == {"battery": "70"}

    # The fork fails on its own (the step after the exception ends it): its thread ends, the
    # session goes on.
    await step(client, "continue", "step", thread_id=2)
    await client.ok("continue", {"threadId": 2})
    assert (await client.wait_for("thread", reason="exited"))["threadId"] == 2
    assert not client.pending_events("terminated")
    assert await tick(client, thread_id=1) == (2, False)
    restarted = await client.ok("canopy/restart", {"threadId": 1})
    assert restarted["threadId"] == 3
    await client.wait_for("stopped", threadId=3)
    assert await scope_values(client, "Blackboard", thread_id=3) == {"battery": "100"}
    assert await tick(client, thread_id=3) == (0, False)


async def test_a_launch_can_fork_an_execution_of_an_earlier_session(tmp_path: Path) -> None:
    """VS Code ends a session with its execution; a restart is a new session whose launch
    forks the old execution, read from the log the adapters share."""
    async with adapter_over_stdio(tmp_path) as first:
        await launch_configured(first, PATROL, mode="manual", blackboard={"battery": 100})
        await first.next_event("stopped")
        await step(first, "next", "step")
        await step(first, "next", "step")  # tick 2: battery 70
        source = (await first.ok("canopy/timeline", {}))["executionId"]
        await first.ok("disconnect", {})
    async with adapter_over_stdio(tmp_path) as second:
        fork = {"executionId": source, "tick": 2, "blackboard": {"battery": 55}}
        await launch_configured(second, PATROL, mode="manual", forkOf=fork)
        await second.next_event("stopped")
        assert await scope_values(second, "Blackboard") == {"battery": "55"}
        assert await tick(second) == (0, False)
        forked = (await second.ok("canopy/timeline", {}))["executionId"]
        assert forked != source
        state = await second.ok("canopy/stateAt", {"tick": 0})
        assert state["blackboard"] == {"/battery": 55}
        message = await second.fails("canopy/fork", {"live": ["patrol/nowhere"]})
        assert message == "no node 'patrol/nowhere' in execution " + forked
    async with adapter_over_stdio(tmp_path) as third:
        problem = await third.fails(
            "launch", {"program": PATROL, "forkOf": {"executionId": "nope"}}
        )
        assert problem == "no execution 'nope'"


async def stop_before_move(client: DapClient) -> None:
    """Launch the patrol in manual mode and run to the breakpoint before move, in tick 1."""
    await launch_configured(
        client,
        PATROL,
        mode="manual",
        blackboard={"battery": 100},
        breakpoints=[{"name": "move"}],
    )
    await client.next_event("stopped")
    await step(client, "continue", "breakpoint")


@pytest.mark.needs_dot
async def test_an_svg_picture(client: DapClient) -> None:
    await launch_configured(client, PATROL, blackboard={"battery": 100})
    await client.next_event("terminated")
    svg = await client.ok("canopy/picture", {"format": "svg"})
    assert "<svg" in svg["content"]
    assert "check_battery" in svg["content"]


async def test_hot_reload_in_the_middle_of_a_tick_stops_again(client: DapClient) -> None:
    await stop_before_move(client)
    await client.ok("canopy/reload", {})
    # The rest of tick 1 is abandoned; the new tree waits at the tick boundary.
    stopped = await client.wait_for("stopped")
    assert (stopped["reason"], stopped["description"]) == ("pause", "reloaded")
    assert await frame_names(client) == ["patrol"]
    assert await tick(client) == (1, False)


async def test_timeline_statistics_state_and_pictures(client: DapClient) -> None:
    await launch_configured(client, PATROL, blackboard={"battery": 100})
    await client.next_event("terminated")

    timeline = await client.ok("canopy/timeline", {})
    assert re.fullmatch(r"[0-9a-f]{12}", timeline["executionId"])
    assert timeline["ticks"] == 7
    assert timeline["statistics"]["count"] == 7
    statistics = await client.ok("canopy/statistics", {"threadId": 1})
    assert statistics["execution_id"] == timeline["executionId"]
    check = statistics["nodes"]["patrol/round/check_battery"]
    assert check["results"] == {"SUCCESS": 3, "FAILURE": 1}

    state = await client.ok("canopy/stateAt", {"tick": 2})
    assert state["tick"] == 2
    assert state["blackboard"] == {"/battery": 70}
    assert state["statuses"]["patrol/round/drain"] == "SUCCESS"
    message = await client.fails("canopy/stateAt", {"tick": 99})
    assert "tick 99 is beyond the recorded range" in message

    dot = await client.ok("canopy/picture", {"tick": 1})
    assert dot["format"] == "dot"
    assert dot["content"].startswith("digraph ")
    assert "check_battery" in dot["content"]
    model = await client.ok("canopy/picture", {"tick": 1, "format": "json"})
    statuses = {n["id"]: n["status"] for n in model["content"]["nodes"]}
    assert statuses["patrol/round/move"] == "RUNNING"
    message = await client.fails("canopy/picture", {"format": "png"})
    assert message == "pictures come as dot, svg or json, not 'png'"
    message = await client.fails("canopy/diff", {"otherExecutionId": "nope"})
    assert message == "no execution 'nope'"


async def test_picture_without_a_tick_is_the_tree_now(client: DapClient) -> None:
    """Stopped in the middle of a tick, the picture shows that moment: the statuses so far and
    the node the tree is stopped at (what a live view draws), not the last completed tick."""
    await stop_before_move(client)
    now = (await client.ok("canopy/picture", {"format": "json"}))["content"]
    assert (now["tick"], now["in_tick"], now["current"]) == (1, True, "patrol/round/move")
    statuses = {n["id"]: n["status"] for n in now["nodes"]}
    assert statuses["patrol/round/check_battery"] == "SUCCESS"
    assert statuses["patrol/round/move"] == "INVALID"
    before = (await client.ok("canopy/picture", {"tick": 0, "format": "json"}))["content"]
    assert (before["tick"], before["in_tick"], before["current"]) == (0, False, None)


async def test_live_tree_streams_node_statuses(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    started = await client.ok("canopy/liveTree", {"threadId": 1})
    await step(client, "next", "step")
    first = await client.next_event("canopy/nodeStatus")
    assert first["threadId"] == 1
    assert first["execution_id"] == started["executionId"]
    assert (first["type"], first["tick"], first["node_id"], first["status"]) == (
        "NodeStatusChanged",
        1,
        "patrol/round/check_battery",
        "SUCCESS",
    )
    done = await client.wait_for("canopy/nodeStatus", type="TickCompleted")
    assert (done["tick"], done["root_status"]) == (1, "RUNNING")
    assert done["offset"] > first["offset"]
    await client.ok("canopy/reload", {"program": FOREVER})
    swapped = await client.wait_for("canopy/nodeStatus", type="TreeReloaded")
    assert swapped["tree"]["name"] == "forever"


async def test_live_tree_batches_hold_each_nodes_latest_status(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    first = len(client.events)
    started = await client.ok("canopy/liveTree", {"threadId": 1, "batchMs": 20})
    assert re.fullmatch(r"[0-9a-f]{12}", started["executionId"])
    await step(client, "next", "step")
    await step(client, "next", "step")

    def batches() -> list[dict[str, Any]]:
        """Every batch since the live tree started, also those the steps went past."""
        return [e["body"] for e in client.events[first:] if e["event"] == "canopy/nodeStatuses"]

    def moved() -> list[dict[str, Any]] | None:
        upto = next(
            (
                i
                for i, b in enumerate(batches())
                if b["changes"].get("patrol/round/move") == "SUCCESS"
            ),
            None,
        )
        return None if upto is None else batches()[: upto + 1]

    received = await client.until(moved)
    seen: dict[str, str] = {}
    for batch in received:
        assert batch["threadId"] == 1
        assert len(batch["changes"]) <= 7  # one entry per node of the tree at most
        seen.update(batch["changes"])
    last = received[-1]
    assert (last["tick"], last["rootStatus"], last["reloaded"]) == (2, "RUNNING", False)
    assert last["current"] in last["changes"]
    assert seen["patrol/round/check_battery"] == "SUCCESS"
    single = [e for e in client.events[first:] if e["event"] == "canopy/nodeStatus"]
    assert single == []  # batches replace single events


async def test_live_tree_refuses_a_bad_batch_period(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    message = await client.fails("canopy/liveTree", {"batchMs": 0})
    assert message == "canopy/liveTree: batchMs must be 10 to 1000, not 0"
    message = await client.fails("canopy/liveTree", {"batchMs": "fast"})
    assert message == "canopy/liveTree: argument 'batchMs' must be an integer, not a string"
    assert (await client.ok("threads"))["threads"]  # the session is still healthy


async def test_live_tree_last_batch_comes_before_the_end(client: DapClient) -> None:
    await launch_configured(
        client, PATROL, mode="auto", stopOnEntry=True, maxTicks=5, blackboard={"battery": 100}
    )
    await client.next_event("stopped")
    await client.ok("canopy/liveTree", {"threadId": 1, "batchMs": 50})
    await client.ok("continue", {"threadId": 1})
    await client.wait_for("exited")
    names = [event["event"] for event in client.events]
    batches = [e["body"] for e in client.events if e["event"] == "canopy/nodeStatuses"]
    assert batches[-1]["tick"] == 5  # the tree's final statuses ...
    assert names.index("exited") > max(  # ... reach the client before the session ends
        i for i, name in enumerate(names) if name == "canopy/nodeStatuses"
    )


async def test_live_tree_after_a_picture_sends_only_what_came_since(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    await step(client, "next", "step")  # tick 1
    picture = (await client.ok("canopy/picture", {"format": "json"}))["content"]
    await client.ok("canopy/liveTree", {"batchMs": 20, "after": picture["offset"]})
    await step(client, "next", "step")  # tick 2
    batch = await client.next_event("canopy/nodeStatuses")
    assert batch["tick"] == 2
    assert batch["offset"] > picture["offset"]
    assert "patrol/round/check_battery" not in batch["changes"]  # it changed in tick 1 only
    message = await client.fails("canopy/liveTree", {"batchMs": 20, "after": -1})
    assert message == "canopy/liveTree: after is a log offset, not -1"


async def test_timeline_and_statistics_leave_out_the_time_stopped_at_a_breakpoint(
    client: DapClient,
) -> None:
    hold_s = 0.3
    await launch_configured(
        client, PATROL, blackboard={"battery": 100}, breakpoints=[{"name": "drain"}]
    )
    stopped = await client.next_event("stopped")
    assert stopped["reason"] == "breakpoint"
    await asyncio.sleep(hold_s)  # the user looking at the stop, in the middle of tick 2
    await client.ok("setFunctionBreakpoints", {"breakpoints": []})
    await client.ok("continue", {"threadId": 1})
    await client.next_event("terminated")

    timeline = (await client.ok("canopy/timeline", {}))["statistics"]
    assert (timeline["count"], timeline["paused_ticks"]) == (7, 1)
    assert timeline["paused_ms"] >= hold_s * 1000
    assert timeline["duration_ms"]["max"] < timeline["paused_ms"]
    statistics = await client.ok("canopy/statistics", {"threadId": 1})
    assert statistics["ticks"] == timeline
