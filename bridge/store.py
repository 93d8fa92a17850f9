"""The ``EventStore`` contract: one append-only, tenant-aware log behind every Canopy view.

Guarantees every implementation keeps (``tests/bridge/conformance.py`` checks each one):

- offsets are global and ascending in commit order: a reader that has seen offset N never later
  sees a new event at an offset <= N, even with several writer processes;
- an append call is atomic; its result is only returned once the batch is committed (and so
  survives a crash of the process);
- an event whose ``idempotency_key`` already exists for its tenant is not written again: the
  original offset is returned when it is the same event (topic, stream, type, payload), and
  the call is refused with ``IdempotencyConflict`` when it is not;
- ``expected_version`` refuses an append when its stream moved (optimistic concurrency);
- events appended with a producer sequence are written once each: a resend answers the
  original offsets, an overlap writes only what is new, a gap is refused;
- every read path is filtered by tenant.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from .events import EventFilter, NewEvent, ProducerSequence, RecordedEvent
from .live import HeadWatch, RecentEvents
from .subscription import Subscription
from .validation import EventValidator

if TYPE_CHECKING:
    from .retention import RetentionRule

__all__ = ["EventStore", "ProjectionState", "ReadPage"]


class ReadPage(NamedTuple):
    """Matching events and the offset the read scanned up to (>= the last event's offset), so a
    filtered reader can move past stretches that hold nothing for it."""

    events: list[RecordedEvent]
    scanned_to: int


class ProjectionState(NamedTuple):
    """What a projection stored: its code version, checkpoint offset and documents."""

    version: int
    checkpoint: int
    documents: dict[str, Any]


class EventStore(ABC):
    """Abstract event log. Use as ``async with store:`` or call :meth:`start` / :meth:`close`."""

    def __init__(self, *, validator: EventValidator | None = None) -> None:
        self.validator = validator or EventValidator()
        self.watch = HeadWatch()
        self.recent = RecentEvents()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    async def start(self) -> None:
        """Connect, create or migrate the schema, start the writer and live-tail detection."""

    @abstractmethod
    async def close(self) -> None:
        """Commit what is queued, stop background tasks, release connections."""

    @abstractmethod
    async def append(
        self, events: Sequence[NewEvent], *, sequence: ProducerSequence | None = None
    ) -> list[int]:
        """Validate and append ``events`` atomically; return the offset of each, in order.

        With ``sequence``, the events are numbered by their producer (see
        :class:`~bridge.events.ProducerSequence`) and carry no idempotency keys.

        Raises :class:`~bridge.errors.InvalidEvent` (nothing written),
        :class:`~bridge.errors.ConcurrencyConflict` or :class:`~bridge.errors.SequenceGap`
        (nothing of this call written) or :class:`~bridge.errors.StoreUnavailable` (retry with
        the same idempotency keys or sequence).
        """

    @abstractmethod
    async def read(
        self,
        event_filter: EventFilter,
        *,
        after: int = 0,
        limit: int = 1000,
        until: int | None = None,
    ) -> ReadPage:
        """Committed events with ``after < offset <= until`` matching the filter, ascending."""

    @abstractmethod
    async def last_offset(self) -> int:
        """The highest committed offset in the database (0 for an empty log)."""

    @abstractmethod
    async def stream_version(self, tenant_id: str, stream: str) -> int:
        """How many events the stream has ever received (0 for an unknown stream)."""

    @abstractmethod
    async def apply_retention(
        self, rules: Sequence[RetentionRule], *, now: datetime | None = None
    ) -> dict[str, int]:
        """Delete what ``rules`` no longer keep; return the number deleted per topic."""

    @abstractmethod
    async def load_projection(self, name: str) -> ProjectionState | None:
        """The stored state of projection ``name``, or None if it never saved."""

    @abstractmethod
    async def save_projection(
        self, name: str, *, version: int, checkpoint: int, changes: Mapping[str, Any | None]
    ) -> None:
        """Store changed documents (None deletes) and the checkpoint in one transaction."""

    @abstractmethod
    async def reset_projection(self, name: str) -> None:
        """Drop a projection's documents and checkpoint, so it rebuilds from offset 0."""

    def subscribe(
        self, event_filter: EventFilter, *, after: int = 0, page_size: int = 500
    ) -> Subscription:
        """Events after ``after`` matching the filter: catch-up first, then live, in order.

        A subscription holds at most one page in memory: a consumer that falls behind simply
        reads older pages from the database, never an unbounded buffer.
        """
        return Subscription(self, event_filter, after=after, page_size=page_size)
