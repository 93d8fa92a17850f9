"""Versioned migrations: an older database is upgraded in place, concurrent starts migrate
once, and a database of a newer release is refused."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, insert

from canopy.bridge import (
    ConfigurationError,
    Documents,
    EventFilter,
    IdempotencyConflict,
    NewEvent,
    Producer,
    ProjectionRunner,
    RecordedEvent,
    open_store,
)
from canopy.bridge.sql import migrate
from canopy.bridge.sql.runs import MAX_RUN_EVENTS
from canopy.bridge.sql.tables import head

from .helpers import PRODUCER, read_all, tick
from .test_projections import TickCounts

# The events table as revisions 0001 and 0002 wrote it: one row per event.
events = sa.table(
    "canopy_events",
    *(
        sa.column(name)
        for name in (
            "offset",
            "tenant_id",
            "topic",
            "stream",
            "stream_version",
            "type",
            "time_us",
            "payload",
            "producer_name",
            "producer_version",
            "idempotency_key",
        )
    ),
)


def sync_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def create_revision_0001_with_one_event(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        migrate.upgrade(conn, "0001")
        conn.execute(
            insert(events).values(
                offset=1,
                tenant_id="acme",
                topic="debugging.execution",
                stream="execution/old",
                stream_version=1,
                type="TickStarted",
                time_us=1_700_000_000_000_000,
                payload='{"execution_id":"old","tick":1}',
                producer_name="release-0.0",
                producer_version="0.0",
                idempotency_key="from-the-past",
            )
        )
        conn.execute(head.update().values(last_offset=1))
        assert migrate.current_revision(conn) == "0001"
    engine.dispose()


def revision_of(url: str) -> str | None:
    engine = create_engine(sync_url(url))
    with engine.connect() as conn:
        revision = migrate.current_revision(conn)
    engine.dispose()
    return revision


async def test_an_older_database_is_upgraded_keeping_its_events(store_url: str) -> None:
    create_revision_0001_with_one_event(store_url)
    async with open_store(store_url) as store:
        assert revision_of(store_url) == migrate.head_revision()
        (old,) = (await store.read(EventFilter("acme"))).events
        assert (old.offset, old.producer.name, old.payload["tick"]) == (1, "release-0.0", 1)
        assert await store.append([tick("new", 1), tick("old", 1, key="from-the-past")]) == [2, 1]
        runner = ProjectionRunner(store, TickCounts())  # a table that 0001 did not have
        await runner.load()
        await runner.catch_up()
        assert runner.documents.get("acme:execution/old") == {"count": 1, "last": 1}


async def test_stores_starting_together_migrate_once(store_url: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        stores = await asyncio.gather(
            *(stack.enter_async_context(open_store(store_url)) for _ in range(8))
        )
        offsets = await asyncio.gather(
            *(s.append([tick(f"s{i}", 1)]) for i, s in enumerate(stores))
        )
        assert sorted(o for batch in offsets for o in batch) == list(range(1, 9))
    assert revision_of(store_url) == migrate.head_revision()


def row_events(count: int) -> list[dict[str, Any]]:
    """``count`` events as rows of revision 0002: three interleaved streams of two tenants, one
    stream longer than a run may be, payloads whose text a re-encoding would change (spacing,
    key order), and an idempotency key on every fifth."""
    rows: list[dict[str, Any]] = []
    versions: dict[tuple[str, str], int] = {}
    for offset in range(1, count + 1):
        tenant = "acme" if offset % 7 else "globex"
        stream = "execution/long" if offset < MAX_RUN_EVENTS + 200 else f"execution/s{offset % 3}"
        version = versions[tenant, stream] = versions.get((tenant, stream), 0) + 1
        execution = stream.removeprefix("execution/")
        payload = f'{{"tick": {version},  "execution_id": "{execution}"}}'
        rows.append(
            {
                "offset": offset,
                "tenant_id": tenant,
                "topic": "debugging.execution",
                "stream": stream,
                "stream_version": version,
                "type": "TickStarted",
                "time_us": 1_700_000_000_000_000 + offset,
                "payload": payload,
                "producer_name": "release-0.0",
                "producer_version": "0.0",
                "idempotency_key": f"k{offset}" if offset % 5 == 0 else None,
            }
        )
    return rows


def create_revision_0002_with(url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        migrate.upgrade(conn, "0002")
        conn.execute(insert(events), rows)
        conn.execute(head.update().values(last_offset=len(rows)))
        conn.execute(
            sa.text(
                "INSERT INTO canopy_streams (tenant_id, stream, version)"
                " SELECT tenant_id, stream, max(stream_version) FROM canopy_events"
                " GROUP BY tenant_id, stream"
            )
        )
    engine.dispose()


async def test_a_row_log_becomes_runs_with_every_event_exact(store_url: str) -> None:
    rows = row_events(3000)
    create_revision_0002_with(store_url, rows)
    async with open_store(store_url) as store:
        found = [e async for e in read_all(store, EventFilter("*"))]
        assert [e.offset for e in found] == list(range(1, 3001))
        for event, row in zip(found, rows, strict=True):
            assert (
                event.tenant_id,
                event.stream,
                event.stream_version,
                event.time_us,
                event.idempotency_key,
            ) == (
                row["tenant_id"],
                row["stream"],
                row["stream_version"],
                row["time_us"],
                row["idempotency_key"],
            )
            assert event.payload == orjson.loads(row["payload"])
        # a read starting inside a run decodes from the right event
        page = await store.read(EventFilter("acme", streams=("execution/long",)), after=1100)
        assert (page.events[0].offset, page.events[0].stream_version) == (
            1101,
            next(r["stream_version"] for r in rows if r["offset"] == 1101),
        )
        # keys still answer their first offsets, and a different event under one conflicts
        held = rows[9]
        retry = NewEvent(
            "acme",
            held["topic"],
            held["stream"],
            held["type"],
            orjson.loads(held["payload"]),
            PRODUCER,
            idempotency_key="k10",
        )
        assert await store.append([retry]) == [10]
        with pytest.raises(IdempotencyConflict):
            await store.append([tick("s1", 9, key="k10")])
        assert await store.append([tick("new", 1, key="k3001")]) == [3001]
        assert await store.stream_version("acme", "execution/long") == len(
            [r for r in rows if r["stream"] == "execution/long" and r["tenant_id"] == "acme"]
        )


async def test_projections_rebuilt_after_the_upgrade_have_the_same_digest(store_url: str) -> None:
    rows = row_events(1500)
    create_revision_0002_with(store_url, rows)
    # the projection over the rows as they were, decoded one by one as revision 0002 read them
    projection, before = TickCounts(), Documents()
    for row in rows:
        producer = Producer(row["producer_name"], row["producer_version"])
        fields = {**row, "payload": orjson.loads(row["payload"]), "producer": producer}
        del fields["producer_name"], fields["producer_version"]
        projection.apply(before, RecordedEvent(**fields))
    async with open_store(store_url) as store:
        runner = ProjectionRunner(store, TickCounts())
        await runner.load()
        await runner.catch_up()
        assert dict(runner.documents.items()) == dict(before.items())
        reference = ProjectionRunner(store, TickCounts())
        reference.documents = before
        assert runner.digest() == reference.digest()


def stamp_revision(url: str, revision: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        migrate.upgrade(conn)
        conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '{revision}'"))
    engine.dispose()


async def test_a_log_written_by_a_newer_release_is_refused(store_url: str) -> None:
    stamp_revision(store_url, "0999")
    with pytest.raises(ConfigurationError, match=r"newer release of Canopy.*0999"):
        async with open_store(store_url):
            pass
