"""Two servers on one PostgreSQL log, as replicas behind a load balancer: each serves its own
pods, and a subscriber on either sees every event of its tenant, in one global order."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from canopy.bridge import ALL_TENANTS, BridgeError, EventFilter, RecordedEvent, open_store
from canopy.bridge.client import CanopyClient, read_discovery
from canopy.server.auth import token_digest
from canopy.server.runtime.control import LaunchSpec

from ...bridge.helpers import read_all
from ..conftest import WAIT, Running, eventually, tick
from .remote import pod_server, remote_control
from .test_restart import canopy_serve, free_port

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


async def test_killing_one_of_two_servers_loses_no_acknowledged_append(
    postgres_url: str, tmp_path: Path
) -> None:
    """A client appends through both replicas; one is killed with SIGKILL mid-stream, and the
    client sends what was not answered to the other, as it would through a load balancer. Every
    answered append is in the log at the offsets it was answered with, each event once, the
    offsets without a gap; a subscriber on the surviving replica saw it all in order."""
    async with AsyncExitStack() as stack:
        urls, tokens, processes = [], [], []
        for name in ("a", "b"):
            data_dir = tmp_path / name
            process = await stack.enter_async_context(
                canopy_serve(
                    data_dir,
                    free_port(),
                    tmp_path / f"{name}.log",
                    CANOPY_DATABASE_URL=postgres_url,
                )
            )
            found = read_discovery(data_dir)
            assert found is not None
            processes.append(process)
            urls.append(found.url)
            tokens.append(found.token)
        doomed, survivor = [
            await stack.enter_async_context(CanopyClient(url, token))
            for url, token in zip(urls, tokens, strict=True)
        ]
        watched: list[RecordedEvent] = []

        async def watch() -> None:
            async for event in survivor.subscribe(streams=["execution/replicated"]):
                watched.append(event)

        watching = asyncio.create_task(watch())
        answered: dict[str, int] = {}
        batches = [
            [tick("replicated", n, idempotency_key=f"k{n}") for n in range(first, first + 3)]
            for first in range(1, 301, 3)
        ]
        retried = 0
        for index, batch in enumerate(batches):
            client = survivor if index % 2 or index > 50 else doomed
            sending = asyncio.create_task(client.append(batch))
            if index == 50:  # mid-append: committed or not, the answer never comes
                await asyncio.sleep(0)  # the append is under way, not answered
                processes[0].send_signal(signal.SIGKILL)
            try:
                offsets = await sending
            except (aiohttp.ClientError, BridgeError, OSError):
                assert client is doomed
                retried += 1
                offsets = await survivor.append(batch)  # the retry, through the other replica
            answered.update(zip((e["idempotency_key"] for e in batch), offsets, strict=True))
        assert retried == 1
        assert await processes[0].wait() == -signal.SIGKILL
        await eventually(lambda: len(watched) >= 300, "the subscriber sees every event")
        watching.cancel()

    async with open_store(postgres_url) as store:
        everything = [e async for e in read_all(store, EventFilter(ALL_TENANTS))]
        mine = [e for e in everything if e.stream == "execution/replicated"]
    assert [e.offset for e in everything] == list(range(1, len(everything) + 1))
    assert {e.idempotency_key: e.offset for e in mine} == answered
    assert [e.payload["tick"] for e in mine] == list(range(1, 301))
    assert [(e.offset, e.payload["tick"]) for e in watched] == [
        (e.offset, e.payload["tick"]) for e in mine
    ]
