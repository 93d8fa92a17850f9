"""The event log in PostgreSQL, for several servers sharing one log.

Appends lock the head row (``SELECT ... FOR UPDATE``) before drawing offsets, so concurrent
writers in different processes commit strictly in offset order. Each append transaction sends
``NOTIFY`` with its last offset; every store LISTENs, which is how a live subscriber hears of
commits made by other servers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, Table, create_engine, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..validation import EventValidator
from .runs import Run
from .store import SequenceRow, SqlEventStore
from .tables import idempotency, runs, sequences


def _copy(table: Table) -> str:
    return "COPY {} ({}) FROM STDIN".format(
        table.name, ", ".join(f'"{column.name}"' for column in table.columns)
    )


_COPY_RUNS = _copy(runs)
_COPY_KEYS = _copy(idempotency)
_COPY_SEQUENCES = _copy(sequences)
# Stream versions, head and NOTIFY in one round trip. The notification is delivered at commit,
# never for a rolled-back transaction.
_FINISH_BATCH = text(
    "WITH versions AS ("
    " INSERT INTO canopy_streams (tenant_id, stream, version)"
    " SELECT * FROM unnest(CAST(:tenants AS text[]), CAST(:streams AS text[]),"
    " CAST(:versions AS integer[]))"
    " ON CONFLICT (tenant_id, stream) DO UPDATE SET version = excluded.version),"
    " moved AS (UPDATE canopy_head SET last_offset = :last WHERE id = 1)"
    " SELECT pg_notify(:channel, CAST(:last AS text))"
)

__all__ = ["PostgresEventStore"]

log = logging.getLogger(__name__)


class PostgresEventStore(SqlEventStore):
    """Event log in PostgreSQL through psycopg 3 (async).

    ``url`` is a ``postgresql://`` URL; a ``search_path`` given in its ``options`` parameter
    selects the schema, and each schema is an independent log.
    """

    def __init__(
        self,
        url: str,
        *,
        validator: EventValidator | None = None,
        reconnect_delay: float = 0.5,
        **options: Any,
    ) -> None:
        parsed = make_url(url).set(drivername="postgresql+psycopg")
        super().__init__(
            parsed.render_as_string(hide_password=False), validator=validator, **options
        )
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._reconnect_delay = reconnect_delay
        self._channel = "canopy_events"

    def _create_engine(self) -> AsyncEngine:
        return create_async_engine(
            self.url,
            pool_size=5,
            max_overflow=5,
            pool_pre_ping=True,
            connect_args={"application_name": "canopy-reader"},
        )

    def _create_write_engine(self) -> Engine:
        return create_engine(
            self.url,
            pool_size=1,
            max_overflow=0,
            pool_pre_ping=True,
            connect_args={"application_name": "canopy-writer"},
        )

    def _upsert(self) -> Any:
        return insert

    def _insert_runs(
        self,
        conn: Connection,
        runs_: list[Run],
        keys: list[tuple[int, str, str]],
        numbered: list[SequenceRow],
    ) -> None:
        """COPY: the bulk path of PostgreSQL, several times cheaper than an executemany."""
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        with driver.cursor() as cursor:
            copies: list[tuple[str, Sequence[Sequence[Any]]]] = [
                (_COPY_RUNS, runs_),
                (_COPY_KEYS, keys),
                (_COPY_SEQUENCES, numbered),
            ]
            for statement, rows in copies:
                if rows:
                    with cursor.copy(statement) as copy:
                        for row in rows:
                            copy.write_row(row)

    def _finish_batch(
        self, conn: Connection, versions: dict[tuple[str, str], int], last_offset: int
    ) -> None:
        conn.execute(
            _FINISH_BATCH,
            {
                "tenants": [tenant for tenant, _ in versions],
                "streams": [stream for _, stream in versions],
                "versions": list(versions.values()),
                "last": last_offset,
                "channel": self._channel,
            },
        )

    async def _prepare(self) -> None:
        async with self._reading() as conn:
            schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
        digest = hashlib.sha1(schema.encode()).hexdigest()[:16]
        self._channel = f"canopy_events_{digest}"

    def _lock_for_migration(self, conn: Connection) -> None:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.canopy-migrate'))")
        )

    async def _watch_other_writers(self) -> None:
        """LISTEN for other processes' commits; reconnect (and re-read the head) after a drop."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name="canopy-listener"
                ) as conn:
                    await conn.execute(f'LISTEN "{self._channel}"')
                    self.watch.advance(await self.last_offset())
                    async for note in conn.notifies():
                        offset = int(note.payload)
                        if offset > self._committing:  # else our own batch, published next
                            self.watch.advance(offset)
            except (psycopg.Error, OSError) as exc:
                log.warning("event notifications lost (%s); reconnecting", exc)
                await asyncio.sleep(self._reconnect_delay)
