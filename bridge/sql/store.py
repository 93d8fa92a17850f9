"""The SQL event store shared by SQLite and PostgreSQL; subclasses supply only what differs
(engines, the upsert construct, locks and cross-process notification).

Offsets are drawn from the single ``canopy_head`` row while the writing transaction holds it
locked (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL) and the row is
updated in the same transaction. Commits therefore happen in offset order, across processes, and
offsets stay contiguous: a reader that has seen N can never later find a new event at or below
N — the out-of-order-commit trap of sequences cannot occur.

All writes run on one writer thread holding one synchronous connection, so that a whole batch
transaction costs a single hop off the event loop (through the async driver each statement
costs one, ~0.35 ms on aiosqlite). Reads use the async engine's pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any, TypeVar

import orjson
from sqlalchemy import ColumnElement, Connection, Engine, delete, func, literal, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import (
    ConcurrencyConflict,
    ConfigurationError,
    IdempotencyConflict,
    InvalidArgument,
    InvalidEvent,
    InvalidFilter,
    SequenceGap,
    StoreClosed,
    StoreUnavailable,
)
from ..events import (
    ALL_TENANTS,
    TOPICS,
    EventFilter,
    NewEvent,
    Producer,
    ProducerSequence,
    RecordedEvent,
    datetime_to_us,
)
from ..retention import RetentionRule
from ..store import EventStore, ProjectionState, ReadPage
from ..subscription import Subscription
from ..validation import EventValidator
from ..writer import AppendCall, GroupCommitter, Outcome
from . import migrate
from .runs import MAX_RUN_EVENTS, EventRow, Run, decode_events, element_of, encode_run, run_rows
from .tables import (
    head,
    idempotency,
    projection_documents,
    projections,
    runs,
    sequences,
    streams,
)

__all__ = ["SqlEventStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_READ_LIMIT = 10_000
_RUN_COLUMNS = (
    runs.c.first_offset,
    runs.c.last_offset,
    runs.c.tenant_id,
    runs.c.topic,
    runs.c.stream,
    runs.c.first_version,
    runs.c.body,
    runs.c.positions,
)
_HEAD_SELECT = select(head.c.last_offset).where(head.c.id == 1)
_HEAD_LOCK = _HEAD_SELECT.with_for_update()


Keyed = tuple[int, str, str, str, str]
"""The event holding an idempotency key: offset, topic, stream, type and encoded payload (what
a reuse of the key must repeat to be the same event)."""

STREAM_CACHE_LIMIT = 100_000
_TRIM_PAGE = 64


@lru_cache(maxsize=1024)
def _producer(name: str, version: str) -> Producer:
    return Producer(name, version)


def _decode(row: EventRow) -> RecordedEvent:
    return RecordedEvent(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        orjson.loads(row[7]),
        _producer(row[8], row[9]),
        row[10],
    )


def _lookup_pairs(
    conn: Connection,
    tenant: ColumnElement[Any],
    name: ColumnElement[Any],
    pairs: Iterable[tuple[str, Any]],
    *values: ColumnElement[Any],
) -> dict[tuple[str, Any], tuple[Any, ...]]:
    """``values`` for each ``(tenant, name)`` pair that exists, by index.

    One query per tenant with ``name IN (...)``: SQLite ignores the index for a row-value
    ``(tenant, name) IN (VALUES ...)`` of more than one pair and scans the whole table, which
    made idempotent appends slower the longer the log grew.
    """
    by_tenant: dict[str, list[Any]] = {}
    for tenant_id, item in pairs:
        by_tenant.setdefault(tenant_id, []).append(item)
    found: dict[tuple[str, Any], tuple[Any, ...]] = {}
    for tenant_id, items in by_tenant.items():
        rows = conn.execute(select(name, *values).where(tenant == tenant_id, name.in_(items)))
        found.update(((tenant_id, row[0]), tuple(row[1:])) for row in rows)
    return found


def _differences(holder: Keyed, event: NewEvent, payload: str) -> list[str]:
    """What of ``event`` (whose encoded payload is ``payload``) differs from the event that
    holds its idempotency key. Payloads are compared as values: a retry may order keys anew."""
    _, topic, stream, type_, stored = holder
    differs = [
        name
        for name, mine, theirs in (
            ("topic", event.topic, topic),
            ("stream", event.stream, stream),
            ("type", event.type, type_),
        )
        if mine != theirs
    ]
    if payload != stored and orjson.loads(payload) != orjson.loads(stored):
        differs.append("payload")
    return differs


def _holder(conn: Connection, offset: int) -> Keyed:
    """The event at ``offset`` as an idempotency key's holder, decoding only that event."""
    first, topic, stream, body, positions = conn.execute(
        select(runs.c.first_offset, runs.c.topic, runs.c.stream, runs.c.body, runs.c.positions)
        .where(runs.c.first_offset <= offset)
        .order_by(runs.c.first_offset.desc())
        .limit(1)
    ).one()
    type_, _, payload, *_ = orjson.loads(element_of(body, positions, offset - first))
    return offset, topic, stream, type_, orjson.dumps(payload).decode()


