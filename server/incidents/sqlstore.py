"""The evidence store in the event log's database, SQLite or PostgreSQL.

It works on the engine of a started :class:`~canopy.bridge.sql.SqlEventStore`: the tables come
with the log's migrations, and the engine already carries what each database needs (WAL and
lock waits on SQLite, pre-ping on PostgreSQL). Aggregates are computed by the database with
integer time buckets (``time_us // width``), which both dialects do the same way on non-negative
times. The dialects differ only in the insert that skips a retried report and in how a write
transaction begins.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson
from sqlalchemy import ColumnElement, Row, and_, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from canopy.bridge import ConfigurationError, InvalidArgument, StoreUnavailable
from canopy.bridge.events import datetime_from_us, datetime_to_us

from .evidence import (
    ALL_REPORTS,
    ERROR_LEVELS,
    ErrorRate,
    Evidence,
    EvidenceStore,
    FirstSeen,
    Frame,
    Frequency,
    Scope,
    StoredEvidence,
)
from .tables import evidence

__all__ = ["PostgresEvidenceStore", "SQLiteEvidenceStore", "SqlEvidenceStore", "evidence_store"]

MAX_LIMIT = 10_000


def _row(item: Evidence) -> dict[str, Any]:
    return {
        "tenant_id": item.tenant_id,
        "event_id": item.event_id,
        "service": item.service,
        "environment": item.environment,
        "release": item.release,
        "time_us": datetime_to_us(item.time),
        "level": item.level,
        "exception_type": item.exception_type,
        "message": item.message,
        "signature": item.signature,
        "frames": orjson.dumps([frame.to_json() for frame in item.frames]).decode(),
        "raw": item.raw,
        "raw_size": item.raw_size,
    }


def _stored(row: Row[Any]) -> StoredEvidence:
    frames = tuple(Frame.from_json(frame) for frame in orjson.loads(row.frames))
    return StoredEvidence(
        row.id,
        Evidence(
            tenant_id=row.tenant_id,
            service=row.service,
            environment=row.environment,
            release=row.release,
            time=datetime_from_us(row.time_us),
            level=row.level,
            exception_type=row.exception_type,
            message=row.message,
            frames=frames,
            signature=row.signature,
            event_id=row.event_id,
            raw=bytes(row.raw),
            raw_size=row.raw_size,
        ),
    )


def _width(bucket: timedelta) -> int:
    width = datetime_to_us(datetime(1970, 1, 1, tzinfo=UTC) + bucket)
    if width < 1_000_000:
        raise InvalidArgument(f"a time bucket must be at least one second, not {bucket}")
    return width


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
    return limit


def _where(tenant_id: str, scope: Scope, signature: str | None = None) -> ColumnElement[bool]:
    """The tenant's reports, narrowed: every query starts here, so none crosses tenants."""
    conditions = [evidence.c.tenant_id == tenant_id]
    if scope.service is not None:
        conditions.append(evidence.c.service == scope.service)
    if signature is not None:
        conditions.append(evidence.c.signature == signature)
    if scope.since is not None:
        conditions.append(evidence.c.time_us >= datetime_to_us(scope.since))
    if scope.until is not None:
        conditions.append(evidence.c.time_us < datetime_to_us(scope.until))
    return and_(*conditions)


