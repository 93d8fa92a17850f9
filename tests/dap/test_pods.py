"""``canopy dap`` debugging in debug pods: a real adapter process over pipes, talking to a real
Canopy server whose pods are real local worker processes.

Most tests run the server in the test process (``pod_server``) and point the adapter at it
with ``--url``/``--token``, so they can reach into the server (kill a pod, launch beside the
adapter); one starts nothing and lets the adapter start (and stop) a server of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from canopy.bridge import open_store
from canopy.server.api.keys import PODS
from canopy.server.auth import Principal
from canopy.server.runtime.breakpoints import BreakpointSpec, ExceptionFilter
from canopy.server.runtime.control import LaunchSpec
from canopy.server.runtime.engine import RunState

from ..server.conftest import WAIT, Running, eventually
from ..server.pods.remote import pod_server, remote_control
from ..server.runtime import quitters
from .client import ROOT, DapClient, launch_configured, spawn_stdio_adapter, speaking_to
from .conftest import Spawn
from .helpers import (
    FOREVER,
    PATROL,
    PATROL_YAML,
    START_DEBUGGING,
    TRIAGE_YAML,
    UPDATE_LINE,
    child_session,
    frame_names,
    frames,
    python_target,
    scope_values,
    step,
    stopped_before_drain,
    tick,
)
from .test_raised_frames import (
    PROGRAM,
    assert_user_frames,
    revisit_from_the_log,
    stopped_on_the_exception,
)

USER, TENANT = "ann", "acme"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """A server with local pods, on a SQLite log of its own."""
    async with (
        open_store(f"sqlite:///{tmp_path / 'events.db'}") as store,
        pod_server(store, tmp_path / ".canopy") as server,
    ):
        yield server


@pytest.fixture
async def client(running: Running, tmp_path: Path) -> AsyncIterator[DapClient]:
    """An adapter told where the server is, with a token of ann's in acme."""
    token = await running.issue(USER, TENANT)
    adapter = spawn_stdio_adapter(tmp_path / "dap", ROOT, "--url", running.url, "--token", token)
    async with speaking_to(adapter) as connected:
        yield connected


def pod_of(running: Running) -> Any:
    return running.app[PODS].current(Principal(USER, TENANT, "-"))


async def execution_id(client: DapClient) -> str:
    (thread,) = (await client.ok("threads"))["threads"]
    return str(thread["name"]).rpartition("(")[2].rstrip(")")


async def test_a_launch_in_a_local_pod_stops_steps_and_travels(
    client: DapClient, running: Running
) -> None:
    await client.ok("initialize", {"adapterID": "canopy", "supportsProgressReporting": True})
    await client.ok("launch", {"program": PATROL_YAML, "pod": "local", "maxTicks": 30})
    await client.wait_for("initialized")
    progress = [e["body"] for e in client.events if e["event"] == "progressUpdate"]
    assert [p["message"] for p in progress] == ["starting your local debug pod"]
    (placed,) = (
        await client.ok(
            "setBreakpoints", {"source": {"path": PATROL_YAML}, "breakpoints": [{"line": 29}]}
        )
    )["breakpoints"]
    assert (placed["verified"], placed["line"]) == (True, 29)
    await client.ok("configurationDone")

    hit = await client.next_event("stopped")
    assert (hit["reason"], hit["hitBreakpointIds"]) == ("breakpoint", [placed["id"]])
    top = (await frames(client))[0]
    assert top["name"] == "go_to_a [MoveTo] INVALID"
    assert (top["source"]["path"], top["line"]) == (PATROL_YAML, 29)
    assert await frame_names(client) == ["go_to_a", "retry_a", "route", "patrol"]
    assert await scope_values(client, "Blackboard") == {"battery_level": "0.8"}
    assert await tick(client) == (1, False)
    evaluated = await client.ok("evaluate", {"expression": "battery_level * 10"})
    assert evaluated["result"] == "8.0"

    stepped = await step(client, "next", "step")  # the rest of tick 1
    assert stepped["threadId"] == 1
    assert await tick(client) == (1, False)
    await client.ok("stepBack", {"threadId": 1})
    back = await client.next_event("stopped")
    assert back["description"].startswith("tick 0 (recorded")
    assert await tick(client) == (0, True)

    await client.ok("setBreakpoints", {"source": {"path": PATROL_YAML}, "breakpoints": []})
    await client.ok("continue", {"threadId": 1})
    ended = await client.next_event("output")
    assert "ended: " in ended["output"]
    assert ended["category"] == "console"
    assert "exitCode" in await client.next_event("exited")
    await client.next_event("terminated")
    identifier = ended["output"].split()[1]
    async with remote_control(running) as control:
        assert (await control.info(identifier)).state is RunState.ENDED
    await client.ok("disconnect", {})


async def test_an_exception_in_a_pod_opens_the_raising_line_with_its_locals(
    client: DapClient,
) -> None:
    await stopped_on_the_exception(client, pod="local", mode="manual", keepTicking=True)
    await assert_user_frames(client, past=False)
    await revisit_from_the_log(client)


