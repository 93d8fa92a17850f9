"""SQLAlchemy Core tables of the event log, shared by the SQLite and PostgreSQL stores.

These describe the schema at the newest migration; the migrations under ``migrations/versions``
are what create and upgrade real databases.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, Table, Text

metadata = MetaData()

events = Table(
    "canopy_events",
    metadata,
    Column("offset", BigInteger, primary_key=True, autoincrement=False),
    Column("tenant_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("stream", Text, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("producer_name", Text, nullable=False),
    Column("producer_version", Text, nullable=False),
    Column("idempotency_key", Text, nullable=True),
    Index("canopy_events_tenant_offset", "tenant_id", "offset"),
    Index("canopy_events_stream", "tenant_id", "stream", "stream_version", unique=True),
    Index("canopy_events_topic_time", "topic", "time_us"),
    Index("canopy_events_idempotency", "tenant_id", "idempotency_key", unique=True),
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
