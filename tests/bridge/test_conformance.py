"""The event-log contract, run once against every store (the ``store`` fixture is parametrized
over SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from canopy.bridge import (
    ALL_TENANTS,
    ConcurrencyConflict,
    EventFilter,
    IdempotencyConflict,
    InvalidArgument,
    InvalidEvent,
    InvalidFilter,
    NewEvent,
    ProducerSequence,
    SequenceGap,
    Topic,
    open_store,
)
from canopy.bridge.sql import SqlEventStore

from .helpers import blackboard, collect, event_with, incident, read_all, tick

# -- appending and ordering ------------------------------------------------------------------


async def test_offsets_are_contiguous_and_ordered_under_concurrent_producers(
    store: SqlEventStore,
) -> None:
    async def produce(name: str) -> list[int]:
        offsets = []
        for number in range(1, 31):
            offsets += await store.append([tick(name, number)])
        return offsets

    results = await asyncio.gather(*(produce(f"p{i}") for i in range(20)))
    every = sorted(o for offsets in results for o in offsets)
    assert every == list(range(1, 601))
    for offsets in results:  # each producer's own appends keep their order
        assert offsets == sorted(offsets)
    stored = [e async for e in read_all(store, EventFilter("acme"))]
    assert [e.offset for e in stored] == every
    versions = [e.stream_version for e in stored if e.stream == "execution/p3"]
    assert versions == list(range(1, 31))
    assert await store.last_offset() == 600
    assert await store.stream_version("acme", "execution/p3") == 30


async def test_an_append_call_is_atomic(store: SqlEventStore) -> None:
    await store.append([tick("a", 1)])
    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append([tick("b", 1), tick("a", 2, expected=0)])
    assert raised.value.index == 1
    assert raised.value.actual == 1
    assert await store.last_offset() == 1
    assert await store.stream_version("acme", "execution/b") == 0


async def test_event_time_defaults_to_the_store_clock_and_keeps_a_given_one(
    store: SqlEventStore,
) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    before = datetime.now(UTC)
    await store.append([tick("t", 1), event_with({"execution_id": "t", "tick": 2}, time=moment)])
    first, second = (await store.read(EventFilter("acme"))).events
    assert before - timedelta(seconds=1) <= first.time <= datetime.now(UTC)
    assert second.time == moment


# -- idempotency -----------------------------------------------------------------------------


async def test_a_repeated_idempotency_key_returns_the_original_offset(store: SqlEventStore) -> None:
    first = await store.append([tick("x", 1, key="k1"), tick("x", 2, key="k2")])
    again = await store.append([tick("x", 1, key="k1"), tick("x", 3, key="k3")])
    assert first == [1, 2]
    assert again == [1, 3]
    assert await store.last_offset() == 3
    assert await store.stream_version("acme", "execution/x") == 3


async def test_idempotency_keys_are_per_tenant(store: SqlEventStore) -> None:
    assert await store.append([tick(key="same", tenant="acme")]) == [1]
    assert await store.append([tick(key="same", tenant="globex")]) == [2]


async def test_concurrent_appends_with_one_key_write_once(store: SqlEventStore) -> None:
    results = await asyncio.gather(*(store.append([tick("c", 1, key="once")]) for _ in range(25)))
    assert {tuple(r) for r in results} == {(1,)}
    assert await store.last_offset() == 1


async def test_a_key_repeated_inside_one_call_writes_once(store: SqlEventStore) -> None:
    assert await store.append([tick(key="dup"), tick(key="dup")]) == [1, 1]


async def test_a_key_reused_by_a_different_event_is_a_conflict(store: SqlEventStore) -> None:
    assert await store.append([tick("x", 1, key="k1")]) == [1]
    cases = [
        (tick("x", 2, key="k1"), ["payload"]),
        (tick("y", 1, key="k1"), ["stream", "payload"]),
        (
            event_with(
                {"execution_id": "x", "tick": 1, "root_status": "SUCCESS", "duration_ms": 1.0},
                type_="TickCompleted",
                stream="execution/x",
                idempotency_key="k1",
            ),
            ["type", "payload"],
        ),
    ]
    for event, differs in cases:
        with pytest.raises(IdempotencyConflict) as raised:
            await store.append([tick("z", 1), event])
        conflict = raised.value
        assert (conflict.index, conflict.offset, conflict.key, conflict.differs) == (
            1,
            1,
            "k1",
            differs,
        )
    assert await store.last_offset() == 1  # the call is refused whole
    assert await store.stream_version("acme", "execution/z") == 0


async def test_a_key_reused_inside_one_call_by_a_different_event_is_a_conflict(
    store: SqlEventStore,
) -> None:
    with pytest.raises(IdempotencyConflict) as raised:
        await store.append([tick("x", 1, key="dup"), tick("x", 2, key="dup")])
    assert (raised.value.index, raised.value.differs) == (1, ["payload"])
    assert await store.last_offset() == 0


async def test_a_retry_is_the_same_event_whatever_the_order_of_its_payload_keys(
    store: SqlEventStore,
) -> None:
    first = event_with({"execution_id": "x", "tick": 1}, idempotency_key="k")
    again = event_with({"tick": 1, "execution_id": "x"}, idempotency_key="k")
    assert await store.append([first]) == [1]
    assert await store.append([again]) == [1]
    assert await store.last_offset() == 1


# -- optimistic concurrency ------------------------------------------------------------------


async def test_expected_version_guards_a_stream(store: SqlEventStore) -> None:
    assert await store.append([tick("s", 1, expected=0)]) == [1]
    assert await store.append([tick("s", 2, expected=1)]) == [2]
    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append([tick("s", 3, expected=1)])
    assert (raised.value.stream, raised.value.expected, raised.value.actual) == (
        "execution/s",
        1,
        2,
    )


async def test_a_conflict_fails_only_its_own_call_in_a_batch(store: SqlEventStore) -> None:
    outcomes = await asyncio.gather(
        *(store.append([tick("race", 1, expected=0)]) for _ in range(10)),
        *(store.append([tick(f"free{i}", 1)]) for i in range(10)),
        return_exceptions=True,
    )
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    assert len(conflicts) == 9
    assert sum(isinstance(o, list) for o in outcomes) == 11
    assert await store.last_offset() == 11


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        (event_with({"execution_id": "e1"}), "payload.tick", "'tick' is a required property"),
        (event_with({"execution_id": "e1", "tick": "one"}), "payload.tick", "not of type"),
        (event_with({"execution_id": "e1", "tick": 1, "extra": 1}), "payload.extra", "extra"),
        (event_with({}, type_="NoSuchType"), "type", "unknown event type"),
        (event_with({"execution_id": "e1", "tick": 1}, topic=Topic.TIMELINE), "topic", "belong"),
        (event_with({"execution_id": "e1", "tick": 1}, topic="debugging.nope"), "topic", ""),
        (event_with({"execution_id": "e1", "tick": 1}, tenant_id=""), "tenant_id", ""),
        (event_with({"execution_id": "e1", "tick": 1}, tenant_id="*"), "tenant_id", ""),
        (event_with({"execution_id": "e1", "tick": 1}, stream="no-slash"), "stream", ""),
        (
            event_with({"execution_id": "e1", "tick": 1}, expected_version=-1),
            "expected_version",
            "",
        ),
        (event_with({"execution_id": "e1", "tick": 1}, time=datetime(2026, 1, 1)), "time", "zone"),
    ],
)
async def test_invalid_events_are_refused_precisely_and_nothing_is_written(
    store: SqlEventStore, event: object, field: str, message: str
) -> None:
    await store.append([tick()])
    with pytest.raises(InvalidEvent) as raised:
        await store.append([tick(), event])  # type: ignore[list-item]
    assert raised.value.index == 1
    assert raised.value.field == field
    assert message in raised.value.message
    assert await store.last_offset() == 1


async def test_payloads_must_be_json_and_within_the_size_limit(store: SqlEventStore) -> None:
    with pytest.raises(InvalidEvent, match="JSON-serialisable") as raised:
        await store.append([blackboard(object())])
    assert raised.value.field == "payload"
    huge = "x" * (store.validator.max_payload_bytes + 1)
    with pytest.raises(InvalidEvent, match="over the limit"):
        await store.append([blackboard(huge)])
    assert await store.last_offset() == 0


async def test_64_bit_integers_are_kept_exactly(store: SqlEventStore) -> None:
    edges = [2**63 - 1, -(2**63), 2**53 + 1, -(2**53) - 1]
    await store.append([blackboard({"edges": edges})])
    (stored,) = (await store.read(EventFilter("acme"))).events
    assert stored.payload["new"] == {"edges": edges}
    assert all(type(number) is int for number in stored.payload["new"]["edges"])


@pytest.mark.parametrize("number", [2**63, 2**64, 10**30, -(2**63) - 1])
async def test_wider_integers_are_refused_where_they_are_never_altered(
    store: SqlEventStore, number: int
) -> None:
    with pytest.raises(InvalidEvent) as raised:
        await store.append([tick(), blackboard({"edges": [1, {"n": number}]})])
    assert (raised.value.index, raised.value.field) == (1, "payload.new.edges.1.n")
    assert raised.value.message == (
        f"integer {number} is outside the signed 64-bit range the log keeps exactly"
    )
    assert await store.last_offset() == 0


async def test_wire_form_events_are_parsed_with_precise_errors(store: SqlEventStore) -> None:
    good = tick().to_json()
    assert store.validator.parse([good])[0] == tick()
    with pytest.raises(InvalidEvent) as raised:
        store.validator.parse([good, {**good, "producer": {"name": "x"}}])
    assert (raised.value.index, raised.value.field) == (1, "producer.version")
    with pytest.raises(InvalidEvent, match="JSON object"):
        store.validator.parse(["not an object"])


# -- reading ---------------------------------------------------------------------------------


async def test_reads_filter_by_tenant_topic_stream_and_type(store: SqlEventStore) -> None:
    await store.append([tick("a", 1), tick("b", 1), incident("i1"), tick("a", 2, tenant="globex")])
    assert [e.offset for e in (await store.read(EventFilter("acme"))).events] == [1, 2, 3]
    assert [e.offset for e in (await store.read(EventFilter("globex"))).events] == [4]
    only_timeline = EventFilter.of("acme", topics=[Topic.TIMELINE])
    assert [e.type for e in (await store.read(only_timeline)).events] == ["IncidentDetected"]
    stream_b = EventFilter.of("acme", streams=["execution/b"])
    assert [e.offset for e in (await store.read(stream_b)).events] == [2]
    by_type = EventFilter.of(ALL_TENANTS, types=["TickStarted"])
    assert [e.offset for e in (await store.read(by_type)).events] == [1, 2, 4]


async def test_pages_report_how_far_they_scanned(store: SqlEventStore) -> None:
    await store.append([tick(str(i), 1) for i in range(5)] + [incident()])
    page = await store.read(EventFilter("acme"), after=0, limit=2)
    assert [e.offset for e in page.events] == [1, 2]
    assert page.scanned_to == 2
    page = await store.read(EventFilter.of("acme", topics=[Topic.TIMELINE]), after=0, limit=2)
    assert [e.offset for e in page.events] == [6]
    assert page.scanned_to == 6
    page = await store.read(EventFilter("acme"), after=1, until=3)
    assert [e.offset for e in page.events] == [2, 3]
    assert page.scanned_to == 3
    empty = await store.read(EventFilter("acme"), after=6)
    assert (empty.events, empty.scanned_to) == ([], 6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"after": -1}, "'after'"),
        ({"limit": 0}, "'limit'"),
        ({"limit": 10_001}, "'limit'"),
    ],
)
async def test_bad_read_arguments_are_refused(
    store: SqlEventStore, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(InvalidFilter, match=message):
        await store.read(EventFilter("acme"), **kwargs)


async def test_unknown_topics_and_missing_tenants_are_refused(store: SqlEventStore) -> None:
    with pytest.raises(InvalidFilter, match="unknown topic"):
        await store.read(EventFilter.of("acme", topics=["debugging.nope"]))
    with pytest.raises(ValueError, match="tenant_id"):
        EventFilter("")


async def test_no_read_path_returns_another_tenants_events(store: SqlEventStore) -> None:
    await store.append([tick("a", 1, tenant="acme"), incident(tenant="acme")])
    await store.append([tick("a", 1, tenant="globex")])
    everything_of_globex = [e async for e in read_all(store, EventFilter("globex"))]
    assert {e.tenant_id for e in everything_of_globex} == {"globex"}
    same_stream = EventFilter.of("globex", streams=["execution/a"], types=["TickStarted"])
    assert [e.tenant_id for e in (await store.read(same_stream)).events] == ["globex"]
    subscription = store.subscribe(EventFilter("globex"))
    live = asyncio.create_task(collect(subscription, 2))
    await store.append([tick("b", 1, tenant="acme"), tick("b", 1, tenant="globex")])
    received = await live
    assert [(e.offset, e.tenant_id) for e in received] == [(3, "globex"), (5, "globex")]


# -- subscriptions ---------------------------------------------------------------------------


async def test_subscription_delivers_catch_up_then_live_in_order(store: SqlEventStore) -> None:
    await store.append([tick("s", n) for n in range(1, 6)])
    subscription = store.subscribe(EventFilter("acme"), page_size=2)
    receiving = asyncio.create_task(collect(subscription, 12))
    for number in range(6, 13):
        await store.append([tick("s", number)])
    received = await receiving
    assert [e.offset for e in received] == list(range(1, 13))
    assert [e.payload["tick"] for e in received] == list(range(1, 13))
    assert subscription.position == 12


async def test_subscription_resumes_from_a_position(store: SqlEventStore) -> None:
    await store.append([tick("r", n) for n in range(1, 11)])
    first = store.subscribe(EventFilter("acme"))
    assert [e.offset for e in await collect(first, 4)] == [1, 2, 3, 4]
    resumed = store.subscribe(EventFilter("acme"), after=first.position)
    assert [e.offset for e in await collect(resumed, 6)] == list(range(5, 11))


async def test_subscription_filters_and_skips_what_it_does_not_want(store: SqlEventStore) -> None:
    subscription = store.subscribe(EventFilter.of("acme", topics=[Topic.TIMELINE]))
    receiving = asyncio.create_task(collect(subscription, 2))
    await store.append([tick("f", n) for n in range(1, 50)])
    await store.append([incident("i1")])
    await store.append([tick("f", 50), incident("i2")])
    received = await receiving
    assert [e.payload["incident_id"] for e in received] == ["i1", "i2"]
    assert subscription.position == 52


async def test_a_slow_subscriber_falls_back_to_reading_the_database(store: SqlEventStore) -> None:
    store.recent.capacity = 64
    subscription = store.subscribe(EventFilter("acme"), page_size=16)
    receiving = asyncio.create_task(collect(subscription, 1))
    await store.append([tick("slow", 1)])
    assert [e.offset for e in await receiving] == [1]
    for start in range(2, 1002, 100):  # far more than the window keeps while nobody reads
        await store.append([tick("slow", n) for n in range(start, start + 100)])
    assert not store.recent.covers(subscription.position)
    rest = await collect(subscription, 1000)
    assert [e.offset for e in rest] == list(range(2, 1002))


async def test_subscriptions_see_commits_of_another_store_on_the_same_log(
    store: SqlEventStore, store_url: str
) -> None:
    subscription = store.subscribe(EventFilter("acme"))
    receiving = asyncio.create_task(collect(subscription, 3))
    async with open_store(store_url) as other:
        for number in range(1, 4):
            await other.append([tick("elsewhere", number)])
    assert [e.offset for e in await receiving] == [1, 2, 3]


async def test_invalid_subscriptions_are_refused(store: SqlEventStore) -> None:
    with pytest.raises(InvalidFilter):
        store.subscribe(EventFilter("acme"), after=-5)
    with pytest.raises(InvalidFilter):
        store.subscribe(EventFilter("acme"), page_size=0)


# -- numbered producers (exactly once without a key per event) -------------------------------


def numbered(first: int, count: int, *, execution: str = "p") -> list[NewEvent]:
    return [tick(execution, n) for n in range(first, first + count)]


async def test_a_resent_numbered_call_answers_its_offsets_and_writes_nothing(
    store: SqlEventStore,
) -> None:
    assert await store.append(numbered(1, 3), sequence=ProducerSequence("pod:a", 1)) == [1, 2, 3]
    await store.append([incident()])
    assert await store.append(numbered(1, 3), sequence=ProducerSequence("pod:a", 1)) == [1, 2, 3]
    assert await store.append(numbered(2, 1), sequence=ProducerSequence("pod:a", 2)) == [2]
    assert await store.last_offset() == 4
    assert await store.stream_version("acme", "execution/p") == 3


async def test_an_overlapping_numbered_call_writes_only_its_new_events(
    store: SqlEventStore,
) -> None:
    assert await store.append(numbered(1, 3), sequence=ProducerSequence("pod:a", 1)) == [1, 2, 3]
    await store.append([incident()])
    overlapping = await store.append(numbered(2, 4), sequence=ProducerSequence("pod:a", 2))
    assert overlapping == [2, 3, 5, 6]
    found = (await store.read(EventFilter("acme", streams=("execution/p",)))).events
    assert [(e.offset, e.payload["tick"]) for e in found] == [
        (1, 1),
        (2, 2),
        (3, 3),
        (5, 4),
        (6, 5),
    ]
    # the resend of both calls, as one, answers every original offset
    assert await store.append(numbered(1, 5), sequence=ProducerSequence("pod:a", 1)) == [
        1,
        2,
        3,
        5,
        6,
    ]


async def test_a_resend_across_many_calls_answers_each_events_own_offset(
    store: SqlEventStore,
) -> None:
    offsets: list[int] = []
    for first in range(1, 11, 2):  # five calls of two events, another event between them
        offsets += await store.append(numbered(first, 2), sequence=ProducerSequence("pod:a", first))
        await store.append([incident()])
    assert offsets == [1, 2, 4, 5, 7, 8, 10, 11, 13, 14]
    # from the middle of the second call into the fourth, then past what is held
    resent = await store.append(numbered(4, 8), sequence=ProducerSequence("pod:a", 4))
    assert resent == [5, 7, 8, 10, 11, 13, 14, 16]
    assert await store.stream_version("acme", "execution/p") == 11


async def test_a_numbered_call_that_skips_is_refused_and_writes_nothing(
    store: SqlEventStore,
) -> None:
    await store.append(numbered(1, 2), sequence=ProducerSequence("pod:a", 1))
    with pytest.raises(SequenceGap, match="resend from 3") as refused:
        await store.append(numbered(5, 2), sequence=ProducerSequence("pod:a", 5))
    assert (refused.value.expected, refused.value.got) == (3, 5)
    assert await store.last_offset() == 2
    with pytest.raises(SequenceGap):
        await store.append(numbered(1, 1), sequence=ProducerSequence("pod:new", 2))


async def test_numbers_are_per_producer_and_per_tenant(store: SqlEventStore) -> None:
    await store.append(numbered(1, 2), sequence=ProducerSequence("pod:a", 1))
    assert await store.append(
        numbered(1, 1, execution="q"), sequence=ProducerSequence("pod:b", 1)
    ) == [3]
    other = [tick("p", 1, tenant="globex")]
    assert await store.append(other, sequence=ProducerSequence("pod:a", 1)) == [4]


async def test_one_numbered_call_sent_twice_at_once_is_written_once(store: SqlEventStore) -> None:
    sends = [store.append(numbered(1, 3), sequence=ProducerSequence("pod:a", 1)) for _ in range(4)]
    assert await asyncio.gather(*sends) == [[1, 2, 3]] * 4
    assert await store.last_offset() == 3


async def test_numbered_calls_are_refused_with_keys_or_bad_numbers(store: SqlEventStore) -> None:
    with pytest.raises(InvalidEvent, match="idempotency key"):
        await store.append([tick("p", 1, key="k")], sequence=ProducerSequence("pod:a", 1))
    with pytest.raises(InvalidArgument, match="starts at 1"):
        await store.append(numbered(1, 1), sequence=ProducerSequence("pod:a", 0))
    with pytest.raises(InvalidEvent, match="one tenant"):
        await store.append(
            [tick("p", 1), tick("p", 1, tenant="globex")], sequence=ProducerSequence("pod:a", 1)
        )
    assert await store.last_offset() == 0


# -- durability ------------------------------------------------------------------------------


async def test_a_producers_numbers_survive_reopening(store_url: str) -> None:
    async with open_store(store_url) as first:
        await first.append(numbered(1, 2), sequence=ProducerSequence("pod:a", 1))
    async with open_store(store_url) as second:
        assert await second.append(numbered(1, 3), sequence=ProducerSequence("pod:a", 1)) == [
            1,
            2,
            3,
        ]
        with pytest.raises(SequenceGap):
            await second.append(numbered(9, 1), sequence=ProducerSequence("pod:a", 9))


async def test_events_and_stream_versions_survive_reopening(store_url: str) -> None:
    async with open_store(store_url) as first:
        await first.append([tick("d", 1, key="k"), tick("d", 2)])
    async with open_store(store_url) as second:
        assert await second.last_offset() == 2
        assert await second.stream_version("acme", "execution/d") == 2
        assert await second.append([tick("d", 1, key="k")]) == [1]
        assert await second.append([tick("d", 3, expected=2)]) == [3]


async def test_appending_to_a_closed_store_fails_clearly(store_url: str) -> None:
    from canopy.bridge import StoreClosed

    store = open_store(store_url)
    async with store:
        pass
    with pytest.raises(StoreClosed):
        await store.append([tick()])


@pytest.mark.parametrize(
    "moment", ["2026-13-45T00:00:00Z", "2026-01-01T23:59:60Z", "2026-01-01 10:00:00Z"]
)
async def test_impossible_times_in_wire_events_are_refused_precisely(
    store: SqlEventStore, moment: str
) -> None:
    with pytest.raises(InvalidEvent) as raised:
        store.validator.parse([{**tick().to_json(), "time": moment}])
    assert (raised.value.index, raised.value.field) == (0, "time")


async def test_event_time_may_be_given_in_microseconds(store: SqlEventStore) -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    micros = int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    await store.append([event_with({"execution_id": "e1", "tick": 1}, time=micros)])
    (recorded,) = (await store.read(EventFilter("acme"))).events
    assert recorded.time == moment
    with pytest.raises(InvalidEvent, match="microseconds") as raised:
        await store.append([event_with({"execution_id": "e1", "tick": 1}, time="yesterday")])
    assert raised.value.field == "time"
