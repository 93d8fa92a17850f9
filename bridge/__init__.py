"""Canopy's shared, append-only, tenant-aware event log. Knows nothing of trees, debugging or
HTTP servers; the HTTP client that connects other processes to the server is
:mod:`bridge.client` (imported separately, so that using the log never loads an HTTP client)."""

from .errors import (
    BridgeError,
    CanopyError,
    ConcurrencyConflict,
    ConfigurationError,
    IdempotencyConflict,
    InvalidArgument,
    InvalidEvent,
    InvalidFilter,
    SequenceGap,
    StoreClosed,
    StoreUnavailable,
    error_class,
    error_codes,
)
from .events import (
    ALL_TENANTS,
    TOPICS,
    EventFilter,
    NewEvent,
    Producer,
    ProducerSequence,
    RecordedEvent,
    Topic,
)
from .projection import Documents, Projection, ProjectionFailed, ProjectionRunner
from .retention import RetentionRule, parse_retention
from .sql import PostgresEventStore, SQLiteEventStore, database_url, open_store
from .store import EventStore, ReadPage
from .subscription import Subscription

__all__ = [
    "ALL_TENANTS",
    "TOPICS",
    "BridgeError",
    "CanopyError",
    "ConcurrencyConflict",
    "ConfigurationError",
    "Documents",
    "EventFilter",
    "EventStore",
    "IdempotencyConflict",
    "InvalidArgument",
    "InvalidEvent",
    "InvalidFilter",
    "NewEvent",
    "PostgresEventStore",
    "Producer",
    "ProducerSequence",
    "Projection",
    "ProjectionFailed",
    "ProjectionRunner",
    "ReadPage",
    "RecordedEvent",
    "RetentionRule",
    "SQLiteEventStore",
    "SequenceGap",
    "StoreClosed",
    "StoreUnavailable",
    "Subscription",
    "Topic",
    "database_url",
    "error_class",
    "error_codes",
    "open_store",
    "parse_retention",
]
