"""Events stored as runs: one row per stretch of consecutive events of one stream; and the
numbered producers' sequences.

Every event of ``canopy_events`` is copied, byte for byte in its payload, into runs (see
``canopy.bridge.sql.runs``) with the same offsets, versions, times, producers and keys; the keys
are indexed in ``canopy_idempotency``. The copy goes in pages, so a large log never sits in
memory whole.

Revision ID: 0003
Revises: 0002
"""

import contextlib
from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from canopy.bridge.sql.runs import EventRow, decode_events, encode_run, run_rows

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PAGE = 20_000
OffsetKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

events = sa.table(
    "canopy_events",
    sa.column("offset", sa.BigInteger),
    sa.column("tenant_id", sa.Text),
    sa.column("topic", sa.Text),
    sa.column("stream", sa.Text),
    sa.column("stream_version", sa.Integer),
    sa.column("type", sa.Text),
    sa.column("time_us", sa.BigInteger),
    sa.column("payload", sa.Text),
    sa.column("producer_name", sa.Text),
    sa.column("producer_version", sa.Text),
    sa.column("idempotency_key", sa.Text),
)


def _create_runs() -> tuple[sa.Table, sa.Table]:
    runs = op.create_table(
        "canopy_runs",
        sa.Column("first_offset", OffsetKey, primary_key=True, autoincrement=False),
        sa.Column("last_offset", sa.BigInteger, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("first_version", sa.Integer, nullable=False),
        sa.Column("time_min", sa.BigInteger, nullable=False),
        sa.Column("time_max", sa.BigInteger, nullable=False),
        sa.Column("types", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("positions", sa.LargeBinary, nullable=False),
    )
    op.create_index("canopy_runs_tenant_offset", "canopy_runs", ["tenant_id", "first_offset"])
    op.create_index("canopy_runs_stream", "canopy_runs", ["tenant_id", "stream", "first_offset"])
    op.create_index("canopy_runs_topic_time", "canopy_runs", ["topic", "time_min"])
    keys = op.create_table(
        "canopy_idempotency",
        sa.Column("offset", OffsetKey, primary_key=True, autoincrement=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
    )
    op.create_index(
        "canopy_idempotency_key", "canopy_idempotency", ["tenant_id", "key"], unique=True
    )
    op.create_table(
        "canopy_sequences",
        sa.Column("tenant_id", sa.Text, primary_key=True),
        sa.Column("producer_id", sa.Text, primary_key=True),
        sa.Column("first_sequence", sa.BigInteger, primary_key=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.Column("first_offset", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Runs of similar events compress well, and lz4 costs a fraction of pglz's CPU; a
        # server built without lz4 refuses, and keeps its default.
        with contextlib.suppress(sa.exc.DBAPIError), bind.begin_nested():
            op.execute("ALTER TABLE canopy_runs ALTER COLUMN body SET COMPRESSION lz4")
    return runs, keys


def _write(bind: sa.Connection, runs: sa.Table, keys: sa.Table, rows: list[EventRow]) -> None:
    if not rows:
        return
    bind.execute(runs.insert(), [encode_run(group)._asdict() for group in run_rows(rows)])
    keyed = [{"offset": r[0], "tenant_id": r[1], "key": r[10]} for r in rows if r[10] is not None]
    if keyed:
        bind.execute(keys.insert(), keyed)


def upgrade() -> None:
    runs, keys = _create_runs()
    bind = op.get_bind()
    pending: list[EventRow] = []
    after = 0
    while page := bind.execute(
        sa.select(events).where(events.c.offset > after).order_by(events.c.offset).limit(PAGE)
    ).all():
        after = page[-1][0]
        # The last stretch may continue on the next page: it waits for it.
        groups = list(run_rows(pending + [tuple(row) for row in page]))
        pending = groups.pop()
        _write(bind, runs, keys, [row for group in groups for row in group])
    if pending:
        _write(bind, runs, keys, pending)
    op.drop_table("canopy_events")


def _expanded(bind: sa.Connection) -> Iterable[dict[str, Any]]:
    runs = sa.table(
        "canopy_runs",
        *(
            sa.column(name)
            for name in ("first_offset", "last_offset", "tenant_id", "topic", "stream")
        ),
        sa.column("first_version"),
        sa.column("body", sa.LargeBinary),
        sa.column("positions", sa.LargeBinary),
    )
    after = 0
    while page := bind.execute(
        sa.select(runs).where(runs.c.first_offset > after).order_by(runs.c.first_offset).limit(500)
    ).all():
        after = page[-1][0]
        for run in page:
            for event in decode_events(run, 0, run[1]):
                yield {
                    "offset": event.offset,
                    "tenant_id": event.tenant_id,
                    "topic": event.topic,
                    "stream": event.stream,
                    "stream_version": event.stream_version,
                    "type": event.type,
                    "time_us": event.time_us,
                    "payload": orjson.dumps(event.payload).decode(),
                    "producer_name": event.producer.name,
                    "producer_version": event.producer.version,
                    "idempotency_key": event.idempotency_key,
                }


def downgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "canopy_events",
        sa.Column("offset", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("producer_name", sa.Text, nullable=False),
        sa.Column("producer_version", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=True),
    )
    batch: list[dict[str, Any]] = []
    for row in _expanded(bind):
        batch.append(row)
        if len(batch) == PAGE:
            bind.execute(events.insert(), batch)
            batch = []
    if batch:
        bind.execute(events.insert(), batch)
    op.create_index("canopy_events_tenant_offset", "canopy_events", ["tenant_id", "offset"])
    op.create_index(
        "canopy_events_stream",
        "canopy_events",
        ["tenant_id", "stream", "stream_version"],
        unique=True,
    )
    op.create_index("canopy_events_topic_time", "canopy_events", ["topic", "time_us"])
    op.create_index(
        "canopy_events_idempotency", "canopy_events", ["tenant_id", "idempotency_key"], unique=True
    )
    op.drop_table("canopy_sequences")
    op.drop_table("canopy_idempotency")
    op.drop_table("canopy_runs")
