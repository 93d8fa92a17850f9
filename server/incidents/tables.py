"""SQLAlchemy Core model of the evidence tables at the newest migration (the migration
``0004_evidence`` of the log's chain is what creates them in a real database)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, Table, Text

__all__ = ["evidence"]

metadata = MetaData()

evidence = Table(
    "canopy_evidence",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("release", Text, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("level", Text, nullable=False),
    Column("exception_type", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("frames", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("raw_size", Integer, nullable=False),
    Index("canopy_evidence_event", "tenant_id", "event_id", unique=True),
    Index("canopy_evidence_signature", "tenant_id", "service", "signature", "time_us"),
    Index("canopy_evidence_tenant_time", "tenant_id", "time_us"),
    Index("canopy_evidence_time", "time_us"),
)
"""One row per report; ``frames`` is a JSON array of frame objects."""
