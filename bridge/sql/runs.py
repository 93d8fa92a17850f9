"""Runs: how the SQL stores keep events, as Kafka keeps record batches.

A run is one row holding consecutive events of one stream: consecutive global offsets and
consecutive stream versions, one tenant, one topic. A row per event cost six b-tree updates per
event; a row per run costs them once for up to :data:`MAX_RUN_EVENTS` events, which is what lets
one server take a hundred busy debug sessions.

The body is a JSON array with one element per event, ``[type, time_us, payload, producer name,
producer version, idempotency key]``; the payload is the validator's encoding, copied in byte
for byte, so a value is stored exactly as it was accepted. Offsets and versions are not in the
body: they are the run's first ones plus the event's position. ``positions`` holds where each
element starts in the body (little-endian unsigned 32-bit), so one event, or the events from
any offset on, are decoded without decoding what comes before them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, Final, NamedTuple

import orjson

from ..events import Producer, RecordedEvent

__all__ = [
    "MAX_RUN_EVENTS",
    "EventRow",
    "Run",
    "decode_events",
    "element_of",
    "encode_run",
    "run_rows",
]

MAX_RUN_EVENTS: Final = 1024
"""A run never holds more events than this, so the run holding an offset starts less than this
many offsets before it: range reads seek by the primary key."""

EventRow = tuple[int, str, str, str, int, str, int, str, str, str, str | None]
"""One event as the writer plans it: offset, tenant, topic, stream, stream version, type,
time (µs), encoded payload, producer name, producer version, idempotency key."""


class Run(NamedTuple):
    """One stored row, in the column order of ``canopy_runs``."""

    first_offset: int
    last_offset: int
    tenant_id: str
    topic: str
    stream: str
    first_version: int
    time_min: int
    time_max: int
    types: str
    body: bytes
    positions: bytes


def types_column(types: Sequence[str]) -> str:
    """The event types of a run, space-separated and space-framed, so a type filter is a
    substring test (``' Type '``) the database can do before anything is decoded."""
    return f" {' '.join(sorted(set(types)))} "


def _element(row: EventRow) -> bytes:
    return orjson.dumps([row[5], row[6], orjson.Fragment(row[7]), row[8], row[9], row[10]])


def assemble(elements: Sequence[bytes]) -> tuple[bytes, bytes]:
    """The body and positions of a run made of these encoded elements."""
    starts = []
    at = 1
    for element in elements:
        starts.append(at)
        at += len(element) + 1
    return b"[" + b",".join(elements) + b"]", struct.pack(f"<{len(starts)}I", *starts)


def encode_run(rows: Sequence[EventRow], elements: Sequence[bytes] | None = None) -> Run:
    """The run holding ``rows`` (consecutive events of one stream, see :func:`run_rows`);
    ``elements`` are their encoded elements when already at hand (a run being trimmed)."""
    first, last = rows[0], rows[-1]
    times = [row[6] for row in rows]
    body, positions = assemble(elements if elements is not None else [_element(r) for r in rows])
    return Run(
        first[0],
        last[0],
        first[1],
        first[2],
        first[3],
        first[4],
        min(times),
        max(times),
        types_column([row[5] for row in rows]),
        body,
        positions,
    )


def _continues(previous: EventRow, row: EventRow) -> bool:
    return (
        row[0] == previous[0] + 1
        and row[4] == previous[4] + 1
        and row[1] == previous[1]
        and row[2] == previous[2]
        and row[3] == previous[3]
    )


def run_rows(rows: Sequence[EventRow]) -> Iterator[list[EventRow]]:
    """Split rows (ascending offsets) into the groups that make runs: a group ends where the
    stream, the topic or the tenant changes, where offsets or versions skip, or at the cap."""
    group: list[EventRow] = []
    for row in rows:
        if group and (len(group) == MAX_RUN_EVENTS or not _continues(group[-1], row)):
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def _start(positions: bytes, index: int) -> int:
    start: int = struct.unpack_from("<I", positions, 4 * index)[0]
    return start


def element_of(body: bytes, positions: bytes, index: int) -> bytes:
    """The encoded element of the run's ``index``-th event, without decoding the others."""
    start = _start(positions, index)
    if 4 * (index + 1) < len(positions):
        return body[start : _start(positions, index + 1) - 1]
    return body[start:-1]


@lru_cache(maxsize=1024)
def _producer(name: str, version: str) -> Producer:
    return Producer(name, version)


def decode_events(stored: Sequence[Any], after: int, until: int) -> list[RecordedEvent]:
    """The events with ``after < offset <= until`` of a stored run, given as its columns
    ``first_offset, last_offset, tenant_id, topic, stream, first_version, body, positions``;
    only the wanted events are decoded."""
    first_offset, last_offset, tenant_id, topic, stream, first_version, body, positions = stored
    start, end = max(after + 1, first_offset), min(until, last_offset)
    if start > end:
        return []
    skip, stop = start - first_offset, end - first_offset + 1
    if skip == 0 and end == last_offset:
        items: list[Any] = orjson.loads(body)
    else:
        tail = _start(positions, stop) - 1 if end < last_offset else len(body) - 1
        items = orjson.loads(b"[" + body[_start(positions, skip) : tail] + b"]")
    version = first_version + skip
    return [
        RecordedEvent(
            start + i,
            tenant_id,
            topic,
            stream,
            version + i,
            item[0],
            item[1],
            item[2],
            _producer(item[3], item[4]),
            item[5],
        )
        for i, item in enumerate(items)
    ]
