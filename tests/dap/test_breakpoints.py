"""Breakpoints of every kind: on nodes by name or id, on tree-file lines (bound to the node
whose block holds the line, else moved to the next node), conditions, hit conditions,
logpoints, data breakpoints on blackboard keys, exception filters; and the unverified ones,
each with the reason."""

from __future__ import annotations

from pathlib import Path

from .client import DapClient, launch_configured
from .helpers import (
    PATROL,
    PATROL_YAML,
    TREES,
    frame_names,
    frames,
    scope_values,
    scopes,
    step,
    tick,
    variables,
)


async def test_function_breakpoints_by_name_and_by_id_keep_their_ids(client: DapClient) -> None:
    answers = await launch_configured(
        client,
        PATROL,
        mode="manual",
        blackboard={"battery": 100},
        breakpoints=[{"name": "move"}, {"name": "patrol/round/drain"}],
    )
    move, drain = answers["setFunctionBreakpoints"]["breakpoints"]
    assert move["verified"]
    assert drain["verified"]
    assert move["id"] != drain["id"]
    # Breakpoints in a file are set separately; the ids given for the others must still be
    # the ones a stop reports.
    await client.ok(
        "setBreakpoints", {"source": {"path": PATROL_YAML}, "breakpoints": [{"line": 13}]}
    )
    assert (await client.next_event("stopped"))["reason"] == "entry"
    at_move = await step(client, "continue")
    assert (at_move["reason"], at_move["hitBreakpointIds"]) == ("breakpoint", [move["id"]])
    assert await frame_names(client) == ["move", "round", "patrol"]
    assert await tick(client) == (1, False)
    assert (await step(client, "continue"))["reason"] == "step"  # manual: the rest of tick 1
    at_move = await step(client, "continue")
    assert at_move["hitBreakpointIds"] == [move["id"]]
    at_drain = await step(client, "continue")
    assert (at_drain["reason"], at_drain["hitBreakpointIds"]) == ("breakpoint", [drain["id"]])
    assert await tick(client) == (2, False)
    assert await scope_values(client, "Blackboard") == {"battery": "100"}  # before its update


