"""A server killed and restarted while a pod runs: the pod's worker keeps its executions,
links to the new server, which takes it back; nothing recorded is lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from canopy.bridge import EventFilter, open_store
from canopy.bridge.client import CanopyClient, read_discovery
from canopy.server.remote.client import HttpExecutionControl
from canopy.server.runtime.control import LaunchSpec

from ...bridge.helpers import read_all
from ..conftest import bearer, eventually
from ..test_cli import CANOPY, environment, read_line, stop
from .remote import REPOSITORY

PATROL = "tests.server.runtime.factories:patrol"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def canopy_serve(
    data_dir: Path, port: int, log: Path, **variables: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``canopy serve`` as its own process, in the repository (where the factories live),
    with ``variables`` added to its environment."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(CANOPY),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            cwd=REPOSITORY,
            env=environment(**{"CANOPY_POD_IDLE_TIMEOUT": "600", **variables}),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        banner = ""
        while "Press Ctrl-C" not in banner:
            banner += await read_line(process)
        yield process
    finally:
        await stop(process)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def my_pod(url: str, token: str) -> dict | None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/v1/pods/me", headers=bearer(token)) as answer,
    ):
        return await answer.json() if answer.status == 200 else None


async def test_a_restarted_server_takes_its_running_pods_back(tmp_path: Path) -> None:
    data_dir, port, log = tmp_path / ".canopy", free_port(), tmp_path / "serve.log"
    async with canopy_serve(data_dir, port, log) as first:
        found = read_discovery(data_dir)
        assert found is not None
        url, token = found.url, found.token
        async with CanopyClient(url, token) as client, HttpExecutionControl(client) as control:
            info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
            await control.tick(info.id, 2)
            await control.settle(info.id)
        pod = await my_pod(url, token)
        assert pod is not None
        stop_code = await stop(first, signal.SIGKILL)
        assert stop_code == -signal.SIGKILL
    assert alive(pod["pid"]), "the worker outlives its server"
    async with canopy_serve(data_dir, port, log):
        await eventually(lambda: my_pod(url, token), "the pod links to the new server")
        async with CanopyClient(url, token) as client, HttpExecutionControl(client) as control:
            assert (await control.info(info.id)).tick == 2
            await control.tick(info.id)
            assert (await control.settle(info.id)).tick == 3
            assert (await control.view(info.id)).blackboard["/battery"] == 70
            await control.terminate(info.id)
    await eventually(lambda: not alive(pod["pid"]), "the worker stops with the server")
    async with open_store(f"sqlite:///{data_dir / 'events.db'}") as store:
        wanted = EventFilter.of("local", streams=[f"execution/{info.id}"])
        recorded = [event async for event in read_all(store, wanted)]
    assert [e.stream_version for e in recorded] == list(range(1, len(recorded) + 1))
    ticks = [e.payload["tick"] for e in recorded if e.type == "TickCompleted"]
    assert ticks == [1, 2, 3]
    assert recorded[-1].type == "ExecutionEnded"


def children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (a server's pod workers and its spare)."""
    return {
        int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat") if _parent(stat) == pid
    }


def running(pid: int) -> bool:
    """Alive and not a zombie: a worker orphaned by its server's death is reaped by whoever
    adopts it, perhaps never."""
    return _parent(Path(f"/proc/{pid}/stat")) is not None


def _parent(stat: Path) -> int | None:
    """The parent pid in a ``/proc/<pid>/stat`` file; None for a zombie or a process gone."""
    try:
        state, parent = stat.read_text().rpartition(")")[2].split()[:2]
    except OSError:
        return None
    return None if state == "Z" else int(parent)


GRACE_AND_SPARE = {"CANOPY_POD_SERVER_GRACE": "1", "CANOPY_POD_SPARE_WORKER": "1"}


async def test_the_workers_of_a_server_that_does_not_come_back_exit(tmp_path: Path) -> None:
    data_dir, port, log = tmp_path / ".canopy", free_port(), tmp_path / "serve.log"
    async with canopy_serve(data_dir, port, log, **GRACE_AND_SPARE) as server:
        found = read_discovery(data_dir)
        assert found is not None
        async with (
            CanopyClient(found.url, found.token) as client,
            HttpExecutionControl(client) as control,
        ):
            info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
            await control.tick(info.id)
            await control.settle(info.id)
        pod = await my_pod(found.url, found.token)
        assert pod is not None
        await eventually(lambda: len(children(server.pid)) == 2, "a pod and a spare worker")
        workers = children(server.pid)
        assert pod["pid"] in workers
        await stop(server, signal.SIGKILL)
    await eventually(
        lambda: not any(running(pid) for pid in workers), "the workers exit after the grace"
    )
