"""A real server on a real TCP port, against each store, and helpers to talk to it.

Tokens are issued through the log (as any other process would) and the test then waits on the
server's token registry for that offset, so no test guesses how long propagation takes.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from canopy.bridge import EventFilter, EventStore, ProjectionRunner
from canopy.bridge.client import CanopyClient
from canopy.server.app import LOCAL_TOKEN, SOCKETS, STORE, TOKENS, create_app, stop_pods
from canopy.server.auth import issue_token, token_digest
from canopy.server.config import Settings
from canopy.server.connections import listen, make_runner
from canopy.server.tls import server_context

WAIT = 15.0
"""Upper bound for anything a test waits for; reaching it means the test failed."""


async def eventually(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll ``condition`` until it holds, failing after :data:`WAIT` seconds. Only for effects
    that offer nothing to wait on (a background task's next round, another process)."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                if await _holds(condition):
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT} s: {what}") from None


async def _holds(condition: Callable[[], Awaitable[bool] | bool]) -> bool:
    outcome = condition()
    return bool(await outcome if inspect.isawaitable(outcome) else outcome)


def tick(execution: str = "e1", number: int = 1, **envelope: Any) -> dict[str, Any]:
    """A valid wire-form TickStarted event without tenant_id (the server fills it in)."""
    return {
        "topic": "debugging.execution",
        "stream": f"execution/{execution}",
        "type": "TickStarted",
        "payload": {"execution_id": execution, "tick": number},
        "producer": {"name": "tests", "version": "1"},
        **envelope,
    }


def big_change(number: int, size: int = 200_000) -> dict[str, Any]:
    """A BlackboardChanged event carrying about ``size`` bytes, to exercise size bounds."""
    return {
        "topic": "debugging.execution",
        "stream": "execution/big",
        "type": "BlackboardChanged",
        "payload": {"execution_id": "big", "tick": number, "key": "blob", "new": "x" * size},
        "producer": {"name": "tests", "version": "1"},
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Running:
    """A started server and what tests need to reach into."""

    app: web.Application
    url: str

    @property
    def store(self) -> EventStore:
        return self.app[STORE]

    @property
    def tokens(self) -> ProjectionRunner:
        return self.app[TOKENS]

    @property
    def sockets(self) -> set[web.WebSocketResponse]:
        return self.app[SOCKETS]

    @property
    def local_token(self) -> str:
        return self.app[LOCAL_TOKEN]

    async def issue(self, user: str, tenant: str) -> str:
        """A token for ``user`` in ``tenant``, once the server accepts it: the registry has
        applied its ``TokenIssued`` event (not the head, which running pods keep moving)."""
        before = await self.store.last_offset()
        secret = await issue_token(self.store, user, tenant, "tests")
        issued = EventFilter.of(tenant, types=["TokenIssued"])
        page = await self.store.read(issued, after=before)
        digest = token_digest(secret)
        offset = next(e.offset for e in page.events if e.payload["token_sha256"] == digest)
        await asyncio.wait_for(self.tokens.wait_for(offset), WAIT)
        return secret

    def client(self, token: str) -> CanopyClient:
        return CanopyClient(self.url, token)


@asynccontextmanager
async def serving(
    settings: Settings, store: EventStore | None = None, **options: Any
) -> AsyncIterator[Running]:
    """Run ``create_app(settings, store, **options)`` on a free port of 127.0.0.1 for the
    block, as ``canopy serve`` runs it: the same runner, connection limits and TLS."""
    app = create_app(settings, store, **options)
    runner = make_runner(app, settings)
    await runner.setup()
    try:
        url = await listen(runner, "127.0.0.1", 0, server_context(settings))
        yield Running(app, url)
    finally:
        await stop_pods(app)
        await runner.cleanup()


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """Settings for a server on a fresh log of each store kind."""
    return Settings(port=0, data_dir=tmp_path / ".canopy", database_url=store_url, pod_spare=False)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Running]:
    """A running server that owns its store."""
    async with serving(settings) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, for checking statuses and headers on the wire."""
    async with aiohttp.ClientSession() as session:
        yield session
