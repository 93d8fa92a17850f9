"""The embedded default: the whole log in one SQLite file (WAL), through aiosqlite.

aiosqlite runs each connection on its own thread, so throughput comes from group commit, not
from concurrency. Writes begin with ``BEGIN IMMEDIATE`` so a writer takes the database lock
before it reads the head, which is what serialises offsets between processes sharing the file.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import ConfigurationError, StoreUnavailable
from ..validation import EventValidator
from .runs import Run
from .store import SequenceRow, SqlEventStore
from .tables import idempotency, runs, sequences, streams

WAL_ATTEMPTS: Final = 40
_DIALECT = sqlite_dialect()
_INSERT_RUNS = str(runs.insert().compile(dialect=_DIALECT))
_INSERT_KEYS = str(idempotency.insert().compile(dialect=_DIALECT))
_INSERT_SEQUENCES = str(sequences.insert().compile(dialect=_DIALECT))
_UPDATE_HEAD = "UPDATE canopy_head SET last_offset = ? WHERE id = 1"
_upsert = insert(streams)
_UPSERT_STREAMS = str(
    _upsert.on_conflict_do_update(
        index_elements=[streams.c.tenant_id, streams.c.stream],
        set_={"version": _upsert.excluded.version},
    ).compile(dialect=_DIALECT)
)

__all__ = ["SQLiteEventStore"]

log = logging.getLogger(__name__)


def _ensure_wal(cursor: Any) -> None:
    """Switch a file to WAL (a lasting property of the file, so only its first connections
    switch). The switch needs the file to itself, and SQLite may refuse it as "locked" without
    waiting while another connection opens the same new file: retry briefly."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            (mode,) = cursor.fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.005 * (attempt + 1))
            continue
        if str(mode).lower() == "wal":
            return
    raise sqlite3.OperationalError("the database file cannot be switched to WAL mode")


class SQLiteEventStore(SqlEventStore):
    """Event log in a SQLite file.

    ``synchronous`` is SQLite's pragma: ``NORMAL`` (default) keeps every acknowledged append
    across a crash of the process; ``FULL`` also across a power loss, at one fsync per batch.
    ``poll_interval`` is how often, while someone waits for live events, the head row is read
    to notice commits made by other processes sharing the file.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        validator: EventValidator | None = None,
        synchronous: str = "NORMAL",
        poll_interval: float = 0.01,
        busy_timeout_ms: int = 10_000,
        **options: Any,
    ) -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigurationError(
                f"sqlite synchronous must be NORMAL or FULL, not {synchronous}"
            )
        self.path = Path(path)
        super().__init__(f"sqlite+aiosqlite:///{self.path}", validator=validator, **options)
        self._synchronous = synchronous.upper()
        self._poll_interval = poll_interval
        self._busy_timeout_ms = busy_timeout_ms

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteEventStore:
        """``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
        parsed = make_url(url)
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError(
                f"{url!r}: the event log needs a SQLite file, e.g. sqlite:///.canopy/events.db"
            )
        return cls(parsed.database, **options)

    def describe(self) -> str:
        return str(self.path)

    def _create_engine(self) -> AsyncEngine:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(self.url, pool_size=5, max_overflow=5)
        self._configure(engine.sync_engine)
        return engine

    def _create_write_engine(self) -> Engine:
        engine = create_engine(f"sqlite:///{self.path}", pool_size=1, max_overflow=0)
        self._configure(engine)
        return engine

    def _configure(self, engine: Engine) -> None:
        """Lock waits, WAL and durability on every connection; BEGIN worded by us, IMMEDIATE
        for writes (the pysqlite/aiosqlite recipe for SQLite transactions under SQLAlchemy)."""
        busy_timeout = f"PRAGMA busy_timeout={self._busy_timeout_ms}"
        synchronous = f"PRAGMA synchronous={self._synchronous}"

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(busy_timeout)
            _ensure_wal(cursor)
            cursor.execute(synchronous)
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            writes = conn.get_execution_options().get("canopy_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    def _upsert(self) -> Any:
        return insert

    def _insert_runs(
        self,
        conn: Connection,
        runs_: list[Run],
        keys: list[tuple[int, str, str]],
        numbered: list[SequenceRow],
    ) -> None:
        # Plain tuples straight to the driver's executemany: no per-row processing on top.
        conn.exec_driver_sql(_INSERT_RUNS, runs_)
        if keys:
            conn.exec_driver_sql(_INSERT_KEYS, keys)
        if numbered:
            conn.exec_driver_sql(_INSERT_SEQUENCES, numbered)

    def _finish_batch(
        self, conn: Connection, versions: dict[tuple[str, str], int], last_offset: int
    ) -> None:
        conn.exec_driver_sql(_UPSERT_STREAMS, [(t, s, v) for (t, s), v in versions.items()])
        conn.exec_driver_sql(_UPDATE_HEAD, (last_offset,))

    def _lock_for_migration(self, conn: Connection) -> None:
        """Nothing more to do: the migration transaction began IMMEDIATE, holding the lock."""

    async def _watch_other_writers(self) -> None:
        """Detect other processes' commits while anyone waits: ``PRAGMA data_version`` (a
        read of SQLite's shared memory, microseconds, on a connection of its own) says when
        any other connection committed, and only then is the head row read."""
        probe = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            seen = None
            while True:
                await self.watch.someone_waits()
                try:
                    version = probe.execute("PRAGMA data_version").fetchone()[0]
                    if version != seen:
                        self.watch.advance(await self.last_offset())
                        seen = version
                except (StoreUnavailable, sqlite3.Error):
                    log.warning("polling the event log head failed", exc_info=True)
                await asyncio.sleep(self._poll_interval)
        finally:
            probe.close()
