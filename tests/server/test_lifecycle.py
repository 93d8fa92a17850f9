"""What a server does over its lifetime: follow tokens issued or revoked by other processes,
prune by retention, keep the local token across restarts, and close subscriptions on the way
out."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import aiohttp
from aiohttp import WSCloseCode, WSMsgType

from canopy.bridge import EventFilter, NewEvent, Producer, open_store, parse_retention
from canopy.bridge.client import Discovery
from canopy.server.auth import issue_token, lookup_token
from canopy.server.config import Settings
from canopy.server.discovery import write_discovery

from .conftest import WAIT, bearer, eventually, serving, tick


async def test_a_token_issued_by_another_process_becomes_valid(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with serving(settings) as server:
        async with open_store(settings.database_url) as elsewhere:
            secret = await issue_token(elsewhere, "carol", "initech", "from another process")
            issued_at = await elsewhere.last_offset()
        await asyncio.wait_for(server.tokens.wait_for(issued_at), WAIT)
        async with http.get(f"{server.url}/api/v1/events", headers=bearer(secret)) as response:
            assert response.status == 200
            page = await response.json()
    assert [e["tenant_id"] for e in page["events"]] == ["initech"]


async def test_a_token_revoked_by_another_process_stops_working(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with serving(settings) as server:
        secret = await server.issue("dave", "acme")
        principal = lookup_token(server.tokens.documents, secret)
        assert principal is not None
        revoke = NewEvent(
            "acme",
            "debugging.internal",
            f"token/{principal.token_id}",
            "TokenRevoked",
            {"token_id": principal.token_id},
            Producer("tests", "1"),
        )
        async with open_store(settings.database_url) as elsewhere:
            [revoked_at] = await elsewhere.append([revoke])
        await asyncio.wait_for(server.tokens.wait_for(revoked_at), WAIT)
        async with http.get(f"{server.url}/api/v1/events", headers=bearer(secret)) as response:
            assert response.status == 401


async def test_retention_prunes_in_the_background(settings: Settings) -> None:
    async with open_store(settings.database_url) as store:
        events = [tick("e1", n) | {"tenant_id": "acme"} for n in range(1, 5)]
        *_, newest = await store.append(store.validator.parse(events))
        keep_one = dataclasses.replace(
            settings, retention=tuple(parse_retention("debugging.execution:keep=1"))
        )

        async def only_the_newest_is_left() -> bool:
            page = await store.read(EventFilter("acme"))
            return [e.offset for e in page.events] == [newest]

        async with serving(keep_one, store):
            await eventually(only_the_newest_is_left, "retention pruned the stream to 1 event")


async def test_a_restart_keeps_the_advertised_token(settings: Settings) -> None:
    async with serving(settings) as first:
        token = first.local_token
    write_discovery(settings.data_dir, Discovery("http://127.0.0.1:1", token, os.getpid(), "x"))
    async with serving(settings) as second:
        assert second.local_token == token
    unknown = Discovery("http://127.0.0.1:1", "a-token-nobody-issued", os.getpid(), "x")
    write_discovery(settings.data_dir, unknown)
    async with serving(settings) as third:
        assert third.local_token not in {token, unknown.token}
        assert lookup_token(third.tokens.documents, third.local_token) is not None


async def test_shutdown_closes_subscriptions_as_going_away(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with serving(settings) as server:
        ws = await http.ws_connect(
            f"{server.url}/api/v1/events/subscribe", headers=bearer(server.local_token)
        )
        assert (await ws.receive_json(timeout=WAIT))["kind"] == "events"
    closing = await ws.receive(timeout=WAIT)
    # The frame the server sent; it drops the connection without awaiting the client's reply.
    assert (closing.type, closing.data) == (WSMsgType.CLOSE, WSCloseCode.GOING_AWAY)
    await ws.close()