def _check_numbered(events_: Sequence[NewEvent], sequence: ProducerSequence) -> None:
    """A numbered call names one tenant's producer and no keys: its numbers are the keys."""
    if sequence.first < 1:
        raise InvalidArgument(f"a producer's sequence starts at 1, not {sequence.first}")
    tenant_id = events_[0].tenant_id
    for index, event in enumerate(events_):
        if event.idempotency_key is not None:
            raise InvalidEvent(
                "an event numbered by its producer carries no idempotency key",
                field="idempotency_key",
                index=index,
            )
        if event.tenant_id != tenant_id:
            raise InvalidEvent(
                f"a numbered call is one tenant's ({tenant_id!r})", field="tenant_id", index=index
            )


def _runs_query(event_filter: EventFilter, after: int, bound: int, limit: int) -> Any:
    """The runs holding events ``after < offset <= bound`` of the filter, ascending. A run
    holding ``after + 1`` begins less than :data:`MAX_RUN_EVENTS` offsets before it, which
    lets the database seek by the primary key instead of testing every older run."""
    query = select(*_RUN_COLUMNS).where(
        runs.c.first_offset > after - MAX_RUN_EVENTS,
        runs.c.first_offset <= bound,
        runs.c.last_offset > after,
    )
    if event_filter.tenant_id != ALL_TENANTS:
        query = query.where(runs.c.tenant_id == event_filter.tenant_id)
    if event_filter.topics:
        query = query.where(runs.c.topic.in_(event_filter.topics))
    if event_filter.streams:
        query = query.where(runs.c.stream.in_(event_filter.streams))
    if event_filter.types:
        query = query.where(
            or_(
                *(
                    runs.c.types.contains(f" {type_} ", autoescape=True)
                    for type_ in event_filter.types
                )
            )
        )
    return query.order_by(runs.c.first_offset).limit(limit)


def _matching(event_filter: EventFilter, found: list[RecordedEvent]) -> list[RecordedEvent]:
    """A run's events of the filter's types (a run matched if any of its events did)."""
    if not event_filter.types:
        return found
    return [event for event in found if event.type in event_filter.types]


def _rewritten(body: bytes, positions: bytes, kept: list[tuple[int, RecordedEvent]]) -> list[Run]:
    """The runs made by the events of one run that retention keeps (``(index, event)``)."""
    elements = {event.offset: element_of(body, positions, index) for index, event in kept}
    rows: list[EventRow] = [
        (
            e.offset,
            e.tenant_id,
            e.topic,
            e.stream,
            e.stream_version,
            e.type,
            e.time_us,
            "",
            e.producer.name,
            e.producer.version,
            e.idempotency_key,
        )
        for _, e in kept
    ]
    return [encode_run(group, [elements[row[0]] for row in group]) for group in run_rows(rows)]


SequenceRow = tuple[str, str, int, int, int]
"""A numbered producer's call as stored: tenant, producer, first and last sequence numbers,
and the offset of the first."""


