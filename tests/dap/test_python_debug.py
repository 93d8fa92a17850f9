"""From a node to its Python code: a real debugpy session stops in the node's ``update()``
while the tree session goes on answering."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
from pathlib import Path

from tests.server.runtime.factories import Drain

from .client import ROOT, DapClient, launch_configured, spawn_stdio_adapter, speaking_to
from .conftest import Spawn
from .helpers import (
    PATROL,
    START_DEBUGGING,
    UPDATE_LINE,
    child_session,
    frames,
    python_target,
    stopped_before_drain,
    variables,
)

FACTORIES = inspect.getsourcefile(Drain)


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


# -- stepping into a node's code: the tree session starts a relayed Python session ------------


async def test_step_into_target_stops_in_the_nodes_update_in_a_child_session(
    client: DapClient, spare_adapters: Spawn
) -> None:
    drain, round_ = (await stopped_before_drain(client, START_DEBUGGING))[:2]
    assert (await client.ok("stepInTargets", {"frameId": round_["id"]}))["targets"] == []
    target = await python_target(client, drain)
    stepping = asyncio.ensure_future(client.request("stepIn", {"threadId": 1, "targetId": target}))
    start = await client.reverse_request("startDebugging")
    assert start["arguments"]["request"] == "attach"
    python_of = start["arguments"]["configuration"]["pythonOf"]
    assert any(stop["path"].endswith("factories.py") for stop in python_of["stops"])
    async with child_session(spare_adapters, start) as (child, attached):
        assert attached["success"], attached.get("message")
        await client.answer(start)
        assert (await stepping)["success"]
        stopped = await child.wait_for("stopped", reason="breakpoint")
        top = (await child.ok("stackTrace", {"threadId": stopped["threadId"]}))["stackFrames"][0]
        assert top["source"]["path"].endswith("factories.py")
        assert (top["name"].rpartition(".")[2], top["line"]) == ("update", UPDATE_LINE)
        # Only the threads that run trees are Python's to show.
        threads = (await child.ok("threads"))["threads"]
        assert [t["id"] for t in threads] == [stopped["threadId"]]
        assert threads[0]["name"].startswith("execution-")
        scopes = (await child.ok("scopes", {"frameId": top["id"]}))["scopes"]
        local = await variables(child, scopes[0]["variablesReference"])
        assert "self" in [v["name"] for v in local]
        # The tree session answers while Python is stopped, and has not stopped again.
        assert (await client.ok("threads"))["threads"][0]["id"] == 1
        assert client.pending_events("stopped") == []
        await child.ok("next", {"threadId": stopped["threadId"]})
        await child.wait_for("stopped", reason="step")
        top = (await child.ok("stackTrace", {"threadId": stopped["threadId"]}))["stackFrames"][0]
        assert top["line"] == UPDATE_LINE + 1
        await child.ok("continue", {"threadId": stopped["threadId"]})
        # Back in the tree: the step into ends at drain's status change.
        assert (await client.next_event("stopped"))["reason"] == "step"
        assert (await frames(client))[0]["name"] == "drain [Drain] SUCCESS"
        assert (await client.ok("evaluate", {"expression": "battery"}))["result"] == "70"
        # A second step into the node's code goes to the session that is attached already.
        await client.ok("continue", {"threadId": 1})
        assert (await client.next_event("stopped"))["reason"] == "step"  # tick 2 ends
        await client.ok("continue", {"threadId": 1})
        assert (await client.next_event("stopped"))["reason"] == "step"  # tick 3 ends
        await client.ok("continue", {"threadId": 1})
        assert (await client.next_event("stopped"))["reason"] == "breakpoint"  # drain, tick 4
        await client.ok(
            "stepIn",
            {"threadId": 1, "targetId": await python_target(client, (await frames(client))[0])},
        )
        assert client.requests == []  # no second startDebugging
        stopped = await child.wait_for("stopped", reason="breakpoint")
        await child.ok("continue", {"threadId": stopped["threadId"]})
        assert (await client.next_event("stopped"))["reason"] == "step"
        assert (await client.ok("evaluate", {"expression": "battery"}))["result"] == "40"
        await child.ok("disconnect", {})
    # With the Python session gone the tree runs on as before.
    await client.ok("continue", {"threadId": 1})
    assert (await client.next_event("stopped"))["reason"] == "step"


async def test_a_breakpoint_in_the_nodes_code_stops_in_the_child_session(
    client: DapClient, spare_adapters: Spawn
) -> None:
    drain = (await stopped_before_drain(client, START_DEBUGGING))[0]
    stepping = asyncio.ensure_future(
        client.request("stepIn", {"threadId": 1, "targetId": await python_target(client, drain)})
    )
    start = await client.reverse_request("startDebugging")
    async with speaking_to(spare_adapters()) as child:
        await child.ok("initialize", {"adapterID": "canopy", "pathFormat": "path"})
        attaching = asyncio.ensure_future(
            child.request("attach", start["arguments"]["configuration"])
        )
        await child.wait_for("initialized")
        # The user's own breakpoint, a line into update(): the relay keeps its stop too.
        placed = await child.ok(
            "setBreakpoints",
            {"source": {"path": FACTORIES}, "breakpoints": [{"line": UPDATE_LINE + 1}]},
        )
        assert [b["line"] for b in placed["breakpoints"]] == [UPDATE_LINE + 1]
        await child.ok("configurationDone")
        assert (await attaching)["success"]
        await client.answer(start)
        assert (await stepping)["success"]
        first = await child.wait_for("stopped", reason="breakpoint")
        top = (await child.ok("stackTrace", {"threadId": first["threadId"]}))["stackFrames"][0]
        assert top["line"] == UPDATE_LINE
        await child.ok("continue", {"threadId": first["threadId"]})
        second = await child.wait_for("stopped", reason="breakpoint")
        top = (await child.ok("stackTrace", {"threadId": second["threadId"]}))["stackFrames"][0]
        assert top["line"] == UPDATE_LINE + 1
        await child.ok("continue", {"threadId": second["threadId"]})
        assert (await client.next_event("stopped"))["reason"] == "step"
        # The next tick's drain stops at the user's breakpoint only (the step in is spent).
        await client.ok("setFunctionBreakpoints", {"breakpoints": []})
        await client.ok("continue", {"threadId": 1})
        assert (await client.next_event("stopped"))["reason"] == "step"  # tick 2 ends
        await client.ok("continue", {"threadId": 1})
        await client.next_event("stopped")  # tick 3 (move runs)
        await client.ok("continue", {"threadId": 1})
        third = await child.wait_for("stopped", reason="breakpoint")
        top = (await child.ok("stackTrace", {"threadId": third["threadId"]}))["stackFrames"][0]
        assert top["line"] == UPDATE_LINE + 1
        await child.ok("disconnect", {})


async def test_bad_step_in_targets_are_refused_by_name(client: DapClient) -> None:
    drain = (await stopped_before_drain(client, START_DEBUGGING))[0]
    message = await client.fails("stepIn", {"threadId": 1, "targetId": 987654})
    assert "unknown step-in target 987654" in message
    target = await python_target(client, drain)
    stepping = asyncio.ensure_future(client.request("stepIn", {"threadId": 1, "targetId": target}))
    await client.answer(await client.reverse_request("startDebugging"), False, message="no")
    refused = await stepping
    assert not refused["success"]
    assert refused["message"] == "the editor refused 'startDebugging': no"
    # The tree is where it was, and steps on as usual.
    assert (await frames(client))[0]["name"].startswith("drain ")
    await client.ok("stepIn", {"threadId": 1})
    assert (await client.next_event("stopped"))["reason"] == "step"


async def test_a_client_without_child_sessions_is_told_how_else(client: DapClient) -> None:
    drain = (await stopped_before_drain(client))[0]
    message = await client.fails(
        "stepIn", {"threadId": 1, "targetId": await python_target(client, drain)}
    )
    assert "cannot start a child debug session" in message


async def test_an_unreachable_debugpy_fails_the_child_attach(client: DapClient) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await client.ok("initialize", {"adapterID": "canopy"})
    message = await client.fails(
        "attach",
        {"type": "canopy", "request": "attach", "pythonOf": {"host": "127.0.0.1", "port": port}},
    )
    assert message.startswith(f"cannot reach debugpy at 127.0.0.1:{port} (")
    bad = await client.fails("attach", {"pythonOf": {"host": "127.0.0.1", "port": "x"}})
    assert bad == "attach: pythonOf.port must be a TCP port, not 'x'"


async def test_a_debugpy_that_cannot_start_is_reported(tmp_path: Path) -> None:
    broken = Path(__file__).parent / "broken_debugpy"
    process = spawn_stdio_adapter(
        tmp_path, environment={"PYTHONPATH": f"{broken}{os.pathsep}{ROOT}"}
    )
    async with speaking_to(process) as client:
        drain = (await stopped_before_drain(client, START_DEBUGGING))[0]
        message = await client.fails(
            "stepIn", {"threadId": 1, "targetId": await python_target(client, drain)}
        )
        assert message == (
            "debugpy could not start listening: can't listen for client connections:"
            " [Errno 98] Address in use"
        )
        assert client.requests == []


async def test_ending_the_tree_session_while_python_is_stopped_ends_both(
    client: DapClient, spare_adapters: Spawn
) -> None:
    drain = (await stopped_before_drain(client, START_DEBUGGING))[0]
    stepping = asyncio.ensure_future(
        client.request("stepIn", {"threadId": 1, "targetId": await python_target(client, drain)})
    )
    start = await client.reverse_request("startDebugging")
    async with child_session(spare_adapters, start) as (child, attached):
        assert attached["success"]
        await client.answer(start)
        assert (await stepping)["success"]
        await child.wait_for("stopped", reason="breakpoint")
        await client.ok("disconnect", {})
        await client.wait_for("terminated")
        await child.ok("disconnect", {})
