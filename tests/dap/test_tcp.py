"""``canopy dap --port 0`` serves any number of sessions over TCP: it prints the port it bound
on stdout, each connection is a session of its own, and sessions never see each other's
executions unless one attaches."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..server.runtime.quitters import quitting_tree
from .client import Connect, DapClient, adapter_over_tcp, launch_configured
from .helpers import FOREVER, PATROL, core_scenario, frame_names, scope_values, step, tick


async def execution_id(client: DapClient) -> str:
    (thread,) = (await client.ok("threads"))["threads"]
    return thread["name"].rpartition("(")[2].rstrip(")")


async def test_the_core_scenario_over_tcp(tmp_path: Path) -> None:
    async with adapter_over_tcp(tmp_path) as connect:
        client = await connect()
        await core_scenario(client)
        await client.wait_closed()  # the session ends; the server goes on
        again = await connect()
        await core_scenario(again)


async def test_two_concurrent_sessions_stay_apart(tmp_path: Path) -> None:
    async with adapter_over_tcp(tmp_path) as connect:
        first, second = await connect(), await connect()
        await asyncio.gather(
            launch_configured(
                first,
                PATROL,
                mode="manual",
                blackboard={"battery": 100},
                breakpoints=[{"name": "drain"}],
            ),
            launch_configured(second, PATROL, mode="manual", blackboard={"battery": 50}),
        )
        assert (await first.next_event("stopped"))["threadId"] == 1
        assert (await second.next_event("stopped"))["threadId"] == 1
        first_id, second_id = await execution_id(first), await execution_id(second)
        assert first_id != second_id

        # Interleaved: each session steps its own tree, with its own blackboard.
        assert (await step(first, "continue"))["reason"] == "step"
        assert (await step(second, "continue"))["reason"] == "step"
        assert (await step(first, "continue"))["reason"] == "breakpoint"  # drain, tick 2
        assert (await step(second, "continue"))["reason"] == "step"  # no breakpoint here
        assert await scope_values(first, "Blackboard") == {"battery": "100"}
        assert await scope_values(second, "Blackboard") == {"battery": "20"}
        value = await first.ok("evaluate", {"expression": "battery", "context": "repl"})
        assert value["result"] == "100"

        # Bad input on one connection does not disturb the other.
        await second.send_raw(b"Content-Length: many\r\n\r\n")
        assert "not a number" in (await second.next_event("output"))["output"]
        assert await frame_names(first) == ["drain", "round", "patrol"]

        diff = await second.ok("canopy/diff", {"otherExecutionId": first_id})
        assert (diff["a"]["execution_id"], diff["b"]["execution_id"]) == (second_id, first_id)
        assert diff["diverged_at"] == 0
        assert diff["diff"]["changed"] == {"/battery": [50, 100]}
        assert diff["diverged_on"] == {
            "a": {"node": None, "key": "/battery", "value": 50, "unset": False},
            "b": {"node": None, "key": "/battery", "value": 100, "unset": False},
        }

        # One session ending ends its execution only.
        await first.ok("disconnect", {})
        await first.wait_closed()
        assert (await step(second, "next"))["reason"] == "step"
        assert await tick(second) == (3, False)
        assert all(e.get("body", {}).get("threadId", 1) == 1 for e in second.events)
        assert not [e for e in second.events if e["event"] in ("exited", "terminated")]


async def test_another_session_can_attach_to_a_running_execution(tmp_path: Path) -> None:
    async with adapter_over_tcp(tmp_path) as connect:
        owner = await connect()
        await launch_configured(owner, FOREVER, mode="manual", blackboard={"battery": 100})
        await owner.next_event("stopped")
        await step(owner, "next")
        shared = await execution_id(owner)

        watcher = await attach(connect, shared)
        assert (await watcher.next_event("stopped"))["reason"] == "step"  # where it stands
        assert await tick(watcher) == (1, False)
        assert await scope_values(watcher, "Blackboard") == {"battery": "99"}

        # Both sessions hear about the execution they share.
        await step(owner, "next")
        assert (await watcher.next_event("stopped"))["reason"] == "step"
        assert await tick(watcher) == (2, False)

        # An attached session leaves the execution running when it goes, politely or not.
        await watcher.ok("disconnect", {})
        await watcher.wait_closed()
        await (await attach(connect, shared)).hang_up()
        assert (await step(owner, "next"))["reason"] == "step"
        assert await tick(owner) == (3, False)

        # The owner's connection drops: its execution ends with it.
        await owner.hang_up()
        late = await connect()
        await late.ok("initialize", {"adapterID": "canopy"})
        message = await late.fails("attach", {"executionId": shared})
        assert message == f"execution {shared} has ended (stopped)"


async def attach(connect: Connect, execution: str) -> DapClient:
    client = await connect()
    await client.ok("initialize", {"adapterID": "canopy"})
    await client.ok("attach", {"executionId": execution})
    await client.next_event("initialized")
    await client.ok("configurationDone")
    return client


async def test_user_code_that_exits_or_interrupts_ends_neither_the_adapter_nor_a_session(
    tmp_path: Path,
) -> None:
    async with adapter_over_tcp(tmp_path) as connect:
        other = await connect()
        await launch_configured(other, PATROL, mode="manual", blackboard={"battery": 100})
        assert (await other.next_event("stopped"))["reason"] == "entry"
        for how, exception in (("exit", "SystemExit"), ("interrupt", "KeyboardInterrupt")):
            quitter = await connect()
            await launch_configured(
                quitter, quitting_tree(tmp_path, how), mode="auto", exception_filters=["raised"]
            )
            assert (await quitter.next_event("stopped"))["reason"] == "exception"
            info = await quitter.ok("exceptionInfo", {"threadId": 1})
            assert info["exceptionId"] == f"builtins.{exception}", info
            # The user's frames that raised, innermost first, then the node frames.
            assert await frame_names(quitter) == ["_quit", "Quit.update", "quit", "seq"]
            await quitter.ok("continue", {"threadId": 1})
            assert (await quitter.wait_for("exited"))["exitCode"] == 1  # the tree failed
            await quitter.wait_for("terminated")
            await quitter.ok("disconnect", {})
            await quitter.wait_closed()
            # The other session's execution, in the same adapter process, goes on.
            assert (await step(other, "next"))["reason"] == "step"
        assert await tick(other) == (2, False)  # one step per quitting session
