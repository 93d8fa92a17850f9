"""The subscription WebSocket on a real port, against each store: catch-up then live events in
order, resumption from a position, refusals as error frames, tenant isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType

from .conftest import WAIT, Running, bearer, big_change, eventually, tick

SUBSCRIBE = "/api/v1/events/subscribe"


async def frames_until(
    ws: aiohttp.ClientWebSocketResponse, count: int
) -> tuple[list[dict[str, Any]], int]:
    """Events of the next frames until ``count`` arrived, and the last frame's position."""
    events: list[dict[str, Any]] = []
    position = -1
    async with asyncio.timeout(WAIT):
        while len(events) < count:
            frame = await ws.receive_json()
            assert frame["kind"] == "events"
            events.extend(frame["events"])
            position = frame["position"]
    return events, position


async def append(server: Running, token: str, events: list[dict[str, Any]]) -> list[int]:
    async with server.client(token) as client:
        return await client.append(events)


async def test_catch_up_then_live_in_order(server: Running, http: aiohttp.ClientSession) -> None:
    token = await server.issue("alice", "acme")
    early = await append(server, token, [tick("e1", n) for n in range(1, 4)])
    async with http.ws_connect(
        f"{server.url}{SUBSCRIBE}?type=TickStarted", headers=bearer(token)
    ) as ws:
        caught_up, position = await frames_until(ws, 3)
        assert [e["offset"] for e in caught_up] == early
        assert position >= early[-1]
        late = await append(server, token, [tick("e1", 4), tick("e1", 5)])
        live, position = await frames_until(ws, 2)
    assert [e["offset"] for e in live] == late
    assert [e["payload"]["tick"] for e in caught_up + live] == [1, 2, 3, 4, 5]
    assert position == late[-1]


async def test_big_pages_are_sent_in_bounded_frames(
    server: Running, http: aiohttp.ClientSession
) -> None:
    written = await append(server, server.local_token, [big_change(n) for n in range(12)])
    frames: list[dict[str, Any]] = []
    async with http.ws_connect(
        f"{server.url}{SUBSCRIBE}?stream=execution/big", headers=bearer(server.local_token)
    ) as ws:
        async with asyncio.timeout(WAIT):
            while sum(len(f["events"]) for f in frames) < len(written):
                frames.append(await ws.receive_json())
    assert len(frames) >= 3
    assert all(len(f["events"]) <= 5 for f in frames)  # about 1 MiB each
    assert [e["offset"] for f in frames for e in f["events"]] == written
    assert [f["position"] for f in frames[:-1]] == [f["events"][-1]["offset"] for f in frames[:-1]]


async def test_resume_from_a_position_after_reconnecting(
    server: Running, http: aiohttp.ClientSession
) -> None:
    token = await server.issue("alice", "acme")
    first = await append(server, token, [tick("e1", 1), tick("e1", 2)])
    url = f"{server.url}{SUBSCRIBE}?stream=execution/e1"
    async with http.ws_connect(url, headers=bearer(token)) as ws:
        _, position = await frames_until(ws, 2)
    assert position >= first[-1]
    missed = await append(server, token, [tick("e1", 3)])
    async with http.ws_connect(f"{url}&after={position}", headers=bearer(token)) as ws:
        resumed, _ = await frames_until(ws, 1)
    assert [e["offset"] for e in resumed] == missed


async def test_subscribers_only_see_their_tenant(
    server: Running, http: aiohttp.ClientSession
) -> None:
    alice = await server.issue("alice", "acme")
    bob = await server.issue("bob", "globex")
    await append(server, bob, [tick("b1", 1)])
    async with http.ws_connect(f"{server.url}{SUBSCRIBE}", headers=bearer(alice)) as ws:
        seen, _ = await frames_until(ws, 1)  # alice's TokenIssued, not bob's tick
        await append(server, bob, [tick("b2", 1)])
        [mine] = await append(server, alice, [tick("a1", 1)])
        # Offsets are delivered in order: had bob's live event leaked, it would come first.
        live, _ = await frames_until(ws, 1)
    assert [e["tenant_id"] for e in seen + live] == ["acme", "acme"]
    assert live[0]["offset"] == mine


@pytest.mark.parametrize(
    ("query", "field"), [("after=-5", "after"), ("limit=5", "limit"), ("topic=nope", "topic")]
)
async def test_bad_parameters_get_an_error_frame_and_1008(
    server: Running, http: aiohttp.ClientSession, query: str, field: str
) -> None:
    async with http.ws_connect(
        f"{server.url}{SUBSCRIBE}?{query}", headers=bearer(server.local_token)
    ) as ws:
        frame = await ws.receive_json(timeout=WAIT)
        closing = await ws.receive(timeout=WAIT)
    assert (frame["kind"], frame["status"], frame["field"]) == ("error", 400, field)
    assert closing.type is WSMsgType.CLOSE
    assert ws.close_code == WSCloseCode.POLICY_VIOLATION


async def test_subscribing_needs_a_token_and_a_websocket(
    server: Running, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(f"{server.url}{SUBSCRIBE}", headers=bearer("wrong"))
    assert refused.value.status == 401
    async with http.get(f"{server.url}{SUBSCRIBE}", headers=bearer(server.local_token)) as r:
        assert (r.status, r.content_type) == (400, "application/problem+json")


async def test_closing_the_socket_ends_the_subscription(
    server: Running, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(
        f"{server.url}{SUBSCRIBE}", headers=bearer(server.local_token)
    ) as ws:
        await frames_until(ws, 1)
        assert len(server.sockets) == 1
    await eventually(lambda: not server.sockets and not subscription_tasks(), "subscription ended")


def subscription_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "canopy-subscription"]
