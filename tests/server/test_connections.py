"""Slow and greedy clients against a real server over raw sockets: a head or a body that never
finishes, an idle keep-alive connection, a token holding too many requests open, more
connections than the server takes. Deadlines are set short in these servers so that the tests
wait for them only briefly; what is checked is what the client receives, never how long."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from canopy.server.config import Settings, SettingsError, load_settings

from .conftest import WAIT, Running, bearer, eventually, serving

SHORT = 0.3
"""A deadline the tests can wait out."""
HEALTH = b"GET /healthz HTTP/1.1\r\nHost: canopy\r\n\r\n"


def limited(settings: Settings, **limits: Any) -> Settings:
    return Settings(
        port=0,
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        pod_spare=False,
        **limits,
    )


@asynccontextmanager
async def raw(running: Running) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    url = URL(running.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer: status, headers (lower-case names) and body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    status_line, *lines = head.decode().strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Whatever the server still sends before it closes the connection."""
    return await asyncio.wait_for(reader.read(), WAIT)


async def test_a_head_that_never_finishes_gets_408_and_the_socket_closes(
    settings: Settings,
) -> None:
    async with serving(limited(settings, header_timeout=SHORT)) as running:
        async with raw(running) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: can")  # ... and nothing more
            status, headers, body = await answer(reader)
            assert status == 408
            assert headers["content-type"].startswith("application/problem+json")
            assert headers["connection"] == "close"
            problem = json.loads(body)
            assert problem["type"].endswith("/request-timeout")
            assert "header_timeout" in problem["detail"]
            assert await closed(reader) == b""
        # A connection that says nothing at all is closed without a word.
        async with raw(running) as (reader, _):
            assert await closed(reader) == b""
        # A head sent in pieces within the deadline is served, on one connection many times.
        async with raw(running) as (reader, writer):
            for _ in range(3):
                for piece in (HEALTH[:5], HEALTH[5:20], HEALTH[20:]):
                    writer.write(piece)
                    await writer.drain()
                assert (await answer(reader))[0] == 200


async def test_the_head_deadline_counts_from_the_first_byte_not_from_the_last_answer(
    settings: Settings,
) -> None:
    patient = limited(settings, header_timeout=SHORT, keepalive_timeout=30)
    async with serving(patient) as running, raw(running) as (reader, writer):
        writer.write(HEALTH)
        assert (await answer(reader))[0] == 200
        await asyncio.sleep(3 * SHORT)  # idle between requests: the keep-alive's business
        writer.write(HEALTH)
        assert (await answer(reader))[0] == 200


async def test_an_idle_keep_alive_connection_is_closed(settings: Settings) -> None:
    impatient = limited(settings, keepalive_timeout=SHORT)
    async with serving(impatient) as running, raw(running) as (reader, writer):
        writer.write(HEALTH)
        status, headers, _ = await answer(reader)
        assert (status, headers.get("connection", "keep-alive")) == (200, "keep-alive")
        assert await closed(reader) == b""


async def test_a_body_that_never_finishes_gets_408_and_the_socket_closes(
    settings: Settings,
) -> None:
    async with serving(limited(settings, body_timeout=SHORT)) as running:
        async with raw(running) as (reader, writer):
            writer.write(
                b"POST /api/v1/events HTTP/1.1\r\nHost: canopy\r\n"
                + f"Authorization: Bearer {running.local_token}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                + b'{"events": ['  # ... of a thousand bytes announced
            )
            status, headers, body = await answer(reader)
            assert status == 408
            assert headers["content-type"].startswith("application/problem+json")
            assert headers["connection"] == "close"
            assert "body_timeout" in json.loads(body)["detail"]
            assert await closed(reader) == b""
        assert await running.store.last_offset() >= 0  # nothing half-appended, server alive


