"""What a store knows about fresh commits: the highest committed offset, and a bounded window of
the newest events this process wrote, so live subscribers are served from memory.

The window only ever holds a gap-free run of offsets; when another process commits in between,
the window restarts and subscribers behind it read from the database instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .events import EventFilter, RecordedEvent

__all__ = ["HeadWatch", "RecentEvents"]


class HeadWatch:
    """The highest offset known to be committed, and a way to wait until it moves past a point.

    Advanced by this process's writer after each commit, and by a store's cross-process detector
    (SQLite polling, PostgreSQL LISTEN/NOTIFY) for commits made elsewhere.
    """

    def __init__(self, head: int = 0) -> None:
        self._head = head
        self._moved = asyncio.Event()
        self._waiters = 0
        self._someone_waits = asyncio.Event()

    @property
    def head(self) -> int:
        """Highest committed offset this process has heard of."""
        return self._head

    @property
    def waiters(self) -> int:
        """How many coroutines are waiting; detectors only poll while this is non-zero."""
        return self._waiters

    async def someone_waits(self) -> None:
        """Return once at least one coroutine waits (lets detectors sleep while nobody does)."""
        await self._someone_waits.wait()

    def advance(self, offset: int) -> None:
        """Record that everything up to ``offset`` is committed, waking whoever waits."""
        if offset > self._head:
            self._head = offset
            self._moved.set()
            self._moved = asyncio.Event()

    async def wait_beyond(self, offset: int) -> None:
        """Wait until the head is past ``offset`` (bound it with ``asyncio.timeout``)."""
        self._waiters += 1
        self._someone_waits.set()
        try:
            while self._head <= offset:
                await self._moved.wait()
        finally:
            self._waiters -= 1
            if not self._waiters:
                self._someone_waits.clear()


class RecentEvents:
    """A bounded, gap-free window of the newest events written by this process."""

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._events: list[RecordedEvent] = []
        self._first = 0  # offset of _events[0]

    @property
    def last(self) -> int:
        """Offset of the newest event held, 0 when empty."""
        return self._events[-1].offset if self._events else 0

    def covers(self, after: int) -> bool:
        """True when every committed event after ``after`` that this window saw is held in it."""
        return bool(self._events) and self._first - 1 <= after < self.last

    def publish(self, events: Sequence[RecordedEvent]) -> None:
        """Add a committed batch (offsets ascending and contiguous within the batch)."""
        if not events:
            return
        if not self._events or events[0].offset != self.last + 1:
            self._events = list(events)
            self._first = events[0].offset
        else:
            self._events.extend(events)
        excess = len(self._events) - self.capacity
        if excess > self.capacity // 4:
            del self._events[:excess]
            self._first = self._events[0].offset

    def reset(self) -> None:
        """Forget everything, e.g. after a batch was committed without being published."""
        self._events = []
        self._first = 0

    def read(
        self, event_filter: EventFilter, after: int, limit: int
    ) -> tuple[list[RecordedEvent], int]:
        """Matching events after ``after`` (at most ``limit``) and the offset scanned up to.

        Only valid when :meth:`covers` is true for ``after``.
        """
        held = self._events
        found: list[RecordedEvent] = []
        scanned = after
        for index in range(after - self._first + 1, len(held)):
            event = held[index]
            scanned = event.offset
            if event_filter.matches(event):
                found.append(event)
                if len(found) >= limit:
                    break
        return found, scanned
