"""Subscriptions: catch-up, then live, in offset order, resumable from any offset.

A subscription pulls pages; it never has events pushed into a buffer. A fast consumer is served
from the store's window of recent events; one that falls behind that window reads the database
like any catch-up reader. Memory per subscriber is bounded by one page either way.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .errors import InvalidFilter
from .events import EventFilter, RecordedEvent

if TYPE_CHECKING:
    from .store import EventStore

__all__ = ["Subscription"]


class Subscription:
    """An async iterator of :class:`RecordedEvent`. Stop it by cancelling the consuming task.

    ``position`` is the offset to resume from after a reconnect: every matching event up to it
    has been delivered.
    """

    def __init__(
        self, store: EventStore, event_filter: EventFilter, *, after: int = 0, page_size: int = 500
    ) -> None:
        if after < 0:
            raise InvalidFilter(f"a subscription starts after an offset >= 0, not {after}")
        if not 1 <= page_size <= 10_000:
            raise InvalidFilter(f"page_size must be between 1 and 10000, not {page_size}")
        self._store = store
        self.filter = event_filter
        self.page_size = page_size
        self._page: deque[RecordedEvent] = deque()
        self._scanned = after
        self._delivered = after

    @property
    def position(self) -> int:
        """Resume offset: all matching events up to here were delivered."""
        return self._scanned if not self._page else self._delivered

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> RecordedEvent:
        while not self._page:
            await self._fill()
        event = self._page.popleft()
        self._delivered = event.offset
        return event

    async def next_page(self) -> list[RecordedEvent]:
        """The next non-empty run of events (at most ``page_size``), waiting for live ones."""
        while not self._page:
            await self._fill()
        page = list(self._page)
        self._page.clear()
        self._delivered = page[-1].offset
        return page

    async def _fill(self) -> None:
        store = self._store
        if self._scanned >= store.watch.head:
            # Caught up with every commit this process knows of: nothing to read yet.
            await store.watch.wait_beyond(self._scanned)
            return
        if store.recent.covers(self._scanned):
            events, scanned = store.recent.read(self.filter, self._scanned, self.page_size)
        else:
            events, scanned = await store.read(
                self.filter, after=self._scanned, limit=self.page_size
            )
        if scanned > self._scanned:
            self._page.extend(events)
            self._scanned = scanned
            return
        await store.watch.wait_beyond(self._scanned)
