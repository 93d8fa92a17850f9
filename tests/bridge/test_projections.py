"""Projections: checkpoints stored with their state, and replay that rebuilds the same view."""

from __future__ import annotations

import asyncio

import pytest

from canopy.bridge import (
    ALL_TENANTS,
    Documents,
    EventFilter,
    Projection,
    ProjectionFailed,
    ProjectionRunner,
    RecordedEvent,
    Topic,
    open_store,
)
from canopy.bridge.sql import SqlEventStore

from .helpers import incident, tick


class TickCounts(Projection):
    """Ticks seen per execution, and the last tick number, across tenants."""

    name = "tick-counts"

    def event_filter(self) -> EventFilter:
        return EventFilter.of(ALL_TENANTS, types=["TickStarted"])

    def apply(self, documents: Documents, event: RecordedEvent) -> None:
        key = f"{event.tenant_id}:{event.stream}"
        current = documents.get(key, {"count": 0})
        documents.put(key, {"count": current["count"] + 1, "last": event.payload["tick"]})
        if event.payload["tick"] == 7:  # exercise deletions too
            documents.delete(key)


class TickCountsV2(TickCounts):
    version = 2


class Exploding(TickCounts):
    name = "exploding"

    def apply(self, documents: Documents, event: RecordedEvent) -> None:
        if event.payload["tick"] == 3:
            raise RuntimeError("boom")
        super().apply(documents, event)


async def test_catch_up_saves_documents_and_checkpoint_together(store: SqlEventStore) -> None:
    await store.append([tick("a", n) for n in range(1, 4)] + [incident(), tick("b", 1)])
    runner = ProjectionRunner(store, TickCounts(), page_size=2)
    await runner.load()
    assert await runner.catch_up() == 5
    stored = await store.load_projection("tick-counts")
    assert stored is not None
    assert stored.checkpoint == 5
    assert stored.documents == {
        "acme:execution/a": {"count": 3, "last": 3},
        "acme:execution/b": {"count": 1, "last": 1},
    }


async def test_a_restarted_runner_continues_from_its_checkpoint(store: SqlEventStore) -> None:
    await store.append([tick("a", 1), tick("a", 2)])
    first = ProjectionRunner(store, TickCounts())
    await first.load()
    await first.catch_up()
    await store.append([tick("a", 3)])
    second = ProjectionRunner(store, TickCounts())
    await second.load()
    assert second.checkpoint == 2
    await second.catch_up()
    assert second.documents.get("acme:execution/a") == {"count": 3, "last": 3}


async def test_replay_from_zero_rebuilds_an_identical_view(store: SqlEventStore) -> None:
    runner = ProjectionRunner(store, TickCounts(), page_size=7)
    live = asyncio.create_task(runner.run())

    async def produce(name: str) -> None:
        for number in range(1, 41):
            await store.append([tick(name, number % 13 + 1, tenant=f"t{number % 3}")])

    await asyncio.gather(*(produce(f"x{i}") for i in range(8)))
    await runner.wait_for(await store.last_offset())
    live.cancel()
    live_digest = runner.digest()

    reloaded = ProjectionRunner(store, TickCounts())
    await reloaded.load()
    assert reloaded.digest() == live_digest  # what was stored is what was computed

    rebuilt = ProjectionRunner(store, TickCounts(), page_size=1000)
    await rebuilt.rebuild()
    assert rebuilt.digest() == live_digest
    assert len(rebuilt.documents) > 0


async def test_a_new_projection_version_rebuilds_from_zero(store: SqlEventStore) -> None:
    await store.append([tick("a", 1), tick("a", 2)])
    old = ProjectionRunner(store, TickCounts())
    await old.load()
    await old.catch_up()
    new = ProjectionRunner(store, TickCountsV2())
    await new.load()
    assert new.checkpoint == 0
    assert len(new.documents) == 0
    await new.catch_up()
    assert new.documents.get("acme:execution/a") == {"count": 2, "last": 2}


async def test_a_failing_projection_stops_at_the_event_and_keeps_its_stored_state(
    store: SqlEventStore,
) -> None:
    await store.append([tick("a", 1), tick("a", 2)])
    runner = ProjectionRunner(store, Exploding(), page_size=100)
    await runner.load()
    await runner.catch_up()
    await store.append([tick("a", 3), tick("a", 4)])
    with pytest.raises(ProjectionFailed, match="offset 3") as raised:
        await runner.catch_up()
    assert raised.value.offset == 3
    assert runner.checkpoint == 2
    assert runner.documents.get("acme:execution/a") == {"count": 2, "last": 2}


async def test_documents_refuse_none() -> None:
    with pytest.raises(ValueError, match="delete"):
        Documents().put("k", None)


async def test_projection_state_survives_reopening(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.append([tick("a", 1)])
        runner = ProjectionRunner(store, TickCounts())
        await runner.load()
        await runner.catch_up()
    async with open_store(store_url) as store:
        runner = ProjectionRunner(store, TickCounts())
        await runner.load()
        assert (runner.checkpoint, runner.documents.get("acme:execution/a")) == (
            1,
            {"count": 1, "last": 1},
        )
        assert Topic.EXECUTION in {e.topic for e in (await store.read(EventFilter("acme"))).events}
