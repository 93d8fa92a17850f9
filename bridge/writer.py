"""Group commit: many producers, one writer task, one transaction per batch.

SQLite (one thread per aiosqlite connection) and PostgreSQL (one round trip per statement)
both get their throughput from batching, not from concurrency: a producer's append waits in a
bounded queue, the writer takes everything waiting (up to a batch size) and commits it at once.
A full queue makes producers wait (back-pressure) rather than grow memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from .errors import BridgeError, StoreClosed
from .events import NewEvent, ProducerSequence

__all__ = ["AppendCall", "GroupCommitter", "Outcome"]

log = logging.getLogger(__name__)

Outcome = list[int] | Exception
"""Per call: the offsets assigned (or found, for idempotent repeats), or why it was refused."""


@dataclass(slots=True)
class AppendCall:
    """One producer's append: all of its events commit together or not at all."""

    events: Sequence[NewEvent]
    payloads: list[str]
    future: asyncio.Future[list[int]]
    sequence: ProducerSequence | None = None


WriteBatch = Callable[[list[AppendCall]], Awaitable[list[Outcome]]]


class GroupCommitter:
    """Runs the single writer task of a store."""

    def __init__(
        self, write_batch: WriteBatch, *, max_queued_calls: int = 4096, max_batch_events: int = 4096
    ) -> None:
        self._write_batch = write_batch
        self._queue: asyncio.Queue[AppendCall | None] = asyncio.Queue(max_queued_calls)
        self._max_batch_events = max_batch_events
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def queued(self) -> int:
        """Calls waiting for the writer (a gauge for metrics)."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the writer task on the running loop."""
        self._task = asyncio.create_task(self._run(), name="canopy-event-writer")

    async def submit(
        self,
        events: Sequence[NewEvent],
        payloads: list[str],
        sequence: ProducerSequence | None = None,
    ) -> list[int]:
        """Queue one append call and wait for its commit."""
        if self._closing or self._task is None:
            raise StoreClosed("the event store is closed")
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        await self._queue.put(AppendCall(events, payloads, future, sequence))
        return await future

    async def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._task is None or self._closing:
            return
        self._closing = True
        await self._queue.put(None)
        await self._task

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            size = len(first.events)
            while size < self._max_batch_events and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += len(item.events)
            await self._commit(batch)

    async def _commit(self, batch: list[AppendCall]) -> None:
        try:
            outcomes = await self._write_batch(batch)
        except Exception as exc:  # the database (or a bug) failed the whole batch
            if len(batch) > 1:
                # Isolate: one call's problem must not fail every producer of the batch.
                log.warning(
                    "a batch of %d appends failed (%s); retrying each alone", len(batch), exc
                )
                for call in batch:
                    await self._commit([call])
                return
            if not isinstance(exc, BridgeError):
                log.exception("event append failed unexpectedly")
            outcomes = [exc]
        for call, outcome in zip(batch, outcomes, strict=True):
            if call.future.done():  # the producer gave up waiting; the write stands
                continue
            if isinstance(outcome, BaseException):
                call.future.set_exception(outcome)
            else:
                call.future.set_result(outcome)
