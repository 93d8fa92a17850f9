"""The log across real processes: a writer killed with SIGKILL loses no acknowledged append,
and several writer processes never make a live reader miss an event."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from canopy.bridge import ALL_TENANTS, EventFilter, open_store

from .helpers import read_all

ROOT = Path(__file__).resolve().parents[2]


async def start_writer(url: str, *args: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bridge.writer_process",
        url,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        assert json.loads(await process.stdout.readline()) == {"ready": True}
    return process


async def acknowledged(process: asyncio.subprocess.Process, count: int) -> dict[str, int]:
    """Read acknowledgements until ``count`` arrived (or the writer ended)."""
    assert process.stdout is not None
    acks: dict[str, int] = {}
    async with asyncio.timeout(60):
        while len(acks) < count:
            line = await process.stdout.readline()
            if not line:
                break
            ack = json.loads(line)
            acks[ack["key"]] = ack["offset"]
    return acks


async def test_sigkill_loses_no_acknowledged_append_and_retries_add_nothing(
    store_url: str,
) -> None:
    writer = await start_writer(store_url, "--writer", "crash", "--count", "100000", "--batch", "3")
    acks = await acknowledged(writer, 600)
    writer.send_signal(signal.SIGKILL)
    assert await writer.wait() == -signal.SIGKILL
    assert len(acks) >= 600

    async with open_store(store_url) as store:
        stored = {e.idempotency_key: e.offset async for e in read_all(store, EventFilter("acme"))}
        assert all(stored.get(key) == offset for key, offset in acks.items())
        written_before_retry = len(stored)
        assert written_before_retry == await store.last_offset()  # no gaps, no duplicates

    retry = await start_writer(
        store_url, "--writer", "crash", "--count", str(written_before_retry + 50), "--batch", "7"
    )
    again = await acknowledged(retry, written_before_retry + 50)
    assert await retry.wait() == 0
    assert all(again[key] == offset for key, offset in acks.items())
    async with open_store(store_url) as store:
        keys = [e.idempotency_key async for e in read_all(store, EventFilter("acme"))]
        assert len(keys) == len(set(keys)) == written_before_retry + 50


async def test_a_live_reader_never_misses_an_event_of_concurrent_writer_processes(
    store_url: str,
) -> None:
    writers, per_writer = 4, 1500
    total = writers * per_writer
    async with open_store(store_url) as store:
        subscription = store.subscribe(EventFilter(ALL_TENANTS), page_size=200)

        async def follow() -> list[int]:
            seen: list[int] = []
            async for event in subscription:
                assert event.offset == (seen[-1] if seen else 0) + 1, "a gap or a reorder"
                seen.append(event.offset)
                if len(seen) == total:
                    return seen
            return seen

        async def poll() -> int:
            """A reader that only ever asks for what follows the last offset it saw."""
            last = 0
            while last < total:
                page = await store.read(EventFilter(ALL_TENANTS), after=last, limit=500)
                for event in page.events:
                    assert event.offset == last + 1, "a new event appeared behind the reader"
                    last = event.offset
                await asyncio.sleep(0)
            return last

        following = asyncio.create_task(follow())
        polling = asyncio.create_task(poll())
        processes = await asyncio.gather(
            *(
                start_writer(
                    store_url, "--writer", f"w{i}", "--count", str(per_writer), "--batch", "4"
                )
                for i in range(writers)
            )
        )
        results = await asyncio.gather(*(acknowledged(p, per_writer) for p in processes))
        assert [await p.wait() for p in processes] == [0] * writers
        async with asyncio.timeout(60):
            seen = await following
            assert await polling == total
        assert len(seen) == total
        acked = sorted(o for acks in results for o in acks.values())
        assert acked == list(range(1, total + 1))