class _Sequences:
    """Where each numbered producer stands, for one batch transaction: what the log holds
    (read once per producer under the head lock) plus what the batch plans."""

    def __init__(self, conn: Connection, last: dict[tuple[str, str], int]) -> None:
        self._conn = conn
        self.last = last
        self.rows: list[SequenceRow] = []

    @staticmethod
    def producer(call: AppendCall) -> tuple[str, str]:
        assert call.sequence is not None
        return call.events[0].tenant_id, call.sequence.producer_id

    def held(self, call: AppendCall) -> list[int] | SequenceGap:
        """The offsets of the call's leading events that the log (or this batch) already
        holds; a gap refuses the call."""
        assert call.sequence is not None
        tenant_id, producer_id = key = self.producer(call)
        first, last = call.sequence.first, self.last[key]
        if first > last + 1:
            return SequenceGap(
                tenant_id=tenant_id, producer_id=producer_id, expected=last + 1, got=first
            )
        count = min(len(call.events), last - first + 1)
        return self._offsets_of(key, first, first + count - 1) if count else []

    def record(self, call: AppendCall, skipped: int, first_offset: int) -> None:
        """The call's new events (those after ``skipped``) are planned from ``first_offset``."""
        assert call.sequence is not None
        key = self.producer(call)
        first = call.sequence.first + skipped
        last = call.sequence.first + len(call.events) - 1
        self.rows.append((*key, first, last, first_offset))
        self.last[key] = last

    def _offsets_of(self, key: tuple[str, str], first: int, last: int) -> list[int]:
        """The offsets of the producer's events ``first`` through ``last``, all held: from the
        rows this batch plans, else from the stored rows that cover them, read in one query."""
        spans = [
            (start, end, offset)
            for tenant_id, producer_id, start, end, offset in self.rows
            if (tenant_id, producer_id) == key and start <= last and end >= first
        ]
        planned_from = min((start for start, _, _ in spans), default=last + 1)
        if first < planned_from:
            mine = (sequences.c.tenant_id == key[0], sequences.c.producer_id == key[1])
            # The row holding ``first`` starts at or before it; every later row up to ``last``
            # follows in the primary key's order: one range of the index, however many rows
            # the producer has.
            covering = (
                select(func.max(sequences.c.first_sequence))
                .where(*mine, sequences.c.first_sequence <= first)
                .scalar_subquery()
            )
            stored = self._conn.execute(
                select(
                    sequences.c.first_sequence, sequences.c.last_sequence, sequences.c.first_offset
                ).where(
                    *mine,
                    sequences.c.first_sequence >= covering,
                    sequences.c.first_sequence < planned_from,
                )
            )
            spans.extend((int(a), int(b), int(c)) for a, b, c in stored)
        offsets: dict[int, int] = {}
        for start, end, offset in spans:
            for number in range(max(start, first), min(end, last) + 1):
                offsets[number] = offset + number - start
        return [offsets[number] for number in range(first, last + 1)]


class _Plan:
    """What one batch transaction writes: accepted rows, each call's outcome, stream versions."""

    __slots__ = ("last", "outcomes", "rows", "sequences", "versions")

    def __init__(self, head_offset: int, sequences: _Sequences) -> None:
        self.last = head_offset
        self.outcomes: list[Outcome] = []
        self.rows: list[EventRow] = []
        self.versions: dict[tuple[str, str], int] = {}
        self.sequences = sequences

    def add(
        self,
        call: AppendCall,
        stored: dict[tuple[str, str], int],
        known: dict[tuple[str, str | None], Keyed],
        now_us: int,
    ) -> Outcome:
        """Place one call's events after what is planned so far, or refuse the whole call.
        An event whose idempotency key is held answers the holder's offset when it is the same
        event, and refuses the call when it is not (rather than dropping it unseen). A numbered
        producer's events the log already holds answer their offsets and are not written."""
        offsets: list[int] = []
        if call.sequence is not None:
            held = self.sequences.held(call)
            if isinstance(held, SequenceGap):
                return held
            offsets = held
        rows: list[EventRow] = []
        versions: dict[tuple[str, str], int] = {}
        keys: dict[tuple[str, str | None], Keyed] = {}
        last = self.last
        pairs = zip(call.events, call.payloads, strict=True)
        for index, (event, payload) in enumerate(pairs):
            if index < len(offsets):
                continue
            key = (event.tenant_id, event.idempotency_key)
            if event.idempotency_key is not None:
                holder = known.get(key) or keys.get(key)
                if holder is not None:
                    if differs := _differences(holder, event, payload):
                        return IdempotencyConflict(
                            tenant_id=event.tenant_id,
                            key=event.idempotency_key,
                            offset=holder[0],
                            differs=differs,
                            index=index,
                        )
                    offsets.append(holder[0])
                    continue
            stream = (event.tenant_id, event.stream)
            current = versions.get(stream) or self.versions.get(stream) or stored[stream]
            if event.expected_version is not None and event.expected_version != current:
                return ConcurrencyConflict(
                    tenant_id=event.tenant_id,
                    stream=event.stream,
                    expected=event.expected_version,
                    actual=current,
                    index=index,
                )
            last += 1
            versions[stream] = current + 1
            if event.idempotency_key is not None:
                keys[key] = (last, event.topic, event.stream, event.type, payload)
            offsets.append(last)
            time_us = event.time_us
            rows.append(
                (
                    last,
                    event.tenant_id,
                    event.topic,
                    event.stream,
                    current + 1,
                    event.type,
                    now_us if time_us is None else time_us,
                    payload,
                    event.producer.name,
                    event.producer.version,
                    event.idempotency_key,
                )
            )
        if call.sequence is not None and rows:
            self.sequences.record(call, len(call.events) - len(rows), rows[0][0])
        self.last = last
        self.rows.extend(rows)
        self.versions.update(versions)
        known.update(keys)
        return offsets


