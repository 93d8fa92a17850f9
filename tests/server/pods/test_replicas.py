"""Two servers on one PostgreSQL log, as replicas behind a load balancer: each serves its own
pods, and a subscriber on either sees every event of its tenant, in one global order."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

from canopy.bridge import EventFilter, RecordedEvent, open_store
from canopy.server.auth import token_digest
from canopy.server.runtime.control import LaunchSpec

from ..conftest import WAIT, Running
from .remote import pod_server, remote_control

PATROL = "tests.server.runtime.factories:patrol"


async def follow(running: Running, token: str, until: set[str]) -> list[RecordedEvent]:
    """The tenant's execution events, as a subscriber of ``running`` gets them, until every
    execution of ``until`` has ended."""
    seen: list[RecordedEvent] = []
    ended: set[str] = set()
    async with running.client(token) as client:
        subscription = client.subscribe(topics=["debugging.execution"])
        async with asyncio.timeout(WAIT * 2):
            async for event in subscription:
                seen.append(event)
                if event.type == "ExecutionEnded":
                    ended.add(event.payload["execution_id"])
                if until <= ended:
                    return seen
    return seen


async def honoured(running: Running, token: str) -> None:
    """Wait until ``running`` accepts a token another replica issued."""
    digest = token_digest(token)
    page = await running.store.read(EventFilter.of("acme", types=["TokenIssued"]))
    offset = next(e.offset for e in page.events if e.payload["token_sha256"] == digest)
    await asyncio.wait_for(running.tokens.wait_for(offset), WAIT)


async def test_two_servers_on_one_postgres_log_serve_pods_and_agree_on_the_order(
    postgres_url: str, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        servers = []
        for name in ("a", "b"):
            store = await stack.enter_async_context(open_store(postgres_url))
            servers.append(await stack.enter_async_context(pod_server(store, tmp_path / name)))
        first, second = servers
        launched = []
        for running, user in ((first, "ann"), (second, "bob")):
            control = await stack.enter_async_context(remote_control(running, user))
            info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
            launched.append((control, info.id))
        # a token one replica issued is honoured by the other, once its registry has it
        readers = [await running.issue("carol", "acme") for running in servers]
        for running, token in zip(servers, reversed(readers), strict=True):
            await honoured(running, token)
        wanted = {execution for _, execution in launched}
        followers = [
            asyncio.create_task(follow(running, token, wanted))
            for running, token in zip(servers, reversed(readers), strict=True)
        ]
        for control, execution in launched:
            await control.tick(execution, 3)
            await control.terminate(execution)
        on_first, on_second = await asyncio.gather(*followers)
    assert [e.offset for e in on_first] == [e.offset for e in on_second]
    assert {e.payload["execution_id"] for e in on_first} == wanted
    offsets = [e.offset for e in on_first]
    assert offsets == sorted(set(offsets))
    for execution in wanted:
        mine = [e for e in on_first if e.payload["execution_id"] == execution]
        assert [e.stream_version for e in mine] == list(range(1, len(mine) + 1))
