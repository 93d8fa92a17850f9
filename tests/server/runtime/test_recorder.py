"""The recorder: never blocks a tick on I/O, holds the tree back when its buffer is full, and
loses nothing while the log is unavailable."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from canopy.bridge import EventFilter, Producer, open_store
from canopy.server.runtime.recorder import EventRecorder

from ...bridge.helpers import read_all


async def test_a_full_buffer_holds_the_tree_back_and_nothing_is_lost(sqlite_url: str) -> None:
    async with open_store(sqlite_url, busy_timeout_ms=20) as store:
        recorder = EventRecorder(
            store,
            tenant_id="acme",
            execution_id="e1",
            producer=Producer("tests", "1"),
            capacity=10,
            batch_size=4,
        )
        await recorder.start()
        blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the log is unavailable

        def tick_thread() -> None:
            for tick in range(1, 31):
                recorder.record("TickStarted", {"execution_id": "e1", "tick": tick})

        ticking = threading.Thread(target=tick_thread)
        ticking.start()
        async with asyncio.timeout(30):
            await recorder.stalled.wait()
        # 30 events cannot fit a buffer of 10 while nothing can be written: the thread waits.
        assert ticking.is_alive()
        assert recorder.written == 0

        blocker.execute("ROLLBACK")
        blocker.close()
        await asyncio.to_thread(ticking.join, 30)
        assert not ticking.is_alive()
        await recorder.close()
        stream = EventFilter.of("acme", streams=["execution/e1"])
        ticks = [e.payload["tick"] async for e in read_all(store, stream)]
        assert ticks == list(range(1, 31))
        assert [e.stream_version async for e in read_all(store, stream)] == list(range(1, 31))