async def test_unverified_breakpoints_say_why(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    placed = (
        await client.ok(
            "setFunctionBreakpoints",
            {
                "breakpoints": [
                    {"name": "nowhere"},
                    {"name": "move", "condition": "battery <"},
                    {"name": "move", "condition": "__import__('os')"},
                    {"name": "move", "hitCondition": "sometimes"},
                    {"name": "drain"},
                ]
            },
        )
    )["breakpoints"]
    assert [b["verified"] for b in placed] == [False, False, False, False, True]
    assert placed[0]["message"] == "no node with id or name 'nowhere' in tree 'patrol'"
    assert placed[1]["message"].startswith("invalid expression: column 10:")
    assert "calls are limited to" in placed[2]["message"]
    assert placed[3]["message"].startswith(
        "invalid expression: column 1: unexpected 's'; a hit condition is a number"
    )
    assert "message" not in placed[4]
    assert len({b["id"] for b in placed}) == 5

    elsewhere = str(TREES / "mission.yaml")
    (other,) = (
        await client.ok(
            "setBreakpoints", {"source": {"path": elsewhere}, "breakpoints": [{"line": 3}]}
        )
    )["breakpoints"]
    assert not other["verified"]
    assert other["message"] == f"no node at or after line 3 of {elsewhere}"
    assert other["source"]["path"] == elsewhere


async def test_breakpoints_set_before_launch_are_verified_when_the_tree_loads(
    client: DapClient,
) -> None:
    await client.ok("initialize", {"adapterID": "canopy"})
    (early,) = (await client.ok("setFunctionBreakpoints", {"breakpoints": [{"name": "drain"}]}))[
        "breakpoints"
    ]
    assert (early["verified"], early["message"]) == (False, "the tree is not loaded yet")
    (watch,) = (await client.ok("setDataBreakpoints", {"breakpoints": [{"dataId": "/battery"}]}))[
        "breakpoints"
    ]
    assert not watch["verified"]
    await client.ok("setExceptionBreakpoints", {"filters": ["failed"]})
    await client.ok("launch", {"program": PATROL, "mode": "manual", "blackboard": {"battery": 100}})
    changed = await client.next_event("breakpoint")
    assert changed == {"reason": "changed", "breakpoint": {"id": early["id"], "verified": True}}
    await client.next_event("initialized")
    await client.ok("configurationDone")
    assert (await client.next_event("stopped"))["reason"] == "entry"
    await step(client, "continue", "step")
    at_drain = await step(client, "continue", "breakpoint")
    assert at_drain["hitBreakpointIds"] == [early["id"]]
    changed_battery = await step(client, "continue")
    assert changed_battery["reason"] == "data breakpoint"
    assert changed_battery["hitBreakpointIds"] == [watch["id"]]


async def test_a_line_breakpoint_binds_to_the_node_whose_block_holds_the_line(
    client: DapClient,
) -> None:
    await launch_configured(client, PATROL_YAML, mode="manual")
    # Nodes of patrol.yaml start on these lines (each "type:" of a node).
    locations = await client.ok(
        "breakpointLocations", {"source": {"path": PATROL_YAML}, "line": 1, "endLine": 50}
    )
    assert [b["line"] for b in locations["breakpoints"]] == [
        7,
        10,
        13,
        17,
        19,
        24,
        29,
        34,
        39,
        43,
        46,
    ]
    # Lines 20-23 are route's fields (19), 24-28 retry_a's (24), 29-30 go_to_a's.
    within = await client.ok(
        "breakpointLocations", {"source": {"path": PATROL_YAML}, "line": 20, "endLine": 30}
    )
    assert within["breakpoints"] == [{"line": 19}, {"line": 24}, {"line": 29}]
    assert (await client.ok("breakpointLocations", {"source": {"path": PATROL_YAML}, "line": 26}))[
        "breakpoints"
    ] == [{"line": 24}]

    placed = (
        await client.ok(
            "setBreakpoints",
            {
                "source": {"path": PATROL_YAML},
                "breakpoints": [{"line": 2}, {"line": 26}, {"line": 47}, {"line": 99}],
            },
        )
    )["breakpoints"]
    comment, params, last_line, past_the_end = placed
    assert (comment["verified"], comment["line"]) == (True, 7)  # a comment → the next node
    assert (params["verified"], params["line"]) == (True, 24)  # retry_a's params → retry_a
    assert params["source"] == {"path": PATROL_YAML, "name": "patrol.yaml"}
    assert (last_line["verified"], last_line["line"]) == (True, 46)  # failed's name: line
    assert (past_the_end["verified"], past_the_end["line"]) == (False, 99)
    assert past_the_end["message"] == f"no node at or after line 99 of {PATROL_YAML}"

    assert (await client.next_event("stopped"))["reason"] == "entry"
    await client.ok(
        "setBreakpoints", {"source": {"path": PATROL_YAML}, "breakpoints": [{"line": 26}]}
    )
    hit = await step(client, "continue")
    assert hit["reason"] == "breakpoint"
    top, *rest = await frames(client)
    assert top["name"] == "retry_a [Retry] INVALID"  # stopped before its first update
    assert (top["source"]["path"], top["line"], top["column"]) == (PATROL_YAML, 24, 11)
    assert [(f["name"].split(" ")[0], f["line"]) for f in rest] == [("route", 19), ("patrol", 7)]


async def test_lines_and_columns_from_zero(client: DapClient) -> None:
    await launch_configured(
        client,
        PATROL_YAML,
        mode="manual",
        initialize={"linesStartAt1": False, "columnsStartAt1": False},
    )
    locations = await client.ok(
        "breakpointLocations", {"source": {"path": PATROL_YAML}, "line": 19, "endLine": 29}
    )
    assert locations["breakpoints"] == [{"line": 18}, {"line": 23}, {"line": 28}]
    (bound,) = (
        await client.ok(
            "setBreakpoints", {"source": {"path": PATROL_YAML}, "breakpoints": [{"line": 25}]}
        )
    )["breakpoints"]
    assert bound["line"] == 23
    await client.next_event("stopped")
    await step(client, "continue", "breakpoint")
    top = (await frames(client))[0]
    assert (top["line"], top["column"]) == (23, 10)


async def test_conditions_and_hit_conditions_choose_when_to_stop(client: DapClient) -> None:
    answers = await launch_configured(
        client,
        PATROL,
        blackboard={"battery": 100},
        breakpoints=[
            {"name": "check_battery", "condition": "battery < 50"},
            {"name": "move", "hitCondition": "== 3"},
        ],
    )
    check, move = answers["setFunctionBreakpoints"]["breakpoints"]
    # auto mode: move is reached on ticks 1, 2, 3...; the third time is tick 3.
    first = await client.next_event("stopped")
    assert (first["reason"], first["hitBreakpointIds"]) == ("breakpoint", [move["id"]])
    assert await tick(client) == (3, False)
    await client.ok("continue", {"threadId": 1})
    second = await client.next_event("stopped")
    assert second["hitBreakpointIds"] == [check["id"]]
    assert await tick(client) == (5, False)  # battery 40 from tick 4's drain
    assert await scope_values(client, "Blackboard") == {"battery": "40"}


async def test_a_condition_that_fails_while_running_stops_and_says_why(
    client: DapClient,
) -> None:
    answers = await launch_configured(
        client,
        PATROL,
        blackboard={"battery": 100},
        breakpoints=[{"name": "move", "condition": "batery < 50"}],
    )
    (typo,) = answers["setFunctionBreakpoints"]["breakpoints"]
    assert typo["verified"]  # it compiles; the name is only missing when evaluated
    stopped = await client.next_event("stopped")
    assert (stopped["reason"], stopped["hitBreakpointIds"]) == ("breakpoint", [typo["id"]])
    assert "batery" in stopped["description"]
    assert await frame_names(client) == ["move", "round", "patrol"]


async def test_logpoints_log_and_do_not_stop(client: DapClient) -> None:
    await launch_configured(client, PATROL_YAML, mode="manual")
    logpoint, broken = (
        await client.ok(
            "setBreakpoints",
            {
                "source": {"path": PATROL_YAML},
                "breakpoints": [
                    {"line": 13, "logMessage": "battery at {battery_level}"},
                    {"line": 17, "logMessage": "recharging from {battery_level"},
                ],
            },
        )
    )["breakpoints"]
    assert logpoint["verified"]
    assert not broken["verified"]
    assert broken["message"].startswith("invalid expression:")
    assert (await client.next_event("stopped"))["reason"] == "entry"
    await client.ok("continue", {"threadId": 1})
    logged = await client.next_event("output")
    assert logged == {"category": "console", "output": "battery at 0.8\n"}
    after = await client.next_event("stopped")
    assert after["reason"] == "step"  # the end of the tick: the logpoint did not stop
    assert "hitBreakpointIds" not in after


async def test_a_data_breakpoint_stops_after_the_write(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    assert (await client.next_event("stopped"))["reason"] == "entry"
    board = (await scopes(client))["Blackboard"]
    (battery,) = await variables(client, board)
    info = await client.ok(
        "dataBreakpointInfo", {"variablesReference": board, "name": battery["name"]}
    )
    assert info == {
        "dataId": "/battery",
        "description": "blackboard /battery",
        "accessTypes": ["write"],
        "canPersist": True,
    }
    node = (await scopes(client))["Node"]
    not_data = await client.ok("dataBreakpointInfo", {"variablesReference": node, "name": "status"})
    assert not_data["dataId"] is None
    assert "only blackboard keys" in not_data["description"]

    watch, broken = (
        await client.ok(
            "setDataBreakpoints",
            {
                "breakpoints": [
                    {"dataId": info["dataId"], "accessType": "write"},
                    {"dataId": "/mission", "condition": "mission =="},
                ]
            },
        )
    )["breakpoints"]
    assert watch["verified"]
    assert not broken["verified"]
    assert broken["message"].startswith("invalid expression")

    assert (await step(client, "continue"))["reason"] == "step"  # tick 1 writes nothing
    changed = await step(client, "continue")
    assert changed["reason"] == "data breakpoint"
    assert changed["description"] == "/battery changed to 70"
    assert changed["hitBreakpointIds"] == [watch["id"]]
    assert await frame_names(client) == ["drain", "round", "patrol"]  # the writer
    assert await scope_values(client, "Blackboard") == {"battery": "70"}


async def test_a_data_breakpoint_with_a_condition(client: DapClient) -> None:
    answers = await launch_configured(
        client,
        PATROL,
        blackboard={"battery": 100},
        data_breakpoints=[{"dataId": "battery", "condition": "battery < 50"}],
    )
    (watch,) = answers["setDataBreakpoints"]["breakpoints"]
    stopped = await client.next_event("stopped")
    assert (stopped["reason"], stopped["description"]) == (
        "data breakpoint",
        "/battery changed to 40",
    )
    assert stopped["hitBreakpointIds"] == [watch["id"]]
    assert await tick(client) == (4, False)


async def test_the_raised_filter_stops_where_a_behaviour_raised(client: DapClient) -> None:
    # From battery 50, check_battery raises on tick 5 (battery -10).
    await launch_configured(
        client, PATROL, blackboard={"battery": 50}, exception_filters=["raised"]
    )
    stopped = await client.next_event("stopped")
    assert stopped["reason"] == "exception"
    assert stopped["description"] == "builtins.ValueError: battery level -10 is negative"
    # The raising line of the behaviour's code, then the node frames.
    assert await frame_names(client) == ["CheckBattery.update", "check_battery", "round", "patrol"]
    assert await tick(client) == (5, False)
    info = await client.ok("exceptionInfo", {"threadId": 1})
    assert info["exceptionId"] == "builtins.ValueError"
    assert info["description"] == "battery level -10 is negative"
    assert info["breakMode"] == "always"
    trace = info["details"]["stackTrace"]
    assert "factories.py" in trace
    assert trace.rstrip().endswith('raise ValueError(f"battery level {level} is negative")')
    assert ", in update\n" in trace
    # The node counts as failed; the tree fails and the execution completes.
    await client.ok("continue", {"threadId": 1})
    await client.next_event("exited")
    await client.next_event("terminated")


async def test_the_failed_filter_stops_on_a_failing_node(client: DapClient) -> None:
    await launch_configured(
        client, PATROL, blackboard={"battery": 100}, exception_filters=["raised", "failed"]
    )
    stopped = await client.next_event("stopped")
    assert (stopped["reason"], stopped["description"]) == (
        "exception",
        "check_battery returned FAILURE",
    )
    assert await tick(client) == (7, False)
    info = await client.ok("exceptionInfo", {"threadId": 1})
    assert info == {
        "exceptionId": "NodeFailed",
        "description": "check_battery returned FAILURE",
        "breakMode": "always",
    }


async def test_exception_info_needs_an_exception(client: DapClient) -> None:
    await launch_configured(client, PATROL, mode="manual", blackboard={"battery": 100})
    await client.next_event("stopped")
    assert await client.fails("exceptionInfo", {"threadId": 1}) == (
        "the tree is not stopped on an exception"
    )
    assert (await client.ok("setExceptionBreakpoints", {"filters": []}))["breakpoints"] == []


async def test_unknown_exception_filters_are_unverified_and_the_known_ones_apply(
    client: DapClient,
) -> None:
    """Generic clients send debugpy's ``uncaught``: the launch must go on regardless."""
    answers = await launch_configured(
        client, PATROL, blackboard={"battery": 50}, exception_filters=["uncaught", "raised"]
    )
    uncaught, raised = answers["setExceptionBreakpoints"]["breakpoints"]
    assert uncaught == {
        "verified": False,
        "message": "Canopy has no exception filter 'uncaught' (its filters are failed, raised)",
    }
    assert raised == {"verified": True}
    stopped = await client.next_event("stopped")
    assert (stopped["reason"], stopped["description"]) == (
        "exception",
        "builtins.ValueError: battery level -10 is negative",
    )


async def test_one_spelling_of_a_tree_file_whatever_the_client_and_program_say(
    client: DapClient, tmp_path: Path
) -> None:
    """A relative ``program`` under a symlinked folder, breakpoints set through the symlink:
    frames, breakpoints and their locations all name the file by its resolved absolute path,
    so an editor opens it once."""
    (tmp_path / "linked").symlink_to(TREES, target_is_directory=True)
    through_link = str(tmp_path / "linked" / "patrol.yaml")
    real = PATROL_YAML  # already resolved
    await launch_configured(client, "linked/patrol.yaml", cwd=str(tmp_path), mode="manual")
    placed = await client.ok(
        "setBreakpoints", {"source": {"path": through_link}, "breakpoints": [{"line": 26}]}
    )
    (moved,) = placed["breakpoints"]  # line 26 is in retry_a's block, which starts at 24
    assert (moved["verified"], moved["line"]) == (True, 24)
    assert moved["source"] == {"path": real, "name": "patrol.yaml"}
    locations = await client.ok(
        "breakpointLocations", {"source": {"path": through_link}, "line": 26}
    )
    assert locations["breakpoints"] == [{"line": 24}]
    assert (await client.next_event("stopped"))["reason"] == "entry"
    hit = await step(client, "continue")
    assert (hit["reason"], hit["hitBreakpointIds"]) == ("breakpoint", [moved["id"]])
    assert {frame["source"]["path"] for frame in await frames(client)} == {real}
