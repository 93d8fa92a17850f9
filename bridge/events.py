"""The event envelope as typed values: what producers append and what readers receive.

Field meanings are those of ``schemas/new-event.schema.json`` and ``schemas/event.schema.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

__all__ = [
    "ALL_TENANTS",
    "TOPICS",
    "EventFilter",
    "NewEvent",
    "Producer",
    "RecordedEvent",
    "Topic",
    "datetime_from_us",
    "datetime_to_us",
]


class Topic:
    """The four topics of DESIGN.md; retention is configured per topic."""

    TIMELINE: Final = "debugging.timeline"
    EXECUTION: Final = "debugging.execution"
    INTERNAL: Final = "debugging.internal"
    EVALUATION: Final = "debugging.evaluation"


TOPICS: Final = frozenset({Topic.TIMELINE, Topic.EXECUTION, Topic.INTERNAL, Topic.EVALUATION})

ALL_TENANTS: Final = "*"
"""Tenant filter for platform processes (projections over every tenant). Never valid as a tenant
id, and never accepted from a client: protocol layers always filter by the caller's tenant."""


def datetime_to_us(moment: datetime) -> int:
    """Microseconds since the epoch, the stored form of event times (cheap to compare and prune)."""
    if moment.tzinfo is None:
        raise ValueError("event time must carry a timezone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def datetime_from_us(micros: int) -> datetime:
    """Inverse of :func:`datetime_to_us`, always in UTC (exact to the microsecond)."""
    return _EPOCH + timedelta(microseconds=micros)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Producer:
    """Which program wrote an event, so a bad event can be traced to its release."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event on its way into the log.

    ``expected_version`` (optional) is the number of events the stream must hold before this
    one; ``idempotency_key`` (optional) makes a retried append harmless. ``time`` is when the
    fact happened: a timezone-aware datetime, or microseconds since the epoch (what high-volume
    producers have at hand, with no conversion on either side); the store's clock when absent.
    """

    tenant_id: str
    topic: str
    stream: str
    type: str
    payload: Mapping[str, Any]
    producer: Producer
    idempotency_key: str | None = None
    time: datetime | int | None = None
    expected_version: int | None = None

    @property
    def time_us(self) -> int | None:
        """``time`` in microseconds since the epoch."""
        moment = self.time
        if moment is None or type(moment) is int:
            return moment
        return datetime_to_us(moment)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        """The wire form, as validated by ``new-event.schema.json``."""
        data: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "topic": self.topic,
            "stream": self.stream,
            "type": self.type,
            "payload": self.payload,
            "producer": {"name": self.producer.name, "version": self.producer.version},
        }
        if self.idempotency_key is not None:
            data["idempotency_key"] = self.idempotency_key
        if self.time is not None:
            moment = datetime_from_us(self.time) if isinstance(self.time, int) else self.time
            data["time"] = moment.isoformat()
        if self.expected_version is not None:
            data["expected_version"] = self.expected_version
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NewEvent:
        """Build from the wire form. Call :class:`bridge.validation.EventValidator` first: this
        assumes the shape is right."""
        producer = data["producer"]
        raw_time = data.get("time")
        return cls(
            tenant_id=data["tenant_id"],
            topic=data["topic"],
            stream=data["stream"],
            type=data["type"],
            payload=data["payload"],
            producer=Producer(producer["name"], producer["version"]),
            idempotency_key=data.get("idempotency_key"),
            time=datetime.fromisoformat(raw_time) if raw_time is not None else None,
            expected_version=data.get("expected_version"),
        )


class ProducerSequence(NamedTuple):
    """Exactly-once appends for a producer that numbers its events, as Kafka's idempotent
    producer does: the call's events are ``first``, ``first + 1``, ... of ``producer_id`` (per
    tenant). The log records the producer's numbers in the transaction that writes the events,
    so a resent call is answered with its original offsets and writes nothing, a call
    overlapping what is stored writes only its new events, and a call that skips numbers is
    refused (:class:`~bridge.errors.SequenceGap`). One row per call, not one key per event."""

    producer_id: str
    first: int


class RecordedEvent(NamedTuple):
    """An event as stored: its global ``offset`` and its ``stream_version`` were assigned at
    commit and never change. ``time_us`` is the stored form of :attr:`time` (microseconds since
    the epoch), kept as is because replay decodes many more events than anyone looks at the
    time of. A named tuple: immutable, and four times cheaper to build than a frozen
    dataclass, which counts when replay decodes hundreds of thousands a second."""

    offset: int
    tenant_id: str
    topic: str
    stream: str
    stream_version: int
    type: str
    time_us: int
    payload: dict[str, Any]
    producer: Producer
    idempotency_key: str | None = None

    @property
    def time(self) -> datetime:
        """When the fact happened, in UTC."""
        return datetime_from_us(self.time_us)

    def to_json(self) -> dict[str, Any]:
        """The wire form, as described by ``event.schema.json``."""
        return {
            "offset": self.offset,
            "tenant_id": self.tenant_id,
            "topic": self.topic,
            "stream": self.stream,
            "stream_version": self.stream_version,
            "type": self.type,
            "time": self.time.isoformat(),
            "payload": self.payload,
            "producer": {"name": self.producer.name, "version": self.producer.version},
            "idempotency_key": self.idempotency_key,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordedEvent:
        """Inverse of :meth:`to_json` (used by clients reading the HTTP API)."""
        producer = data["producer"]
        return cls(
            offset=data["offset"],
            tenant_id=data["tenant_id"],
            topic=data["topic"],
            stream=data["stream"],
            stream_version=data["stream_version"],
            type=data["type"],
            time_us=datetime_to_us(datetime.fromisoformat(data["time"])),
            payload=data["payload"],
            producer=Producer(producer["name"], producer["version"]),
            idempotency_key=data.get("idempotency_key"),
        )


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a read or a subscription wants. ``tenant_id`` is mandatory so that no read
    path can forget it; empty tuples mean "any"."""

    tenant_id: str
    topics: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    _topic_set: frozenset[str] = field(init=False, repr=False, compare=False)
    _stream_set: frozenset[str] = field(init=False, repr=False, compare=False)
    _type_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ValueError("an event filter needs a tenant_id (or ALL_TENANTS)")
        object.__setattr__(self, "_topic_set", frozenset(self.topics))
        object.__setattr__(self, "_stream_set", frozenset(self.streams))
        object.__setattr__(self, "_type_set", frozenset(self.types))

    @classmethod
    def of(
        cls,
        tenant_id: str,
        *,
        topics: Iterable[str] = (),
        streams: Iterable[str] = (),
        types: Iterable[str] = (),
    ) -> EventFilter:
        """Convenience constructor accepting any iterables."""
        return cls(tenant_id, tuple(topics), tuple(streams), tuple(types))

    def matches(self, event: RecordedEvent) -> bool:
        """The in-memory form of the filter, identical in meaning to the SQL one."""
        return (
            (self.tenant_id == ALL_TENANTS or event.tenant_id == self.tenant_id)
            and (not self._topic_set or event.topic in self._topic_set)
            and (not self._stream_set or event.stream in self._stream_set)
            and (not self._type_set or event.type in self._type_set)
        )