class SqlEventStore(EventStore):
    """Event log in a SQL database through SQLAlchemy (async reads, one writer thread)."""

    def __init__(
        self,
        url: str,
        *,
        validator: EventValidator | None = None,
        max_batch_events: int = 4096,
        max_queued_calls: int = 4096,
    ) -> None:
        super().__init__(validator=validator)
        self.url = url
        self._engine: AsyncEngine | None = None
        self._write_engine: Engine | None = None
        self._writer: Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._committer = GroupCommitter(
            self._write_batch, max_queued_calls=max_queued_calls, max_batch_events=max_batch_events
        )
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._stream_versions: dict[tuple[str, str], int] = {}
        self._sequences: dict[tuple[str, str], int] = {}
        # The last offset of the batch this process is committing: its own commit notice may
        # arrive before the batch is published to the live window, and must not send live
        # subscribers to the database for events about to be in memory.
        self._committing = 0
        self._last_written = -1
        self._background: list[asyncio.Task[None]] = []
        self._started = False

    # -- what a dialect supplies -------------------------------------------------------------

    @abstractmethod
    def _create_engine(self) -> AsyncEngine:
        """The async engine used for reads."""

    @abstractmethod
    def _create_write_engine(self) -> Engine:
        """The synchronous engine of the writer thread."""

    @abstractmethod
    def _upsert(self) -> Callable[..., Any]:
        """The dialect's ``insert`` construct that offers ``on_conflict_do_update``."""

    @abstractmethod
    def _insert_runs(
        self,
        conn: Connection,
        runs_: list[Run],
        keys: list[tuple[int, str, str]],
        numbered: list[SequenceRow],
    ) -> None:
        """Insert a batch's runs, its ``(offset, tenant, key)`` idempotency keys and its
        numbered producers' calls by the dialect's fastest bulk path."""

    @abstractmethod
    def _finish_batch(
        self, conn: Connection, versions: dict[tuple[str, str], int], last_offset: int
    ) -> None:
        """Record the batch's new stream versions and head offset (and tell other processes)."""

    @abstractmethod
    def _lock_for_migration(self, conn: Connection) -> None:
        """Serialise schema migrations between processes (inside the migration transaction)."""

    @abstractmethod
    async def _watch_other_writers(self) -> None:
        """Background task advancing :attr:`watch` for commits made by other processes."""

    async def _prepare(self) -> None:
        """Hook after migration, before background tasks start (default: nothing)."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._engine = self._create_engine()
        self._write_engine = self._create_write_engine()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="canopy-event-writer")
        try:
            await self._in_writer(self._migrate)
            self.watch.advance(await self.last_offset())
            await self._prepare()
        except BaseException:
            await self._release()
            raise
        self._committer.start()
        self._background.append(
            asyncio.create_task(self._watch_other_writers(), name="canopy-head-watch")
        )
        self._started = True

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._committer.close()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self._release()

    async def _release(self) -> None:
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_writer)
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._write_engine is not None:
            self._write_engine.dispose()
            self._write_engine = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def describe(self) -> str:
        """The database location without credentials, for logs and errors."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> AsyncEngine:
        """The async engine for reads (raises once the store is closed)."""
        if self._engine is None:
            raise StoreClosed("the event store is not started")
        return self._engine

    @property
    def queued_appends(self) -> int:
        """Append calls waiting for the writer."""
        return self._committer.queued

    # -- the writer thread -------------------------------------------------------------------

    async def _in_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on the writer thread inside one transaction."""
        if self._executor is None:
            raise StoreClosed("the event store is not started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._transact, fn, *args))

    def _transact(self, fn: Callable[..., T], *args: Any) -> T:
        with self._writing() as conn, conn.begin():
            return fn(conn, *args)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """The writer's connection; dropped after a failure so the next call reconnects."""
        if self._write_engine is None:
            raise StoreClosed("the event store is closed")
        try:
            if self._writer is None:
                self._writer = self._write_engine.connect().execution_options(canopy_write=True)
            yield self._writer
        except DBAPIError as exc:
            self._close_writer()
            raise StoreUnavailable(f"writing to the event log failed: {exc.orig}") from exc
        except BaseException:
            self._close_writer()
            raise

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except SQLAlchemyError:
                log.debug("writer connection already gone", exc_info=True)

    def _migrate(self, conn: Connection) -> None:
        self._lock_for_migration(conn)
        current, head_revision = migrate.current_revision(conn), migrate.head_revision()
        if current is not None and current not in migrate.known_revisions():
            raise ConfigurationError(
                f"the event log {self.describe()} was written by a newer release of Canopy"
                f" (schema revision {current}; this release knows up to {head_revision}):"
                " upgrade Canopy to open it"
            )
        if current not in (None, head_revision):
            log.info(
                "upgrading the event log %s from schema revision %s to %s",
                self.describe(),
                current,
                head_revision,
            )
        migrate.upgrade(conn)

    # -- appending ---------------------------------------------------------------------------

    async def append(
        self, events_: Sequence[NewEvent], *, sequence: ProducerSequence | None = None
    ) -> list[int]:
        if not events_:
            return []
        if sequence is not None:
            _check_numbered(events_, sequence)
        payloads = self.validator.encode(events_)
        return await self._committer.submit(events_, payloads, sequence)

    async def _write_batch(self, calls: list[AppendCall]) -> list[Outcome]:
        try:
            plan = await self._in_writer(self._append_rows, calls)
        except BaseException:
            self._stream_versions.clear()
            self._sequences.clear()
            self._committing = 0
            raise
        if plan.rows:
            # Committed: only now may the cache and the live window believe in these rows.
            self._remember_versions(plan)
            self._publish(plan.rows)
        self._committing = 0
        return plan.outcomes

    def _append_rows(self, conn: Connection, calls: list[AppendCall]) -> _Plan:
        plan = self._plan(conn, calls)
        if plan.rows:
            self._committing = plan.last
            keys = [(row[0], row[1], row[10]) for row in plan.rows if row[10] is not None]
            self._insert_runs(
                conn,
                [encode_run(group) for group in run_rows(plan.rows)],
                keys,
                plan.sequences.rows,
            )
            self._finish_batch(conn, plan.versions, plan.last)
        return plan

    def _remember_versions(self, plan: _Plan) -> None:
        if len(self._stream_versions) > STREAM_CACHE_LIMIT:
            self._stream_versions.clear()
        if len(self._sequences) > STREAM_CACHE_LIMIT:
            self._sequences.clear()
        self._stream_versions.update(plan.versions)
        self._sequences.update(plan.sequences.last)
        self._last_written = plan.last

    def _current_versions(
        self, conn: Connection, head_offset: int, wanted: set[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """Stream versions before this batch. The cache is trusted only while the head is
        still the offset this process last wrote: then nobody else has written since."""
        if head_offset != self._last_written:
            self._stream_versions.clear()
            self._sequences.clear()
        cached = self._stream_versions
        missing = [k for k in wanted if k not in cached]
        found: dict[tuple[str, str], int] = {}
        if missing:
            rows = _lookup_pairs(
                conn, streams.c.tenant_id, streams.c.stream, missing, streams.c.version
            )
            found = {key: rows[key][0] if key in rows else 0 for key in missing}
        return {k: cached[k] if k in cached else found[k] for k in wanted}

    def _plan(self, conn: Connection, calls: list[AppendCall]) -> _Plan:
        """Decide, under the head lock, which calls are written and at which offsets."""
        head_offset = conn.execute(_HEAD_LOCK).scalar_one()
        keys = {
            (e.tenant_id, e.idempotency_key) for c in calls for e in c.events if e.idempotency_key
        }
        known: dict[tuple[str, str | None], Keyed] = {}
        if keys:
            found = _lookup_pairs(
                conn, idempotency.c.tenant_id, idempotency.c.key, keys, idempotency.c.offset
            )
            known = {key: _holder(conn, row[0]) for key, row in found.items()}
        versions = self._current_versions(
            conn, head_offset, {(e.tenant_id, e.stream) for c in calls for e in c.events}
        )
        numbered = {_Sequences.producer(c) for c in calls if c.sequence is not None}
        plan = _Plan(head_offset, _Sequences(conn, self._producer_positions(conn, numbered)))
        now_us = datetime_to_us(datetime.now(UTC))
        for call in calls:
            outcome = plan.add(call, versions, known, now_us)
            plan.outcomes.append(outcome)
        return plan

    def _producer_positions(
        self, conn: Connection, producers: set[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """The last sequence number the log holds for each producer (0 for a new one); the
        cache is trusted as stream versions are, only while nobody else has written."""
        cached = self._sequences
        found: dict[tuple[str, str], int] = {}
        for key in producers:
            if key in cached:
                found[key] = cached[key]
                continue
            stored = conn.execute(
                select(sequences.c.last_sequence)
                .where(sequences.c.tenant_id == key[0], sequences.c.producer_id == key[1])
                .order_by(sequences.c.first_sequence.desc())
                .limit(1)
            ).scalar_one_or_none()
            found[key] = stored or 0
        return found

    def _publish(self, rows: list[EventRow]) -> None:
        """Make a committed batch visible to live subscribers of this process."""
        if len(self._subscriptions):
            self.recent.publish([_decode(row) for row in rows])
        else:
            self.recent.reset()
        self.watch.advance(rows[-1][0])

    # -- reading -----------------------------------------------------------------------------

    def subscribe(
        self, event_filter: EventFilter, *, after: int = 0, page_size: int = 500
    ) -> Subscription:
        subscription = super().subscribe(event_filter, after=after, page_size=page_size)
        self._subscriptions.add(subscription)
        return subscription

    async def read(
        self,
        event_filter: EventFilter,
        *,
        after: int = 0,
        limit: int = 1000,
        until: int | None = None,
    ) -> ReadPage:
        if after < 0:
            raise InvalidFilter(f"'after' must be an offset >= 0, not {after}")
        if not 1 <= limit <= MAX_READ_LIMIT:
            raise InvalidFilter(f"'limit' must be between 1 and {MAX_READ_LIMIT}, not {limit}")
        if unknown := set(event_filter.topics) - TOPICS:
            raise InvalidFilter(f"unknown topic(s): {', '.join(sorted(unknown))}")
        async with self._reading() as conn:
            bound = (await conn.execute(_HEAD_SELECT)).scalar_one()
            if until is not None:
                bound = min(bound, until)
            if bound <= after:
                return ReadPage([], after)
            found: list[RecordedEvent] = []
            position = after
            while True:
                result = await conn.execute(_runs_query(event_filter, position, bound, limit))
                page = result.all()
                for run in page:
                    found.extend(_matching(event_filter, decode_events(run, position, bound)))
                    if len(found) >= limit:
                        del found[limit:]
                        return ReadPage(found, found[-1].offset)
                if len(page) < limit:
                    return ReadPage(found, bound)
                # Every run of the page held fewer than ``limit`` events of this filter.
                position = min(page[-1][1], bound)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (one snapshot on SQLite); driver errors become StoreUnavailable."""
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise StoreUnavailable(f"reading the event log failed: {exc.orig}") from exc

    async def last_offset(self) -> int:
        async with self._reading() as conn:
            head: int = (await conn.execute(_HEAD_SELECT)).scalar_one()
            return head

    async def stream_version(self, tenant_id: str, stream: str) -> int:
        async with self._reading() as conn:
            found = await conn.execute(
                select(streams.c.version).where(
                    streams.c.tenant_id == tenant_id, streams.c.stream == stream
                )
            )
            return found.scalar_one_or_none() or 0

    # -- retention ---------------------------------------------------------------------------

    async def apply_retention(
        self, rules: Sequence[RetentionRule], *, now: datetime | None = None
    ) -> dict[str, int]:
        return await self._in_writer(self._prune, rules, now or datetime.now(UTC))

    def _prune(
        self, conn: Connection, rules: Sequence[RetentionRule], moment: datetime
    ) -> dict[str, int]:
        deleted: dict[str, int] = {}
        for rule in rules:
            count = 0
            if rule.max_age is not None:
                cutoff = datetime_to_us(moment - rule.max_age)
                old = select(*_RUN_COLUMNS, literal(cutoff)).where(
                    runs.c.topic == rule.topic, runs.c.time_min < cutoff
                )
                count += self._trim(conn, old, lambda event, limit: event.time_us < limit)
            if rule.keep_last is not None:
                newest = (
                    select(streams.c.version)
                    .where(
                        streams.c.tenant_id == runs.c.tenant_id,
                        streams.c.stream == runs.c.stream,
                    )
                    .scalar_subquery()
                )
                last_kept = newest - rule.keep_last
                behind = select(*_RUN_COLUMNS, last_kept).where(
                    runs.c.topic == rule.topic, runs.c.first_version <= last_kept
                )
                count += self._trim(
                    conn, behind, lambda event, limit: event.stream_version <= limit
                )
            deleted[rule.topic] = deleted.get(rule.topic, 0) + count
        return deleted

    def _trim(
        self, conn: Connection, candidates: Any, drops: Callable[[RecordedEvent, int], bool]
    ) -> int:
        """Delete the events ``drops`` picks from the runs ``candidates`` selects (the run
        columns, then the bound ``drops`` compares with), and their idempotency keys. Retention
        is exact per event: a run keeping some of its events is written anew as the runs those
        make, from their stored elements, so nothing kept is re-encoded."""
        removed = 0
        after = 0
        while page := conn.execute(
            candidates.where(runs.c.first_offset > after)
            .order_by(runs.c.first_offset)
            .limit(_TRIM_PAGE)
        ).all():
            after = page[-1][1]
            for *columns, bound in page:
                run = decode_events(columns, 0, columns[1])
                dropped = [event for event in run if drops(event, bound)]
                if not dropped:
                    continue
                removed += len(dropped)
                conn.execute(delete(runs).where(runs.c.first_offset == columns[0]))
                if keyed := [e.offset for e in dropped if e.idempotency_key is not None]:
                    conn.execute(delete(idempotency).where(idempotency.c.offset.in_(keyed)))
                if kept := [(i, e) for i, e in enumerate(run) if not drops(e, bound)]:
                    self._insert_runs(conn, _rewritten(columns[-2], columns[-1], kept), [], [])
        return removed

    # -- projections -------------------------------------------------------------------------

    async def load_projection(self, name: str) -> ProjectionState | None:
        async with self._reading() as conn:
            row = (
                await conn.execute(
                    select(projections.c.version, projections.c.checkpoint).where(
                        projections.c.name == name
                    )
                )
            ).first()
            if row is None:
                return None
            docs = await conn.execute(
                select(projection_documents.c.key, projection_documents.c.value).where(
                    projection_documents.c.projection == name
                )
            )
            return ProjectionState(row[0], row[1], {k: orjson.loads(v) for k, v in docs})

    async def save_projection(
        self, name: str, *, version: int, checkpoint: int, changes: Mapping[str, Any | None]
    ) -> None:
        await self._in_writer(self._save_projection, name, version, checkpoint, dict(changes))

    def _save_projection(
        self,
        conn: Connection,
        name: str,
        version: int,
        checkpoint: int,
        changes: dict[str, Any | None],
    ) -> None:
        upsert = self._upsert()
        state = upsert(projections).values(name=name, version=version, checkpoint=checkpoint)
        conn.execute(
            state.on_conflict_do_update(
                index_elements=[projections.c.name],
                set_={"version": version, "checkpoint": checkpoint},
            )
        )
        removed = [k for k, v in changes.items() if v is None]
        if removed:
            conn.execute(
                delete(projection_documents).where(
                    projection_documents.c.projection == name,
                    projection_documents.c.key.in_(removed),
                )
            )
        kept = [
            {"projection": name, "key": k, "value": json.dumps(v, sort_keys=True)}
            for k, v in changes.items()
            if v is not None
        ]
        if kept:
            doc = upsert(projection_documents)
            conn.execute(
                doc.on_conflict_do_update(
                    index_elements=[projection_documents.c.projection, projection_documents.c.key],
                    set_={"value": doc.excluded.value},
                ),
                kept,
            )

    async def reset_projection(self, name: str) -> None:
        await self._in_writer(self._reset_projection, name)

    @staticmethod
    def _reset_projection(conn: Connection, name: str) -> None:
        conn.execute(delete(projection_documents).where(projection_documents.c.projection == name))
        conn.execute(delete(projections).where(projections.c.name == name))
