"""Retention per topic: by age and by events kept per stream; the timeline is never pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from canopy.bridge import ConfigurationError, EventFilter, RetentionRule, Topic, parse_retention
from canopy.bridge.sql import SqlEventStore

from .helpers import event_with, incident, read_all, tick


async def test_keep_last_prunes_each_stream_to_its_newest_events(store: SqlEventStore) -> None:
    await store.append([tick("a", n) for n in range(1, 11)] + [tick("b", n) for n in range(1, 4)])
    await store.append([incident()])
    deleted = await store.apply_retention([RetentionRule(Topic.EXECUTION, keep_last=5)])
    assert deleted == {Topic.EXECUTION: 5}
    left = [e async for e in read_all(store, EventFilter("acme"))]
    assert [e.payload.get("tick") for e in left if e.stream == "execution/a"] == [6, 7, 8, 9, 10]
    assert len([e for e in left if e.stream == "execution/b"]) == 3
    assert [e.type for e in left if e.topic == Topic.TIMELINE] == ["IncidentDetected"]
    # versions and offsets continue where they were
    assert await store.stream_version("acme", "execution/a") == 10
    assert await store.append([tick("a", 11, expected=10)]) == [15]


async def test_max_age_prunes_old_events_of_the_topic_only(store: SqlEventStore) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    old, recent = now - timedelta(days=10), now - timedelta(hours=1)
    await store.append(
        [
            event_with({"execution_id": "e1", "tick": 1}, time=old),
            event_with({"execution_id": "e1", "tick": 2}, time=recent),
        ]
    )
    await store.append([incident()])
    deleted = await store.apply_retention(
        [RetentionRule(Topic.EXECUTION, max_age=timedelta(days=7))], now=now
    )
    assert deleted == {Topic.EXECUTION: 1}
    left = [e.offset async for e in read_all(store, EventFilter("acme"))]
    assert left == [2, 3]


def test_the_timeline_is_never_pruned() -> None:
    with pytest.raises(ConfigurationError, match="never pruned"):
        RetentionRule(Topic.TIMELINE, keep_last=10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("debugging.execution", "give keep_last or max_age"),
        ("debugging.execution:keep=0", "keep_last must be >= 1"),
        ("debugging.execution:age=7w", "cannot read"),
        ("debugging.nope:keep=1", "unknown topic"),
        ("debugging.timeline:age=1d", "never pruned"),
    ],
)
def test_bad_retention_settings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_retention(text)


def test_retention_settings_are_parsed() -> None:
    rules = parse_retention("debugging.execution:keep=100,age=7d; debugging.internal:age=12h")
    assert rules == [
        RetentionRule(Topic.EXECUTION, keep_last=100, max_age=timedelta(days=7)),
        RetentionRule(Topic.INTERNAL, max_age=timedelta(hours=12)),
    ]


async def test_retention_inside_a_run_keeps_every_other_event_exactly(store: SqlEventStore) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    old, recent = now - timedelta(days=10), now - timedelta(hours=1)
    times = [old, recent, old, recent, recent, old]
    # one append of one stream: a single run, whose old events are not all at one end
    offsets = await store.append(
        [
            event_with({"execution_id": "e1", "tick": n}, time=moment, idempotency_key=f"k{n}")
            for n, moment in enumerate(times, start=1)
        ]
    )
    assert offsets == [1, 2, 3, 4, 5, 6]
    deleted = await store.apply_retention(
        [RetentionRule(Topic.EXECUTION, max_age=timedelta(days=7))], now=now
    )
    assert deleted == {Topic.EXECUTION: 3}
    left = [e async for e in read_all(store, EventFilter("acme"))]
    assert [(e.offset, e.stream_version, e.payload["tick"]) for e in left] == [
        (2, 2, 2),
        (4, 4, 4),
        (5, 5, 5),
    ]
    assert [e.idempotency_key for e in left] == ["k2", "k4", "k5"]
    assert [e.offset for e in (await store.read(EventFilter("acme"), after=4)).events] == [5]
    # a kept event's key still answers its offset; a pruned one's key is free again
    kept = event_with({"execution_id": "e1", "tick": 4}, time=recent, idempotency_key="k4")
    assert await store.append([kept]) == [4]
    again = event_with({"execution_id": "e1", "tick": 1}, time=recent, idempotency_key="k1")
    assert await store.append([again]) == [7]
