"""An evidence store on a fresh log of each kind (the ``store`` fixture: SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from canopy.bridge.sql import SqlEventStore
from canopy.server.incidents import Evidence, Frame, evidence_store
from canopy.server.incidents.signature import signature_of
from canopy.server.incidents.sqlstore import SqlEvidenceStore

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

FRAMES = (
    Frame("app/main.py", "main", 10, True, "app.main", "run()"),
    Frame("site-packages/lib.py", "call", 99, False, "lib"),
    Frame("app/orders.py", "total", 42, True, "app.orders", "return price / count"),
)


def report(
    event_id: str,
    *,
    tenant: str = "acme",
    service: str = "shop",
    release: str = "1.0",
    time: datetime = START,
    level: str = "error",
    exception_type: str = "ZeroDivisionError",
    frames: Sequence[Frame] = FRAMES,
    **fields: Any,
) -> Evidence:
    """A report of a division by zero in ``app.orders.total``, varied by keyword."""
    message = fields.pop("message", "division by zero")
    return Evidence(
        tenant_id=tenant,
        service=service,
        environment=fields.pop("environment", "production"),
        release=release,
        time=time,
        level=level,
        exception_type=exception_type,
        message=message,
        frames=tuple(frames),
        signature=signature_of(exception_type, frames, message),
        event_id=event_id,
        raw=fields.pop("raw", b'{"event_id": "x"}'),
        raw_size=fields.pop("raw_size", 17),
    )


@pytest.fixture
def evidence(store: SqlEventStore) -> SqlEvidenceStore:
    return evidence_store(store.engine)
