"""Carries an execution's events from its tick thread to the event log, in batches.

A tick must never wait for I/O: ``record`` only appends to an in-memory buffer, and a task on
the event loop flushes the buffer to the store in the background.

Back-pressure policy: the buffer is bounded (``capacity`` events). When it is full — the log is
slower than the tree, or unreachable — ``record`` blocks the tick thread until the flusher has
made room. The tree slows down; nothing is dropped. A flush that fails for a transient reason
(the database is unavailable) is retried with back-off, keeping the events in order.

Exactly-once without idempotency keys: the recorder is the only writer of its stream, so each
batch carries the stream version it expects. A retry of a batch whose commit was in fact
acknowledged by the database finds the stream already ahead by exactly that batch, and is
counted as done.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Any, Final

from canopy.bridge import (
    ConcurrencyConflict,
    EventStore,
    InvalidEvent,
    NewEvent,
    Producer,
    StoreUnavailable,
    Topic,
)

__all__ = ["EventRecorder"]

log = logging.getLogger(__name__)

RETRY_DELAYS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class EventRecorder:
    """Buffers one execution's events and appends them to stream ``execution/<id>``."""

    def __init__(
        self,
        store: EventStore,
        *,
        tenant_id: str,
        execution_id: str,
        producer: Producer,
        capacity: int = 65_536,
        batch_size: int = 4096,
    ) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.stream = f"execution/{execution_id}"
        self.producer = producer
        self.capacity = capacity
        self.batch_size = batch_size
        self.dropped = 0  # events refused as invalid (a bug, logged loudly; never silent)
        self.written = 0
        self.retries = 0  # appends retried because the log was unavailable
        self.stalled = asyncio.Event()  # set while the log is unavailable
        self._buffer: deque[tuple[str, dict[str, Any], int]] = deque()
        self._space = threading.Event()
        self._signalled = False
        self._closed = False
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._version = 0
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the recorder flushes on (the one it was created on)."""
        return self._loop

    async def start(self) -> None:
        """Learn the stream's version and start flushing."""
        self._version = await self.store.stream_version(self.tenant_id, self.stream)
        self._task = asyncio.create_task(self._flush_forever(), name=f"recorder {self.stream}")

    def record(self, event_type: str, payload: dict[str, Any]) -> None:
        """Queue an event (any thread). Blocks only while the buffer is full."""
        buffer = self._buffer
        if len(buffer) >= self.capacity:
            self._wait_for_space()
        buffer.append((event_type, payload, time.time_ns() // 1000))
        if not self._signalled:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def _wait_for_space(self) -> None:
        self._space.clear()
        if not self._signalled:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._wakeup.set)
        while len(self._buffer) >= self.capacity and not self._closed:
            self._space.wait()

    async def drain(self) -> None:
        """Return once everything recorded so far is in the log."""
        while self._buffer or not self._idle.is_set():
            self._wakeup.set()
            await self._idle.wait()
            await asyncio.sleep(0)

    async def close(self) -> None:
        """Flush what is buffered, then stop."""
        if self._task is None:
            return
        await self.drain()
        self._closed = True
        self._space.set()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._idle.clear()
            # What woke the loop with the first event may have queued more behind it (an
            # agent's call, recorded as it starts): that goes first, the log in the background.
            await asyncio.sleep(0)
            self._wakeup.clear()
            self._signalled = False
            try:
                while self._buffer:
                    await self._flush_batch()
            finally:
                self._idle.set()

    async def _flush_batch(self) -> None:
        count = min(len(self._buffer), self.batch_size)
        batch = [self._buffer[i] for i in range(count)]
        events = [
            NewEvent(
                self.tenant_id,
                Topic.EXECUTION,
                self.stream,
                event_type,
                payload,
                self.producer,
                time=at,
                expected_version=self._version if index == 0 else None,
            )
            for index, (event_type, payload, at) in enumerate(batch)
        ]
        written = await self._append_with_retries(events)
        for _ in range(count):
            self._buffer.popleft()
        self._version += written
        self.written += written
        self._space.set()

    async def _append_with_retries(self, events: list[NewEvent]) -> int:
        """Append ``events`` until it works; return how many were written.

        Unavailability is retried for as long as it lasts (the full buffer holds the tree back
        meanwhile); an invalid event — a bug — is dropped, logged and counted in ``dropped``.
        """
        failures = 0
        while True:
            try:
                await self.store.append(events)
                self.stalled.clear()
                return len(events)
            except ConcurrencyConflict as conflict:
                if failures and conflict.actual == self._version + len(events):
                    return len(events)  # the attempt that seemed to fail did commit
                log.error("stream %s moved under the recorder: %s", self.stream, conflict)
                self._version = conflict.actual
            except InvalidEvent as invalid:
                index = invalid.index or 0
                log.error("dropping an invalid %s event: %s", events[index].type, invalid)
                self.dropped += 1
                del events[index]
                if not events:
                    return 0
            except StoreUnavailable as unavailable:
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                self.retries += 1
                self.stalled.set()
                log.warning("event log unavailable (%s); retrying in %.2fs", unavailable, delay)
                await asyncio.sleep(delay)
            events[0] = replace(events[0], expected_version=self._version)
