"""SQLAlchemy Core tables of the event log, shared by the SQLite and PostgreSQL stores.

These describe the schema at the newest migration; the migrations under ``migrations/versions``
are what create and upgrade real databases. Events are stored as runs (see :mod:`.runs`); the
idempotency keys of the events that carry one are kept beside them, by offset.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

# An offset key is INTEGER on SQLite, where an INTEGER PRIMARY KEY is the table's own rowid:
# one b-tree instead of a table plus an index.
OffsetKey = BigInteger().with_variant(Integer(), "sqlite")

runs = Table(
    "canopy_runs",
    metadata,
    Column("first_offset", OffsetKey, primary_key=True, autoincrement=False),
    Column("last_offset", BigInteger, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("stream", Text, nullable=False),
    Column("first_version", Integer, nullable=False),
    Column("time_min", BigInteger, nullable=False),
    Column("time_max", BigInteger, nullable=False),
    Column("types", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("positions", LargeBinary, nullable=False),
    Index("canopy_runs_tenant_offset", "tenant_id", "first_offset"),
    Index("canopy_runs_stream", "tenant_id", "stream", "first_offset"),
    Index("canopy_runs_topic_time", "topic", "time_min"),
)

idempotency = Table(
    "canopy_idempotency",
    metadata,
    Column("offset", OffsetKey, primary_key=True, autoincrement=False),
    Column("tenant_id", Text, nullable=False),
    Column("key", Text, nullable=False),
    Index("canopy_idempotency_key", "tenant_id", "key", unique=True),
)

streams = Table(
    "canopy_streams",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("stream", Text, primary_key=True),
    Column("version", Integer, nullable=False),
)

head = Table(
    "canopy_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_offset", BigInteger, nullable=False),
)

projections = Table(
    "canopy_projections",
    metadata,
    Column("name", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("checkpoint", BigInteger, nullable=False),
)

projection_documents = Table(
    "canopy_projection_documents",
    metadata,
    Column("projection", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

sequences = Table(
    "canopy_sequences",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("producer_id", Text, primary_key=True),
    Column("first_sequence", BigInteger, primary_key=True),
    Column("last_sequence", BigInteger, nullable=False),
    Column("first_offset", BigInteger, nullable=False),
)
"""One row per append call of a numbered producer: its events ``first_sequence`` through
``last_sequence`` hold consecutive offsets from ``first_offset``."""
