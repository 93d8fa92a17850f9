"""Versioned migrations: an older database is upgraded in place, and concurrent starts migrate
once."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import create_engine, insert

from canopy.bridge import EventFilter, ProjectionRunner, open_store
from canopy.bridge.sql import migrate
from canopy.bridge.sql.tables import events, head

from .helpers import tick
from .test_projections import TickCounts


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
