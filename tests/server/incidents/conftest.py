"""An evidence store on a fresh log of each kind (the ``store`` fixture: SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from canopy.bridge.sql import SqlEventStore
from canopy.server.incidents import Evidence, Frame, evidence_store
from canopy.server.incidents.signature import signature_of
from canopy.server.incidents.sqlstore import SqlEvidenceStore

from ..conftest import WAIT

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


async def run_app(app: Path, *args: str) -> str:
    """Run one of this folder's services once, as its own process with its real SDK; what it
    printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(app),
        *args,
        cwd=app.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 0, err.decode()
    return out.decode()


def line_of(app: Path, text: str) -> int:
    """The line of ``app`` that reads ``text``."""
    return app.read_text().splitlines().index(text) + 1
