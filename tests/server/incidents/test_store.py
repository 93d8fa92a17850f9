"""The evidence store's contract, run against the log's database of each kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from canopy.bridge import InvalidArgument
from canopy.bridge.sql import SqlEventStore
from canopy.server.config import Settings
from canopy.server.incidents import ErrorRate, Frame, Frequency, Scope, evidence_store
from canopy.server.incidents.sqlstore import (
    PostgresEvidenceStore,
    SqlEvidenceStore,
    SQLiteEvidenceStore,
)

from ..conftest import eventually, serving
from .conftest import FRAMES, START, report

HOUR = timedelta(hours=1)


async def test_a_report_is_kept_whole_and_read_back(evidence: SqlEvidenceStore) -> None:
    kept = report("a" * 32, raw=b'{"big": "' + b"x" * 10 + b'"}', raw_size=5000)
    assert await evidence.record([kept]) == [True]
    [stored] = await evidence.reports("acme")
    assert stored.evidence == kept
    assert stored.evidence.frames[2] == Frame(
        "app/orders.py", "total", 42, True, "app.orders", "return price / count"
    )


async def test_the_dialect_decides_the_implementation(evidence: SqlEvidenceStore) -> None:
    dialect = evidence.engine.dialect.name
    expected = SQLiteEvidenceStore if dialect == "sqlite" else PostgresEvidenceStore
    assert type(evidence) is expected


async def test_a_retried_report_is_kept_once(evidence: SqlEvidenceStore) -> None:
    assert await evidence.record([report("1" * 32), report("2" * 32)]) == [True, True]
    assert await evidence.record([report("1" * 32), report("3" * 32)]) == [False, True]
    assert [s.evidence.event_id for s in await evidence.reports("acme")] == [
        "1" * 32,
        "2" * 32,
        "3" * 32,
    ]
    # Another tenant's report may carry the same event id: it is its own.
    assert await evidence.record([report("1" * 32, tenant="globex")]) == [True]


async def test_reports_are_filtered_and_paged(evidence: SqlEvidenceStore) -> None:
    other = (Frame("app/cart.py", "add", 3, True, "app.cart"),)
    await evidence.record(
        [
            report("01" * 16),
            report("02" * 16, service="billing"),
            report("03" * 16, exception_type="KeyError", frames=other),
            report("04" * 16),
        ]
    )
    signature = report("x").signature
    shop = await evidence.reports("acme", service="shop", signature=signature)
    assert [s.evidence.event_id for s in shop] == ["01" * 16, "04" * 16]
    first = await evidence.reports("acme", limit=2)
    rest = await evidence.reports("acme", after=first[-1].id)
    assert [s.evidence.event_id for s in first + rest] == [f"0{n}" * 16 for n in range(1, 5)]
    with pytest.raises(InvalidArgument, match="limit"):
        await evidence.reports("acme", limit=0)


async def test_one_tenant_never_sees_another(evidence: SqlEvidenceStore) -> None:
    await evidence.record([report("a" * 32), report("b" * 32, tenant="globex")])
    assert [s.evidence.tenant_id for s in await evidence.reports("acme")] == ["acme"]
    assert [f.count for f in await evidence.frequency("globex", HOUR)] == [1]
    assert [f.release for f in await evidence.first_seen("globex")] == ["1.0"]
    assert [r.total for r in await evidence.error_rate("globex", HOUR)] == [1]
    assert await evidence.reports("initech") == []


async def test_frequency_counts_per_signature_and_bucket(evidence: SqlEvidenceStore) -> None:
    keyed = (Frame("app/cart.py", "add", 3, True, "app.cart"),)
    times = [START, START + timedelta(minutes=59), START + HOUR, START + 3 * HOUR]
    await evidence.record([report(f"{n:032x}", time=t) for n, t in enumerate(times)])
    await evidence.record([report("f" * 32, exception_type="KeyError", frames=keyed)])
    division, key = report("x").signature, report("y", exception_type="KeyError", frames=keyed)
    found = await evidence.frequency("acme", HOUR)
    assert found == sorted(
        [
            Frequency("shop", division, START, 2),
            Frequency("shop", key.signature, START, 1),
            Frequency("shop", division, START + HOUR, 1),
            Frequency("shop", division, START + 3 * HOUR, 1),
        ],
        key=lambda f: (f.bucket, f.service, f.signature),
    )
    window = await evidence.frequency(
        "acme", HOUR, Scope(since=START + HOUR, until=START + 2 * HOUR, service="shop")
    )
    assert window == [Frequency("shop", division, START + HOUR, 1)]
    with pytest.raises(InvalidArgument, match="at least one second"):
        await evidence.frequency("acme", timedelta(milliseconds=10))


async def test_first_seen_tells_a_new_signature_of_a_release(evidence: SqlEvidenceStore) -> None:
    await evidence.record(
        [
            report("1" * 32, release="1.0", time=START),
            report("2" * 32, release="1.0", time=START + HOUR),
            report("3" * 32, release="1.1", time=START + 2 * HOUR),
        ]
    )
    seen = await evidence.first_seen("acme", Scope(service="shop"))
    assert [(s.release, s.first_seen, s.last_seen, s.count) for s in seen] == [
        ("1.0", START, START + HOUR, 2),
        ("1.1", START + 2 * HOUR, START + 2 * HOUR, 1),
    ]
    assert {s.exception_type for s in seen} == {"ZeroDivisionError"}


async def test_error_rate_counts_errors_among_reports(evidence: SqlEvidenceStore) -> None:
    await evidence.record(
        [
            report("1" * 32, level="error"),
            report("2" * 32, level="warning"),
            report("3" * 32, level="fatal", time=START + HOUR),
            report("4" * 32, level="info", service="billing"),
        ]
    )
    assert await evidence.error_rate("acme", HOUR) == [
        ErrorRate("billing", START, 0, 1),
        ErrorRate("shop", START, 1, 2),
        ErrorRate("shop", START + HOUR, 1, 1),
    ]


async def test_retention_deletes_what_is_older_than_the_age(evidence: SqlEvidenceStore) -> None:
    await evidence.record(
        [
            report("1" * 32, time=START - timedelta(days=40)),
            report("2" * 32, time=START - timedelta(days=31), tenant="globex"),
            report("3" * 32, time=START - timedelta(days=2)),
        ]
    )
    assert await evidence.delete_older_than(timedelta(days=30), now=START) == 2
    assert [s.evidence.event_id for s in await evidence.reports("acme")] == ["3" * 32]
    assert await evidence.reports("globex") == []
    assert await evidence.delete_older_than(timedelta(days=30), now=START) == 0


def test_frames_travel_as_json() -> None:
    assert [Frame.from_json(frame.to_json()) for frame in FRAMES] == list(FRAMES)


async def test_the_server_prunes_old_evidence(store: SqlEventStore, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    evidence = evidence_store(store.engine)
    await evidence.record(
        [report("1" * 32, time=now - timedelta(days=40)), report("2" * 32, time=now)]
    )
    settings = Settings(
        port=0, data_dir=tmp_path / ".canopy", pod_spare=False, evidence_retention_days=30
    )
    async with serving(settings, store):

        async def pruned() -> bool:
            return [s.evidence.event_id for s in await evidence.reports("acme")] == ["2" * 32]

        await eventually(pruned, "evidence older than 30 days deleted")