async def test_a_token_holding_too_many_open_requests_gets_429_naming_the_cap(
    settings: Settings, http: aiohttp.ClientSession
) -> None:
    async with serving(limited(settings, max_connections_per_token=2)) as running:
        greedy = await running.issue("greedy", "acme")
        other = await running.issue("other", "acme")
        me = f"{running.url}/api/v1/pods/me"
        subscribe = f"{running.url}/api/v1/events/subscribe"
        first = await http.ws_connect(subscribe, headers=bearer(greedy))
        second = await http.ws_connect(subscribe, headers=bearer(greedy))
        async with http.get(me, headers=bearer(greedy)) as refused:
            assert (refused.status, refused.content_type) == (429, "application/problem+json")
            assert refused.headers["Retry-After"] == "1"
            problem = await refused.json(content_type=None)
        assert problem["type"].endswith("/too-many-connections")
        assert problem["limit"] == 2
        assert "max_connections_per_token" in problem["detail"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as third:
            await http.ws_connect(subscribe, headers=bearer(greedy))
        assert third.value.status == 429
        async with http.get(me, headers=bearer(other)) as response:
            assert response.status == 404  # another token has slots of its own
        await first.close()

        async def freed() -> bool:
            async with http.get(me, headers=bearer(greedy)) as response:
                return response.status == 404

        await eventually(freed, "a closed WebSocket gives its slot back")
        await second.close()


async def test_connections_past_the_global_cap_get_503(settings: Settings) -> None:
    async with serving(limited(settings, max_connections=2)) as running:
        async with raw(running) as (reader1, writer1), raw(running) as (reader2, writer2):
            for reader, writer in ((reader1, writer1), (reader2, writer2)):
                writer.write(HEALTH)  # an answer proves the connection was accepted
                assert (await answer(reader))[0] == 200
            async with raw(running) as (reader, _):
                status, headers, body = await answer(reader)
                assert (status, headers["retry-after"]) == (503, "1")
                assert "max_connections" in json.loads(body)["detail"]
                assert await closed(reader) == b""

        async def room_again() -> bool:  # once the server saw the two others leave
            async with raw(running) as (reader, writer):
                writer.write(HEALTH)
                return (await answer(reader))[0] == 200

        await eventually(room_again, "a connection is accepted below the cap")


def test_connection_limits_are_settings_with_defaults_and_checked_values(tmp_path: Path) -> None:
    defaults = load_settings(environ={}, cwd=tmp_path)
    assert (defaults.header_timeout, defaults.body_timeout, defaults.keepalive_timeout) == (
        10.0,
        60.0,
        75.0,
    )
    assert (defaults.max_connections, defaults.max_connections_per_token) == (512, 64)
    environ = {
        "CANOPY_HEADER_TIMEOUT": "5",
        "CANOPY_BODY_TIMEOUT": "120",
        "CANOPY_KEEPALIVE_TIMEOUT": "30.5",
        "CANOPY_MAX_CONNECTIONS": "2000",
        "CANOPY_MAX_CONNECTIONS_PER_TOKEN": "8",
    }
    configured = load_settings(environ=environ, cwd=tmp_path)
    assert (configured.header_timeout, configured.body_timeout) == (5.0, 120.0)
    assert configured.keepalive_timeout == 30.5
    assert (configured.max_connections, configured.max_connections_per_token) == (2000, 8)
    for variable, value, complaint in [
        ("CANOPY_HEADER_TIMEOUT", "0", "header_timeout.*not a positive number of seconds"),
        ("CANOPY_BODY_TIMEOUT", "soon", "body_timeout.*not a positive number of seconds"),
        ("CANOPY_KEEPALIVE_TIMEOUT", "inf", "keepalive_timeout.*not a positive number"),
        ("CANOPY_MAX_CONNECTIONS", "-1", "max_connections.*not a positive whole number"),
        ("CANOPY_MAX_CONNECTIONS_PER_TOKEN", "many", "max_connections_per_token.*whole number"),
    ]:
        with pytest.raises(SettingsError, match=rf"{complaint}") as refused:
            load_settings(environ={variable: value}, cwd=tmp_path)
        assert variable in str(refused.value)


async def test_a_websocket_peer_that_never_answers_pings_is_closed(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The control notifications socket pings every 10 s; one store is enough to show it."""
    quiet = Settings(port=0, data_dir=tmp_path / ".canopy", pod_spare=False)
    async with serving(quiet) as running:
        url = f"{running.url}/api/v1/notifications"
        ws = await http.ws_connect(url, headers=bearer(running.local_token), autoping=False)
        pings = 0
        async with asyncio.timeout(4 * WAIT):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.PING:
                pings += 1  # ... and no pong
        assert pings >= 1
        assert message.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}
        await eventually(lambda: not running.sockets, "the server let go of the socket")
