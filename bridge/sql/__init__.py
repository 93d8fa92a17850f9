"""SQL implementations of the event log and the choice between them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .postgres import PostgresEventStore
from .sqlite import SQLiteEventStore
from .store import SqlEventStore

__all__ = ["PostgresEventStore", "SQLiteEventStore", "SqlEventStore", "database_url", "open_store"]


def database_url(data_dir: str | Path = ".canopy") -> str:
    """``CANOPY_DATABASE_URL`` when set, else the embedded SQLite file under ``data_dir``."""
    return os.environ.get("CANOPY_DATABASE_URL") or f"sqlite:///{Path(data_dir) / 'events.db'}"


def open_store(url: str, **options: Any) -> SqlEventStore:
    """An (unstarted) store for ``url``: ``sqlite:///path`` or ``postgresql://...``."""
    scheme = url.partition(":")[0].partition("+")[0].lower()
    if scheme == "sqlite":
        return SQLiteEventStore.from_url(url, **options)
    if scheme in {"postgresql", "postgres"}:
        return PostgresEventStore(url, **options)
    raise ConfigurationError(
        f"unsupported database URL {url.split('@')[-1]!r}: use sqlite:///path or postgresql://..."
    )