async def test_an_agent_in_a_pod_stops_on_a_condition_over_its_call_and_shows_it(
    client: DapClient,
) -> None:
    await launch_configured(
        client,
        TRIAGE_YAML,
        pod="local",
        mode="auto",
        breakpoints=[
            {"name": "classify", "condition": "tokens > 1000"},
            {"name": "reply", "condition": "tokens > 1000"},
        ],
    )
    stopped = await client.wait_for("stopped", reason="breakpoint")
    assert stopped["threadId"] == 1
    assert await frame_names(client) == ["reply", "triage"]
    agent = await scope_values(client, "Agent")
    assert (agent["state"], agent["prompt"]) == ("'done'", "'Answer a refund ticket'")
    assert (agent["input_tokens"], agent["output_tokens"]) == ("900", "300")
    await client.ok("disconnect", {"terminateDebuggee": True})


async def test_attach_to_an_execution_in_the_pod_leaves_it_running(
    client: DapClient, running: Running
) -> None:
    async with remote_control(running) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        await control.set_breakpoints(info.id, [BreakpointSpec(node="drain")])
        await control.tick(info.id, 2)
        await control.wait_for_stop(info.id)

        await client.ok("initialize", {"adapterID": "canopy"})
        await client.ok("attach", {"executionId": info.id})
        await client.wait_for("initialized")
        await client.ok("configurationDone")
        stopped = await client.next_event("stopped")
        assert stopped["reason"] == "breakpoint"
        assert await execution_id(client) == info.id
        assert await frame_names(client) == ["drain", "round", "patrol"]
        assert await scope_values(client, "Blackboard") == {"battery": "100"}
        assert (await step(client, "next", "step"))["threadId"] == 1
        assert await scope_values(client, "Blackboard") == {"battery": "70"}

        await client.ok("disconnect", {})
        await client.wait_closed()
        after = await control.info(info.id)
        assert after.state is not RunState.ENDED  # it belongs to whoever launched it
        await control.terminate(info.id)


async def test_a_session_that_attaches_at_an_exception_stop_sees_the_raising_frames(
    client: DapClient, running: Running
) -> None:
    async with remote_control(running) as control:
        spec = LaunchSpec(PROGRAM, blackboard={"battery": 5}, keep_ticking=True)
        info = await control.launch(spec)
        await control.set_exception_filters(info.id, [ExceptionFilter.RAISED])
        await control.tick(info.id)
        assert (await control.wait_for_stop(info.id)).reason == "exception"

        await client.ok("initialize", {"adapterID": "canopy"})
        await client.ok("attach", {"executionId": info.id})
        await client.wait_for("initialized")
        await client.ok("configurationDone")
        assert (await client.next_event("stopped"))["reason"] == "exception"
        await assert_user_frames(client, past=False)
        await control.terminate(info.id)


async def test_a_dead_pod_ends_the_session_with_the_reason(
    client: DapClient, running: Running
) -> None:
    await launch_configured(
        client, FOREVER, pod="local", mode="auto", blackboard={"battery": 10**6}
    )
    identifier = await execution_id(client)
    async with remote_control(running, attach=False) as control:

        async def ticking() -> bool:
            return (await control.info(identifier)).tick > 0

        await eventually(ticking, "the tree runs in the pod")
    pod = pod_of(running)
    os.kill(running.app[PODS].provider.pid(pod.pod_id), signal.SIGKILL)

    ended = await client.next_event("output")
    assert ended["category"] == "stderr"
    assert "ended: pod_died" in ended["output"]
    assert "the debug pod died: killed by signal 9" in ended["output"]
    assert await client.next_event("exited") == {"exitCode": 1}
    await client.next_event("terminated")
    # The editor then disconnects: the execution is over, nothing to end, no error.
    await client.ok("disconnect", {})


async def test_a_behaviour_that_ends_its_pod_ends_the_session_and_the_next_gets_a_pod(
    client: DapClient, running: Running
) -> None:
    await launch_configured(
        client, f"{quitters.__name__}:os_exiting", pod="local", mode="auto", blackboard={}
    )
    ended = await client.next_event("output")
    assert ended["category"] == "stderr"
    assert "the debug pod died: exited with code 3" in ended["output"]
    assert await client.next_event("exited") == {"exitCode": 1}
    await client.next_event("terminated")
    await client.ok("disconnect", {})
    await client.wait_closed()
    async with remote_control(running) as control:  # the same user, a fresh pod at once
        fresh = LaunchSpec(PATROL, blackboard={"battery": 100})
        info = await asyncio.wait_for(control.launch(fresh), WAIT)
        assert (await control.info(info.id)).state is not RunState.ENDED