class SqlEvidenceStore(EvidenceStore):
    """Evidence in the tables of the log's database, through the log's async engine."""

    write_options: ClassVar[dict[str, Any]] = {}
    """Execution options of a write transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @abstractmethod
    def _insert(self) -> Callable[..., Any]:
        """The dialect's ``insert`` construct, which offers ``on_conflict_do_nothing``."""

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                if write:
                    conn = await conn.execution_options(**self.write_options)
                async with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise StoreUnavailable(f"the evidence store failed: {exc.orig}") from exc

    async def record(self, items: Sequence[Evidence]) -> list[bool]:
        statement = (
            self._insert()(evidence)
            .on_conflict_do_nothing(index_elements=["tenant_id", "event_id"])
            .returning(evidence.c.id)
        )
        kept = []
        async with self._transaction(write=True) as conn:
            for item in items:
                found = await conn.execute(statement, _row(item))
                kept.append(found.first() is not None)
        return kept

    async def reports(
        self,
        tenant_id: str,
        *,
        service: str | None = None,
        signature: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[StoredEvidence]:
        query = (
            select(evidence)
            .where(_where(tenant_id, Scope(service), signature), evidence.c.id > after)
            .order_by(evidence.c.id)
            .limit(_limit(limit))
        )
        async with self._transaction(write=False) as conn:
            return [_stored(row) for row in await conn.execute(query)]

    async def frequency(
        self, tenant_id: str, bucket: timedelta, scope: Scope = ALL_REPORTS
    ) -> list[Frequency]:
        width = _width(bucket)
        start = (evidence.c.time_us // width * width).label("start")
        query = (
            select(evidence.c.service, evidence.c.signature, start, func.count().label("n"))
            .where(_where(tenant_id, scope))
            .group_by(evidence.c.service, evidence.c.signature, start)
            .order_by(start, evidence.c.service, evidence.c.signature)
            .limit(_limit(scope.limit))
        )
        async with self._transaction(write=False) as conn:
            rows = await conn.execute(query)
            return [Frequency(r.service, r.signature, datetime_from_us(r.start), r.n) for r in rows]

    async def first_seen(self, tenant_id: str, scope: Scope = ALL_REPORTS) -> list[FirstSeen]:
        first = func.min(evidence.c.time_us).label("first")
        groups = (evidence.c.service, evidence.c.signature, evidence.c.release)
        query = (
            select(
                *groups,
                func.min(evidence.c.exception_type).label("exception_type"),
                first,
                func.max(evidence.c.time_us).label("last"),
                func.count().label("n"),
            )
            .where(_where(tenant_id, scope))
            .group_by(*groups)
            .order_by(first, *groups)
            .limit(_limit(scope.limit))
        )
        async with self._transaction(write=False) as conn:
            return [
                FirstSeen(
                    r.service,
                    r.signature,
                    r.release,
                    r.exception_type,
                    datetime_from_us(r.first),
                    datetime_from_us(r.last),
                    r.n,
                )
                for r in await conn.execute(query)
            ]

    async def error_rate(
        self, tenant_id: str, bucket: timedelta, scope: Scope = ALL_REPORTS
    ) -> list[ErrorRate]:
        width = _width(bucket)
        start = (evidence.c.time_us // width * width).label("start")
        is_error = case((evidence.c.level.in_(sorted(ERROR_LEVELS)), 1), else_=0)
        query = (
            select(
                evidence.c.service,
                start,
                func.sum(is_error).label("errors"),
                func.count().label("n"),
            )
            .where(_where(tenant_id, scope))
            .group_by(evidence.c.service, start)
            .order_by(start, evidence.c.service)
            .limit(_limit(scope.limit))
        )
        async with self._transaction(write=False) as conn:
            return [
                ErrorRate(r.service, datetime_from_us(r.start), int(r.errors), r.n)
                for r in await conn.execute(query)
            ]

    async def delete_older_than(self, age: timedelta, *, now: datetime | None = None) -> int:
        cutoff = datetime_to_us((now or datetime.now(UTC)) - age)
        async with self._transaction(write=True) as conn:
            done = await conn.execute(delete(evidence).where(evidence.c.time_us < cutoff))
            return done.rowcount


class SQLiteEvidenceStore(SqlEvidenceStore):
    """Evidence in the log's SQLite file. A write begins ``IMMEDIATE`` (the log's engine does
    so for connections marked ``canopy_write``): it takes the file's lock before reading, so
    it waits its turn behind the log's writer instead of failing as a deadlock."""

    write_options: ClassVar[dict[str, Any]] = {"canopy_write": True}

    def _insert(self) -> Callable[..., Any]:
        return sqlite.insert


class PostgresEvidenceStore(SqlEvidenceStore):
    """Evidence in the log's PostgreSQL schema."""

    def _insert(self) -> Callable[..., Any]:
        return postgresql.insert


def evidence_store(engine: AsyncEngine) -> SqlEvidenceStore:
    """The evidence store for the database behind ``engine`` (a started log's engine)."""
    if engine.dialect.name == "sqlite":
        return SQLiteEvidenceStore(engine)
    if engine.dialect.name == "postgresql":
        return PostgresEvidenceStore(engine)
    raise ConfigurationError(f"no evidence store for a {engine.dialect.name} database")
