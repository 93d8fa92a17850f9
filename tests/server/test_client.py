"""``bridge.client`` against a real server: discovery, errors as exceptions, replay, and a
subscription that survives a dropped connection without losing or repeating events."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiohttp import WSCloseCode

from canopy.bridge import NewEvent, Producer, RecordedEvent
from canopy.bridge.client import (
    CanopyClient,
    Discovery,
    RemoteSubscription,
    ServerError,
    ServerUnreachable,
    discover,
)
from canopy.server.discovery import remove_discovery, write_discovery

from .conftest import Running, eventually, tick


def free_port() -> int:
    """A port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_discovery_file_is_private_and_explicit_values_win(tmp_path: Path) -> None:
    path = write_discovery(tmp_path, Discovery("http://127.0.0.1:1", "file-token", 42, "0.1"))
    assert path.stat().st_mode & 0o777 == 0o600
    assert discover(tmp_path, environ={}).url == "http://127.0.0.1:1"
    environ = {"CANOPY_URL": "http://env:2", "CANOPY_TOKEN": "env-token"}
    assert discover(tmp_path, environ=environ).token == "env-token"
    explicit = discover(tmp_path, url="http://cli:3", token="cli-token", environ=environ)
    assert (explicit.url, explicit.token) == ("http://cli:3", "cli-token")
    remove_discovery(tmp_path, pid=7)  # another server's pid: the file stays
    assert path.exists()
    remove_discovery(tmp_path, pid=42)
    assert not path.exists()


def test_without_any_server_to_find_the_message_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ServerUnreachable, match="start one with `canopy serve`"):
        discover(tmp_path, environ={})
    (tmp_path / "server.json").write_text("{half a file", encoding="utf-8")
    with pytest.raises(ServerUnreachable, match="no Canopy server found"):
        discover(tmp_path, environ={})


async def test_no_server_listening_is_server_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with CanopyClient(url, "token") as client:
        with pytest.raises(ServerUnreachable, match=f"no Canopy server at {url}"):
            await client.health()
        with pytest.raises(ServerUnreachable):
            await anext(client.subscribe())


async def test_problems_become_server_errors(server: Running) -> None:
    async with server.client(server.local_token) as client:
        with pytest.raises(ServerError) as invalid:
            await client.append([tick(), tick(payload={"execution_id": "e1"})])
        with pytest.raises(ServerError) as refused:
            await client.read(topics=["debugging.nowhere"])
    assert (invalid.value.status, invalid.value.index, invalid.value.field) == (
        422,
        1,
        "payload.tick",
    )
    assert invalid.value.detail
    assert (refused.value.status, refused.value.field) == (400, "topic")
    async with server.client("wrong") as client:
        with pytest.raises(ServerError) as unauthorized:
            await client.read()
        with pytest.raises(ServerError) as unauthorized_ws:
            await anext(client.subscribe())
    assert unauthorized.value.status == unauthorized_ws.value.status == 401


async def test_append_typed_events_and_replay_to_the_end(server: Running) -> None:
    event = NewEvent(
        "local",
        "debugging.execution",
        "execution/e7",
        "TickStarted",
        {"execution_id": "e7", "tick": 1},
        Producer("tests", "1"),
    )
    async with server.client(server.local_token) as client:
        offsets = await client.append([event] + [tick("e7", n) for n in range(2, 8)])
        replayed = [e async for e in client.replay(streams=["execution/e7"], page_size=2)]
        health = await client.health()
    assert [e.offset for e in replayed] == offsets
    assert all(isinstance(e, RecordedEvent) for e in replayed)
    assert health == {"status": "ok", "head": offsets[-1]}


async def test_a_subscription_resumes_after_the_server_drops_it(server: Running) -> None:
    async with server.client(server.local_token) as client:
        before = await client.append([tick("e1", 1), tick("e1", 2)])
        subscription: RemoteSubscription = client.subscribe(streams=["execution/e1"])
        async with subscription:
            seen = [(await anext(subscription)).offset for _ in before]
            for ws in list(server.sockets):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"test drop")
            after = await client.append([tick("e1", 3), tick("e1", 4)])
            seen += [(await anext(subscription)).offset for _ in after]
            assert subscription.position == after[-1]
            assert subscription.connections == 2
    assert seen == before + after


async def test_a_refused_subscription_raises(server: Running) -> None:
    async with server.client(server.local_token) as client:
        with pytest.raises(ServerError) as refused:
            await anext(client.subscribe(topics=["debugging.nowhere"]))
    assert (refused.value.status, refused.value.field) == (400, "topic")


async def test_a_closed_subscription_leaves_the_server(server: Running) -> None:
    async with server.client(server.local_token) as client, client.subscribe() as subscription:
        await anext(subscription)
    await eventually(lambda: not server.sockets, "socket closed")
