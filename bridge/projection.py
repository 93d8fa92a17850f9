"""Projections: views computed from the log, stored with the offset they have seen.

A projection is a pure function of the events it reads: ``apply`` may only look at the event and
the projection's own documents. Its documents and checkpoint are saved in one transaction, so a
crash never leaves a view that has applied an event without remembering it (or the reverse),
and replaying from offset 0 rebuilds exactly the same documents (see :meth:`digest`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from .errors import BridgeError
from .events import EventFilter, RecordedEvent
from .store import EventStore

__all__ = ["Documents", "Projection", "ProjectionFailed", "ProjectionRunner"]

log = logging.getLogger(__name__)


class ProjectionFailed(BridgeError):
    """``apply`` raised: the projection stops at that event rather than skip it, because a
    skipped event would make the view differ from its replay."""

    def __init__(self, name: str, offset: int, cause: BaseException) -> None:
        self.name = name
        self.offset = offset
        super().__init__(f"projection {name!r} failed on the event at offset {offset}: {cause!r}")


class Documents:
    """A projection's state: JSON documents by key, remembering which keys changed."""

    def __init__(self, documents: dict[str, Any] | None = None) -> None:
        self._documents: dict[str, Any] = documents or {}
        self._changed: dict[str, Any | None] = {}

    def get(self, key: str, default: Any = None) -> Any:
        """The document at ``key`` (treat it as read-only; :meth:`put` a new value instead)."""
        return self._documents.get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` at ``key``."""
        if value is None:
            raise ValueError("a document cannot be None; use delete()")
        self._documents[key] = value
        self._changed[key] = value

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        if self._documents.pop(key, None) is not None:
            self._changed[key] = None

    def __contains__(self, key: object) -> bool:
        return key in self._documents

    def __len__(self) -> int:
        return len(self._documents)

    def __iter__(self) -> Iterator[str]:
        return iter(self._documents)

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every ``(key, document)`` pair."""
        return iter(self._documents.items())

    def take_changes(self) -> dict[str, Any | None]:
        """The keys changed since the last call (None for deleted), forgetting them."""
        changes, self._changed = self._changed, {}
        return changes


class Projection(ABC):
    """Subclass with a unique ``name``; bump ``version`` when ``apply`` changes meaning, and the
    stored view is rebuilt from offset 0 on the next load."""

    name: ClassVar[str]
    version: ClassVar[int] = 1

    @abstractmethod
    def event_filter(self) -> EventFilter:
        """Which events the projection reads."""

    @abstractmethod
    def apply(self, documents: Documents, event: RecordedEvent) -> None:
        """Fold one event into the documents. Must be deterministic."""


class ProjectionRunner:
    """Keeps one projection up to date against a store."""

    def __init__(self, store: EventStore, projection: Projection, *, page_size: int = 1000) -> None:
        self.store = store
        self.projection = projection
        self.page_size = page_size
        self.documents = Documents()
        self.checkpoint = 0
        self._advanced = asyncio.Condition()

    async def load(self) -> None:
        """Take the stored state, or start empty (also when the projection's version changed)."""
        stored = await self.store.load_projection(self.projection.name)
        if stored is None or stored.version != self.projection.version:
            if stored is not None:
                log.info(
                    "projection %s: stored version %d, code version %d; rebuilding",
                    self.projection.name,
                    stored.version,
                    self.projection.version,
                )
                await self.store.reset_projection(self.projection.name)
            self.documents = Documents()
            self.checkpoint = 0
        else:
            self.documents = Documents(stored.documents)
            self.checkpoint = stored.checkpoint

    async def catch_up(self) -> int:
        """Apply every committed event past the checkpoint; return the new checkpoint."""
        event_filter = self.projection.event_filter()
        while True:
            page = await self.store.read(event_filter, after=self.checkpoint, limit=self.page_size)
            if page.scanned_to <= self.checkpoint:
                return self.checkpoint
            await self._apply(page.events, page.scanned_to)

    async def run(self) -> None:
        """Load, catch up, then follow live events until cancelled."""
        await self.load()
        await self.catch_up()
        subscription = self.store.subscribe(
            self.projection.event_filter(), after=self.checkpoint, page_size=self.page_size
        )
        while True:
            events = await subscription.next_page()
            await self._apply(events, subscription.position)

    async def rebuild(self) -> None:
        """Forget the stored view and replay the log from offset 0."""
        await self.store.reset_projection(self.projection.name)
        self.documents = Documents()
        self.checkpoint = 0
        await self.catch_up()

    async def wait_for(self, offset: int) -> None:
        """Return once the projection has applied ``offset``, the offset of an event it reads
        (read-your-writes after an append)."""
        async with self._advanced:
            await self._advanced.wait_for(lambda: self.checkpoint >= offset)

    def digest(self) -> str:
        """SHA-256 of the documents in canonical JSON: equal digests, equal views."""
        canonical = json.dumps(
            sorted(self.documents.items()), sort_keys=True, separators=(",", ":")
        ).encode()
        return hashlib.sha256(canonical).hexdigest()

    async def _apply(self, events: list[RecordedEvent], checkpoint: int) -> None:
        for event in events:
            try:
                self.projection.apply(self.documents, event)
            except Exception as exc:
                await self.load()  # drop the half-applied page: memory matches the store again
                raise ProjectionFailed(self.projection.name, event.offset, exc) from exc
        await self.store.save_projection(
            self.projection.name,
            version=self.projection.version,
            checkpoint=checkpoint,
            changes=self.documents.take_changes(),
        )
        async with self._advanced:
            self.checkpoint = checkpoint
            self._advanced.notify_all()
