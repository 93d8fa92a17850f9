"""The database failing under the store: appends fail with StoreUnavailable, nothing half-written
remains, and the store recovers by itself once the database is back."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest

from canopy.bridge import EventFilter, StoreUnavailable, open_store

from .helpers import collect, read_all, tick


async def test_a_locked_sqlite_file_fails_appends_clearly_then_recovers(sqlite_url: str) -> None:
    async with open_store(sqlite_url, busy_timeout_ms=50) as store:
        assert await store.append([tick("a", 1)]) == [1]
        blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.append([tick("a", 2)])
        blocker.execute("ROLLBACK")
        blocker.close()
        assert await store.append([tick("a", 2, expected=1)]) == [2]
        assert [e.offset async for e in read_all(store, EventFilter("acme"))] == [1, 2]


async def test_a_lost_postgres_connection_fails_one_append_then_recovers(
    postgres_url: str, postgres_server: str
) -> None:
    async with open_store(postgres_url) as store:
        assert await store.append([tick("a", 1)]) == [1]
        assert store._writer is not None
        writer_pid = store._writer.connection.driver_connection.info.backend_pid
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            (killed,) = admin.execute("SELECT pg_terminate_backend(%s)", (writer_pid,)).fetchone()
        assert killed
        with pytest.raises(StoreUnavailable):
            await store.append([tick("a", 2)])
        assert await store.append([tick("a", 2, expected=1)]) == [2]
        assert [e.offset async for e in read_all(store, EventFilter("acme"))] == [1, 2]


async def test_live_subscribers_survive_a_lost_notification_connection(
    postgres_url: str, postgres_server: str
) -> None:
    async with open_store(postgres_url) as store, open_store(postgres_url) as other:
        subscription = store.subscribe(EventFilter("acme"))
        await other.append([tick("n", 1)])
        assert [e.offset for e in await collect(subscription, 1)] == [1]
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'canopy-listener' AND datname = current_database()"
            )
        receiving = asyncio.create_task(collect(subscription, 2))
        await other.append([tick("n", 2)])
        await other.append([tick("n", 3)])
        assert [e.offset for e in await receiving] == [2, 3]