async def test_a_lost_server_ends_the_session_instead_of_leaving_it_waiting(
    client: DapClient, running: Running
) -> None:
    await launch_configured(client, PATROL, pod="local", mode="manual", stopOnEntry=True)
    assert (await client.next_event("stopped"))["reason"] == "entry"
    identifier = await execution_id(client)
    for socket_ in list(running.sockets):  # the adapter's notifications: the server is gone
        await socket_.close()
    lost = await client.next_event("output")
    assert lost == {
        "category": "stderr",
        "output": f"lost the connection to the Canopy server running execution {identifier}:"
        " the session ends\n",
    }
    await client.next_event("terminated")
    await client.ok("disconnect", {})  # the server still answers calls: the execution ends
    async with remote_control(running, attach=False) as control:
        assert (await control.info(identifier)).state is RunState.ENDED


async def test_a_step_into_a_nodes_code_in_a_pod_stops_in_the_pods_debugpy(
    client: DapClient, running: Running, spare_adapters: Spawn
) -> None:
    drain = (await stopped_before_drain(client, START_DEBUGGING, pod="local"))[0]
    stepping = asyncio.ensure_future(
        client.request("stepIn", {"threadId": 1, "targetId": await python_target(client, drain)})
    )
    start = await client.reverse_request("startDebugging")
    async with child_session(spare_adapters, start) as (child, attached):
        assert attached["success"], attached.get("message")
        await client.answer(start)
        assert (await stepping)["success"]
        stopped = await child.wait_for("stopped", reason="breakpoint")
        top = (await child.ok("stackTrace", {"threadId": stopped["threadId"]}))["stackFrames"][0]
        assert top["line"] == UPDATE_LINE
        # The Python that stopped is the pod's, not the adapter's: the pod runs the tree.
        pid = await child.ok(
            "evaluate", {"expression": "__import__('os').getpid()", "frameId": top["id"]}
        )
        pod = pod_of(running)
        assert int(pid["result"]) == running.app[PODS].provider.pid(pod.pod_id)
        assert (await client.ok("threads"))["threads"][0]["id"] == 1
        await child.ok("continue", {"threadId": stopped["threadId"]})
        assert (await client.next_event("stopped"))["reason"] == "step"
        assert (await client.ok("evaluate", {"expression": "battery"}))["result"] == "70"
        await child.ok("disconnect", {})


async def test_a_pod_of_another_kind_is_refused(client: DapClient) -> None:
    await client.ok("initialize", {"adapterID": "canopy"})
    message = await client.fails("launch", {"program": PATROL, "pod": "kubernetes"})
    assert "runs local debug pods, not kubernetes ones" in message


async def test_a_program_outside_the_workspace_is_refused_with_the_reason(
    client: DapClient, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("password: hunter2\n")
    await client.ok("initialize", {"adapterID": "canopy"})
    message = await client.fails("launch", {"program": str(secret), "pod": "local"})
    assert f"program '{secret}' is outside the workspace roots" in message
    assert "hunter2" not in message


async def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    nowhere = {"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": ""}
    adapter = spawn_stdio_adapter(tmp_path, ROOT, environment=nowhere)
    async with speaking_to(adapter) as client:
        await client.ok("initialize", {"adapterID": "canopy"})
        message = await client.fails("launch", {"program": PATROL, "pod": "kubernetes"})
    assert message.startswith(
        "the Canopy server the adapter started exited with status 1 before it was ready:"
    )
    assert "no Kubernetes configuration" in message
    assert message.endswith(f"(more in {tmp_path / 'server.log'})")


async def test_a_named_server_that_does_not_answer_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    adapter = spawn_stdio_adapter(tmp_path, ROOT, "--url", url, "--token", "t")
    async with speaking_to(adapter) as client:
        await client.ok("initialize", {"adapterID": "canopy"})
        message = await client.fails("launch", {"program": PATROL, "pod": "local"})
        assert message == f"no Canopy server answers at {url}"
    assert not (tmp_path / "server.json").exists()  # none was started instead


async def test_with_nothing_running_the_adapter_starts_a_server_and_stops_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "canopy"
    adapter = spawn_stdio_adapter(data, ROOT)
    async with speaking_to(adapter) as client:
        answers = await launch_configured(
            client,
            PATROL,
            pod="local",
            mode="manual",
            blackboard={"battery": 100},
            breakpoints=[{"name": "drain"}],
        )
        assert answers["setFunctionBreakpoints"]["breakpoints"][0]["verified"]
        (started,) = [e["body"] for e in client.events if e["event"] == "output"]
        assert started["output"].startswith("Started a Canopy server at http://127.0.0.1:")
        server = json.loads((data / "server.json").read_text())
        assert (await client.next_event("stopped"))["reason"] == "entry"
        assert (await step(client, "continue"))["reason"] == "step"
        assert (await step(client, "continue"))["reason"] == "breakpoint"
        assert await frame_names(client) == ["drain", "round", "patrol"]
        assert (data / "pods").is_dir()
        assert _alive(server["pid"])

        await client.ok("disconnect", {"terminateDebuggee": True})
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(adapter.wait)
    assert adapter.returncode == 0
    assert not _alive(server["pid"])
    assert not (data / "server.json").exists()
    assert list((data / "pods").iterdir()) == []  # its pods went with it


def _alive(pid: int) -> bool:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 0)
        return True
    return False
