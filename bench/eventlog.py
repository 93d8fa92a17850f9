"""Benchmark of Canopy's event log (``bridge``) on SQLite and PostgreSQL.

What is measured, per store (a SQLite file in a temporary folder; a fresh PostgreSQL schema):

1. **Append throughput** (events/s) with 1, 10 and 100 concurrent producers. A producer is an
   asyncio task that awaits each append before the next one and writes to its own stream
   (``execution/<producer-index>``). Two variants: ``single`` (one event per call, the common
   case of an instrumented tree) and ``batch10`` (ten events per call). Each case appends a
   fixed number of events (chosen per store so that a full-mode case lasts a few seconds).
   Group commit is what should make many producers fast, so this is the number to watch.
2. **Append latency** p50/p99 (ms) per call, for the same cases: a producer waits for its
   commit, so this is what an instrumented process feels.
3. **Replay throughput**: decoded events/s reading the whole log from offset 0 in pages of
   5,000 with ``store.read(EventFilter(ALL_TENANTS), ...)``; every projection rebuild does this.
4. **Live-tail latency** p50/p99 (ms), at a steady 200 appends/s (one event per call) so that it
   measures latency, not throughput:

   - *in-process*: a subscriber task on the same store. ``commit_to_delivery`` is the
     subscriber's receive time minus the time the append call returned (commit acknowledged);
     it can be negative, because the store wakes subscribers before it resolves the appender's
     future. ``append_to_delivery`` is receive minus the time just before the append call.
   - *cross-process*: a child OS process (this script with a hidden flag) opens its own store
     on the same database and appends ``BlackboardChanged`` events whose ``new`` field holds
     ``time.time_ns()`` taken just before its append; the parent subscribes and reports
     receive minus that time (same machine, so the clocks agree).

5. **Floor baseline**, measured in the same run: stdlib ``sqlite3``, one ``executemany`` of
   equivalent rows into a table with the very columns and indexes of ``canopy_events`` (DDL
   compiled from ``bridge/sql/tables.py``), in one transaction, WAL + ``synchronous=NORMAL``.
   Each SQLite append throughput is also reported as a fraction of it: what the store's Python
   layers (validation, asyncio, group commit, SQLAlchemy) cost over the raw engine.
6. **Targets**, each with a pass/fail computed from the measurements above.

Every phase also records the CPU used meanwhile by other processes (``cpu.other_cores``; on
PostgreSQL it includes the server's own work). On a shared 2-core machine other load easily
halves the numbers, so read them together; the run warns when the machine is busy before it
starts. ``code.commit`` names the commit measured (``bridge/`` changes often).

Run it from the repository root::

    .venv/bin/python bench/eventlog.py --quick          # < 30 s, both stores
    .venv/bin/python bench/eventlog.py                  # full mode, a few minutes
    .venv/bin/python bench/eventlog.py --stores sqlite --out bench/result.json

The PostgreSQL server is ``--postgres-url`` (default ``$CANOPY_TEST_POSTGRES_URL`` or
``postgresql://postgres@127.0.0.1:5432/test``); a schema is created for the run and dropped
after it, as is the temporary folder, even on error. A readable summary goes to stderr; the
last line of stdout is one JSON object with the machine, the mode, every measurement, the
baseline and the targets. The exit status is 1 when a store could not be measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import orjson
import psycopg
import sqlalchemy
from measure import emit_report, machine_busy_seconds, percentile
from rich.console import Console
from rich.table import Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from canopy.bridge import ALL_TENANTS, EventFilter, NewEvent, Producer, RecordedEvent, open_store
from canopy.bridge.sql import SqlEventStore
from canopy.bridge.sql.runs import EventRow, decode_events, encode_run, run_rows
from canopy.bridge.sql.tables import idempotency as idempotency_table
from canopy.bridge.sql.tables import runs as runs_table

STORES: Final = ("sqlite", "postgres")
PRODUCER_COUNTS: Final = (1, 10, 100)
VARIANTS: Final = {"single": 1, "batch10": 10}
REPLAY_PAGE: Final = 5_000
TENANT: Final = "acme"
TOPIC: Final = "debugging.execution"
PRODUCER: Final = Producer("bench", "1")
IN_PROCESS_STREAM: Final = "live/in-process"
CROSS_PROCESS_STREAM: Final = "live/cross-process"
DEFAULT_POSTGRES_URL: Final = os.environ.get(
    "CANOPY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
CHILD_FLAG: Final = "--child-appender"
SCRIPT: Final = Path(__file__).resolve()

console = Console(stderr=True, highlight=False, soft_wrap=True)


# -- what a run does -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One append-throughput case: ``producers`` tasks, ``batch`` events per call."""

    variant: str
    producers: int
    events: int

    @property
    def batch(self) -> int:
        return VARIANTS[self.variant]

    @property
    def calls_per_producer(self) -> int:
        return max(1, self.events // (self.producers * self.batch))


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of every phase for one mode."""

    mode: str
    append_events: Mapping[str, Mapping[tuple[str, int], int]]
    replay_min_events: int
    live_events: int
    live_warmup: int
    live_rate: float

    def cases(self, store: str) -> list[Case]:
        sizes = self.append_events[store]
        return [Case(v, p, sizes[(v, p)]) for v in VARIANTS for p in PRODUCER_COUNTS]

    @property
    def shape_events(self) -> int:
        return 20_000 if self.mode == "quick" else 200_000

    @property
    def baseline_events(self) -> int:
        return max(n for sizes in self.append_events.values() for n in sizes.values())


# Events per case. Full-mode sizes aim at ~3-5 s per case on a 2-core machine.
QUICK: Final = Plan(
    mode="quick",
    append_events={
        store: {
            ("single", 1): 300,
            ("single", 10): 2_000,
            ("single", 100): 5_000,
            ("batch10", 1): 2_000,
            ("batch10", 10): 5_000,
            ("batch10", 100): 10_000,
        }
        for store in STORES
    },
    replay_min_events=20_000,
    live_events=200,
    live_warmup=10,
    live_rate=200.0,
)
FULL: Final = Plan(
    mode="full",
    append_events={
        "sqlite": {
            ("single", 1): 12_000,
            ("single", 10): 60_000,
            ("single", 100): 120_000,
            ("batch10", 1): 80_000,
            ("batch10", 10): 200_000,
            ("batch10", 100): 200_000,
        },
        "postgres": {
            ("single", 1): 3_000,
            ("single", 10): 25_000,
            ("single", 100): 100_000,
            ("batch10", 1): 30_000,
            ("batch10", 10): 120_000,
            ("batch10", 100): 180_000,
        },
    },
    replay_min_events=100_000,
    live_events=2_000,
    live_warmup=20,
    live_rate=200.0,
)


@dataclass(frozen=True, slots=True)
class Target:
    """A goal: ``path`` into a store's results, compared with ``threshold``."""

    name: str
    store: str
    path: tuple[str | int, ...]
    op: str
    threshold: float

    def evaluate(self, results: Mapping[str, Any]) -> dict[str, Any]:
        measured = dig(results.get(self.store, {}), self.path)
        passed = measured is not None and (
            measured >= self.threshold if self.op == ">=" else measured <= self.threshold
        )
        return {
            "name": self.name,
            "store": self.store,
            "metric": ".".join(str(p) for p in self.path),
            "op": self.op,
            "threshold": self.threshold,
            "measured": measured,
            "pass": passed,
        }


def targets_for(stores: Sequence[str]) -> list[Target]:
    """Every goal that applies to the measured stores."""
    floors = {"sqlite": 60_000.0, "postgres": 40_000.0}
    found: list[Target] = []
    for store in stores:
        for variant in VARIANTS:
            append = ("append", f"{variant}_x100")
            found.append(
                Target(
                    f"{store} append throughput, 100 producers, {variant}",
                    store,
                    (*append, "events_per_s"),
                    ">=",
                    floors[store],
                )
            )
            if store == "sqlite":
                found.append(
                    Target(
                        f"sqlite append p99, 100 producers, {variant}",
                        store,
                        (*append, "latency_ms", "p99"),
                        "<=",
                        10.0,
                    )
                )
        found += [
            Target(f"{store} replay", store, ("replay", "events_per_s"), ">=", 200_000.0),
            Target(
                f"{store} live tail in-process p99 (commit->delivery)",
                store,
                ("live_tail", "in_process", "commit_to_delivery_ms", "p99"),
                "<=",
                5.0,
            ),
            Target(
                f"{store} live tail in-process p99 (append call->delivery, stricter reading)",
                store,
                ("live_tail", "in_process", "append_to_delivery_ms", "p99"),
                "<=",
                5.0,
            ),
            Target(
                f"{store} live tail cross-process p99 (sent->delivery)",
                store,
                ("live_tail", "cross_process", "sent_to_delivery_ms", "p99"),
                "<=",
                50.0,
            ),
        ]
    return found


# -- small helpers ---------------------------------------------------------------------------


def dig(data: Any, path: Sequence[str | int]) -> Any:
    """``data[p0][p1]...``, or None when a step is missing."""
    for step in path:
        if not isinstance(data, Mapping) or step not in data:
            return None
        data = data[step]
    return data


def summarize_ms(samples_ns: Sequence[float]) -> dict[str, float]:
    """p50/p99/min/max/mean in milliseconds of durations given in nanoseconds."""
    if not samples_ns:
        raise BenchError("no latency samples were collected")
    ordered = sorted(s / 1e6 for s in samples_ns)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p99": round(percentile(ordered, 99), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
        "samples": len(ordered),
    }


def status_event(producer_index: int, tick: int) -> NewEvent:
    """The throughput workload: a node of an execution changed status."""
    return NewEvent(
        TENANT,
        TOPIC,
        f"execution/{producer_index}",
        "NodeStatusChanged",
        {
            "execution_id": f"e{producer_index}",
            "tick": tick,
            "node_id": "root/patrol",
            "status": "SUCCESS",
            "previous": "RUNNING",
        },
        PRODUCER,
    )


def probe_event(stream: str, tick: int, key: str, sent_ns: int) -> NewEvent:
    """A live-tail probe carrying the wall-clock time it was sent."""
    return NewEvent(
        TENANT,
        TOPIC,
        stream,
        "BlackboardChanged",
        {"execution_id": "live", "tick": tick, "key": key, "new": sent_ns, "writer": "bench"},
        PRODUCER,
    )


async def paced(count: int, rate: float) -> AsyncIterator[int]:
    """Yield 0..count-1 on a fixed schedule of ``rate`` per second (no drift)."""
    start = time.perf_counter()
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield index


class BenchError(RuntimeError):
    """A measurement could not be made (the store misbehaved or a helper process failed)."""


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used so far by the whole machine (Linux only) and by this process tree."""

    wall: float
    machine_busy: float | None
    own: float

    @classmethod
    def take(cls) -> CpuSample:
        times = os.times()
        own = times.user + times.system + times.children_user + times.children_system
        return cls(time.perf_counter(), machine_busy_seconds(), own)

    def until(self, end: CpuSample) -> dict[str, float | None]:
        """Usage between two samples; ``other_cpu_s`` is everything that is not this process
        or its children (so it includes the PostgreSQL server's work, and any other load)."""
        wall, own = end.wall - self.wall, end.own - self.own
        if self.machine_busy is None or end.machine_busy is None:
            return {"wall_s": round(wall, 3), "own_cpu_s": round(own, 3), "other_cpu_s": None}
        other = max(0.0, end.machine_busy - self.machine_busy - own)
        return {
            "wall_s": round(wall, 3),
            "own_cpu_s": round(own, 3),
            "other_cpu_s": round(other, 3),
            "other_cores": round(other / wall, 2) if wall > 0 else None,
        }


async def idle_check(seconds: float = 1.0) -> dict[str, float | None]:
    """How busy the machine is without us: other load makes every number here noisy."""
    before = CpuSample.take()
    await asyncio.sleep(seconds)
    usage = before.until(CpuSample.take())
    other = usage["other_cpu_s"]
    cores_busy = None if other is None else round(other / seconds, 2)
    if cores_busy is not None and cores_busy > 0.2:
        console.print(
            f"[yellow]warning: other processes keep {cores_busy:.2f} cores busy before the run;"
            " the numbers will be noisy[/yellow]"
        )
    return {"other_cores_busy_before_run": cores_busy, "load_average": os.getloadavg()[0]}


async def measured(phase: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Await ``phase`` and add the CPU used meanwhile by us and by others (a noise indicator)."""
    before = CpuSample.take()
    result = await phase
    result["cpu"] = before.until(CpuSample.take())
    return result


def note(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


# -- databases -------------------------------------------------------------------------------


@contextmanager
def sqlite_location(directory: Path) -> Iterator[str]:
    yield f"sqlite:///{directory / 'events.db'}"


@contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A URL whose search_path is a schema made for this run; the schema is dropped after."""
    schema = f"canopy_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in server_url else "?"
    try:
        yield f"{server_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_version(server_url: str) -> str | None:
    try:
        with psycopg.connect(server_url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


# -- 1 & 2: append throughput and latency ----------------------------------------------------


async def run_append_case(store: SqlEventStore, case: Case) -> dict[str, Any]:
    """``case.producers`` tasks each awaiting ``calls_per_producer`` appends of ``batch``."""
    latencies: list[int] = []
    offsets: list[int] = []

    async def producer(index: int) -> None:
        for call in range(case.calls_per_producer):
            batch = [status_event(index, call * case.batch + k) for k in range(case.batch)]
            started = time.perf_counter_ns()
            offsets.extend(await store.append(batch))
            latencies.append(time.perf_counter_ns() - started)

    started = time.perf_counter()
    await asyncio.gather(*(producer(i) for i in range(case.producers)))
    elapsed = time.perf_counter() - started
    appended = len(offsets)
    return {
        "variant": case.variant,
        "producers": case.producers,
        "events_per_call": case.batch,
        "events": appended,
        "calls": len(latencies),
        "seconds": round(elapsed, 4),
        "events_per_s": round(appended / elapsed, 1),
        "latency_ms": summarize_ms(latencies),
        "offsets_contiguous": len(set(offsets)) == appended == max(offsets) - min(offsets) + 1,
    }


async def run_append_cases(store: SqlEventStore, name: str, plan: Plan) -> dict[str, Any]:
    await store.append([status_event(i, 0) for i in range(100)])  # warm caches and connections
    results: dict[str, Any] = {}
    for case in plan.cases(name):
        result = await measured(run_append_case(store, case))
        results[f"{case.variant}_x{case.producers}"] = result
        note(
            f"{name}: append {case.variant:7} x{case.producers:<3} "
            f"{result['events_per_s']:>10,.0f} ev/s  p50 {result['latency_ms']['p50']:.2f} ms"
            f"  p99 {result['latency_ms']['p99']:.2f} ms  ({result['seconds']:.1f} s,"
            f" other load {result['cpu'].get('other_cores')} cores)"
        )
    return results


# -- 3: replay -------------------------------------------------------------------------------


async def top_up(store: SqlEventStore, minimum: int) -> None:
    """Append large batches until the log holds at least ``minimum`` events."""
    head = await store.last_offset()
    tick = 0
    while head < minimum:
        batch = [status_event(i % 100, tick + i) for i in range(min(2_000, minimum - head))]
        head = (await store.append(batch))[-1]
        tick += len(batch)


async def run_replay(store: SqlEventStore) -> dict[str, Any]:
    """Read the whole log from offset 0 in pages of :data:`REPLAY_PAGE`, decoding every event."""
    head = await store.last_offset()
    everything = EventFilter(ALL_TENANTS)
    after = events = pages = 0
    started = time.perf_counter()
    while after < head:
        page = await store.read(everything, after=after, limit=REPLAY_PAGE, until=head)
        if page.scanned_to <= after:
            raise BenchError(f"replay stalled at offset {after} (head {head})")
        events += len(page.events)
        pages += 1
        after = page.scanned_to
    elapsed = time.perf_counter() - started
    return {
        "events": events,
        "pages": pages,
        "page_size": REPLAY_PAGE,
        "seconds": round(elapsed, 4),
        "events_per_s": round(events / elapsed, 1),
        "complete": events == head,
    }


# -- 4a: live tail in the same process -------------------------------------------------------


async def receive_times(subscription: AsyncIterator[Any], count: int) -> dict[int, int]:
    """Wall-clock receive time of each of the next ``count`` events, by offset."""
    received: dict[int, int] = {}
    async for event in subscription:
        received[event.offset] = time.time_ns()
        if len(received) >= count:
            break
    return received


async def run_live_in_process(store: SqlEventStore, plan: Plan) -> dict[str, Any]:
    total = plan.live_warmup + plan.live_events
    subscription = store.subscribe(
        EventFilter(ALL_TENANTS, streams=(IN_PROCESS_STREAM,)), after=await store.last_offset()
    )
    consumer = asyncio.create_task(receive_times(subscription, total))
    await asyncio.sleep(0.05)  # let the subscriber reach its live wait
    called: dict[int, int] = {}
    acknowledged: dict[int, int] = {}
    try:
        async for index in paced(total, plan.live_rate):
            before = time.time_ns()
            [offset] = await store.append([probe_event(IN_PROCESS_STREAM, index, "probe", before)])
            acknowledged[offset] = time.time_ns()
            called[offset] = before
        async with asyncio.timeout(10):
            received = await consumer
    finally:
        consumer.cancel()
    measured = sorted(acknowledged)[plan.live_warmup :]
    missing = [o for o in measured if o not in received]
    if missing:
        raise BenchError(f"in-process subscriber never received offsets {missing[:5]}...")
    return {
        "events": len(measured),
        "rate_per_s": plan.live_rate,
        "commit_to_delivery_ms": summarize_ms([received[o] - acknowledged[o] for o in measured]),
        "append_to_delivery_ms": summarize_ms([received[o] - called[o] for o in measured]),
    }


# -- 4b: live tail across processes ----------------------------------------------------------


async def child_append(url: str, total: int, warmup: int, rate: float) -> None:
    """Body of the helper process: paced probes stamped with ``time.time_ns()``."""
    async with open_store(url) as store:
        async for index in paced(total, rate):
            key = "warmup" if index < warmup else "probe"
            await store.append([probe_event(CROSS_PROCESS_STREAM, index, key, time.time_ns())])


async def cross_latencies(subscription: AsyncIterator[Any], total: int) -> list[int]:
    """Receive minus sent (ns) of the probes, until the last of ``total`` events arrived."""
    latencies: list[int] = []
    async for event in subscription:
        now = time.time_ns()
        if event.payload["key"] == "probe":
            latencies.append(now - event.payload["new"])
        if event.payload["tick"] >= total - 1:
            break
    return latencies


async def run_live_cross_process(store: SqlEventStore, url: str, plan: Plan) -> dict[str, Any]:
    total = plan.live_warmup + plan.live_events
    subscription = store.subscribe(
        EventFilter(ALL_TENANTS, streams=(CROSS_PROCESS_STREAM,)), after=await store.last_offset()
    )
    consumer = asyncio.create_task(cross_latencies(subscription, total))
    spec = json.dumps(
        {"url": url, "total": total, "warmup": plan.live_warmup, "rate": plan.live_rate}
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        CHILD_FLAG,
        spec,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30 + total / plan.live_rate):
            _, errors = await child.communicate()
        if child.returncode != 0:
            raise BenchError(f"appender process failed ({child.returncode}): {errors.decode()}")
        async with asyncio.timeout(10):
            latencies = await consumer
    finally:
        consumer.cancel()
        if child.returncode is None:
            child.kill()
            await child.wait()
    return {
        "events": len(latencies),
        "rate_per_s": plan.live_rate,
        "sent_to_delivery_ms": summarize_ms(latencies),
    }


# -- 5: the floor ----------------------------------------------------------------------------


ROW_SHAPE_DDL: Final = (
    "CREATE TABLE canopy_events (offset INTEGER NOT NULL PRIMARY KEY, tenant_id TEXT NOT NULL,"
    " topic TEXT NOT NULL, stream TEXT NOT NULL, stream_version INTEGER NOT NULL,"
    " type TEXT NOT NULL, time_us BIGINT NOT NULL, payload TEXT NOT NULL,"
    " producer_name TEXT NOT NULL, producer_version TEXT NOT NULL, idempotency_key TEXT)",
    "CREATE INDEX canopy_events_tenant_offset ON canopy_events (tenant_id, offset)",
    "CREATE UNIQUE INDEX canopy_events_stream ON canopy_events (tenant_id, stream, stream_version)",
    "CREATE INDEX canopy_events_topic_time ON canopy_events (topic, time_us)",
    "CREATE UNIQUE INDEX canopy_events_idempotency ON canopy_events (tenant_id, idempotency_key)",
)
"""The row shape, one row per event, as the log stored events before runs (revision 0002)."""

SHAPE_STREAMS: Final = 100
SHAPE_BATCH: Final = 100
"""The events of the shape comparison arrive as pods send them: each of 100 streams appends
batches of 100 consecutive events, the batches interleaved."""


def run_shape_ddl() -> list[str]:
    """CREATE TABLE and CREATE INDEX statements of the run shape, compiled for SQLite."""
    dialect = sqlite_dialect.dialect()
    statements = []
    for table in (runs_table, idempotency_table):
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)))
    return statements


def baseline_rows(count: int) -> list[EventRow]:
    """``count`` events as the writer plans them, in pod-batch arrival order."""
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
    rows: list[EventRow] = []
    for offset in range(1, count + 1):
        batch, within = divmod(offset - 1, SHAPE_BATCH)
        stream_index = batch % SHAPE_STREAMS
        version = (batch // SHAPE_STREAMS) * SHAPE_BATCH + within + 1
        event = status_event(stream_index, version)
        rows.append(
            (
                offset,
                event.tenant_id,
                event.topic,
                event.stream,
                version,
                event.type,
                now_us,
                encode(event.payload),
                event.producer.name,
                event.producer.version,
                None,
            )
        )
    return rows


def _row_event(row: Sequence[Any]) -> RecordedEvent:
    return RecordedEvent(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], orjson.loads(row[7]),
        Producer(row[8], row[9]), row[10],
    )  # fmt: skip


class RawShape(ABC):
    """One way of laying events out, on a raw ``sqlite3`` connection: how it appends, reads
    one event by offset, reads a stream's range, and replays everything."""

    name = ""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def create(self) -> None:
        for statement in self.ddl():
            self.conn.execute(statement)

    @abstractmethod
    def ddl(self) -> Sequence[str]:
        """The statements creating its tables."""

    @abstractmethod
    def append(self, rows: Sequence[EventRow]) -> None:
        """Write rows inside the caller's transaction."""

    @abstractmethod
    def point(self, offset: int) -> RecordedEvent:
        """The event at ``offset``."""

    @abstractmethod
    def stream_range(self, stream: str, after_version: int, limit: int) -> list[RecordedEvent]:
        """Up to ``limit`` events of ``stream`` after ``after_version``."""

    @abstractmethod
    def replay(self) -> int:
        """Decode every event in offset order; return how many."""


class RowShape(RawShape):
    name = "rows"

    def ddl(self) -> Sequence[str]:
        return ROW_SHAPE_DDL

    def append(self, rows: Sequence[EventRow]) -> None:
        self.conn.executemany(f"INSERT INTO canopy_events VALUES ({', '.join('?' * 11)})", rows)

    def point(self, offset: int) -> RecordedEvent:
        found = self.conn.execute("SELECT * FROM canopy_events WHERE offset = ?", (offset,))
        return _row_event(found.fetchone())

    def stream_range(self, stream: str, after_version: int, limit: int) -> list[RecordedEvent]:
        found = self.conn.execute(
            "SELECT * FROM canopy_events WHERE tenant_id = ? AND stream = ?"
            " AND stream_version > ? ORDER BY stream_version LIMIT ?",
            (TENANT, stream, after_version, limit),
        )
        return [_row_event(row) for row in found]

    def replay(self) -> int:
        found = self.conn.execute("SELECT * FROM canopy_events ORDER BY offset")
        return sum(1 for row in found if _row_event(row))


class RunShape(RawShape):
    name = "runs"
    _columns = "first_offset, last_offset, tenant_id, topic, stream, first_version, body, positions"

    def ddl(self) -> Sequence[str]:
        return run_shape_ddl()

    def append(self, rows: Sequence[EventRow]) -> None:
        stored = [encode_run(group) for group in run_rows(rows)]
        self.conn.executemany(f"INSERT INTO canopy_runs VALUES ({', '.join('?' * 11)})", stored)

    def point(self, offset: int) -> RecordedEvent:
        found = self.conn.execute(
            f"SELECT {self._columns} FROM canopy_runs WHERE first_offset <= ?"
            " ORDER BY first_offset DESC LIMIT 1",
            (offset,),
        ).fetchone()
        (event,) = decode_events(found, offset - 1, offset)
        return event

    def stream_range(self, stream: str, after_version: int, limit: int) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        runs = self.conn.execute(
            f"SELECT {self._columns} FROM canopy_runs WHERE tenant_id = ? AND stream = ?"
            " AND first_version + (last_offset - first_offset) > ? ORDER BY first_offset",
            (TENANT, stream, after_version),
        )
        for run in runs:
            skip = max(0, after_version - run[5] + 1)
            found.extend(decode_events(run, run[0] + skip - 1, run[1]))
            if len(found) >= limit:
                break
        return found[:limit]

    def replay(self) -> int:
        found = self.conn.execute(f"SELECT {self._columns} FROM canopy_runs ORDER BY first_offset")
        return sum(len(decode_events(run, 0, run[1])) for run in found)


def measure_shape(shape_class: type[RawShape], path: Path, rows: list[EventRow]) -> dict[str, Any]:
    """Append ``rows`` in batches as a group commit would (one transaction per 1,000 events),
    then read them back every way; decoding is included, as a reader must decode."""
    conn = sqlite3.connect(path, isolation_level=None)
    shape = shape_class(conn)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        shape.create()
        started = time.perf_counter()
        for first in range(0, len(rows), 1000):
            conn.execute("BEGIN")
            shape.append(rows[first : first + 1000])
            conn.execute("COMMIT")
        append_s = time.perf_counter() - started
        probes = [1 + (i * 7919) % len(rows) for i in range(1000)]
        started = time.perf_counter()
        for offset in probes:
            if shape.point(offset).offset != offset:
                raise BenchError(f"{shape.name}: point read of {offset} answered another event")
        point_s = time.perf_counter() - started
        stream = rows[0][3]
        started = time.perf_counter()
        ranged, version = 0, 0
        while page := shape.stream_range(stream, version, 1000):
            ranged += len(page)
            version = page[-1].stream_version
        range_s = time.perf_counter() - started
        started = time.perf_counter()
        replayed = shape.replay()
        replay_s = time.perf_counter() - started
        size = sum(f.stat().st_size for f in path.parent.glob(f"{path.name}*"))
    finally:
        conn.close()
    if replayed != len(rows):
        raise BenchError(f"{shape.name}: replay found {replayed} of {len(rows)} events")
    return {
        "events": len(rows),
        "append_events_per_s": round(len(rows) / append_s, 1),
        "append_us_per_event": round(append_s / len(rows) * 1e6, 2),
        "point_read_us": round(point_s / len(probes) * 1e6, 2),
        "range_read_events_per_s": round(ranged / range_s, 1),
        "replay_events_per_s": round(replayed / replay_s, 1),
        "bytes_on_disk": size,
    }


def run_raw_shapes(directory: Path, count: int) -> dict[str, Any]:
    """The same events in both shapes on the raw engine, so the store's layers and the layout
    can be told apart."""
    rows = baseline_rows(count)
    shapes = {
        shape.name: measure_shape(shape, directory / f"shape-{shape.name}.db", rows)
        for shape in (RowShape, RunShape)
    }
    ratios = {
        metric: round(shapes["runs"][metric] / shapes["rows"][metric], 2)
        for metric in ("append_events_per_s", "range_read_events_per_s", "replay_events_per_s")
    }
    return {**shapes, "runs_over_rows": ratios}


def run_sqlite3_baseline(directory: Path, count: int) -> dict[str, Any]:
    """One executemany in one transaction: the most the SQLite engine gives to Python. The
    rows go into the run shape the store uses, as the store would group them."""
    rows = baseline_rows(count)
    conn = sqlite3.connect(directory / "baseline.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        shape = RunShape(conn)
        shape.create()
        started = time.perf_counter()
        conn.execute("BEGIN")
        shape.append(rows)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return {
        "method": "encode runs + sqlite3 executemany, one transaction, WAL, synchronous=NORMAL",
        "events": count,
        "seconds": round(elapsed, 4),
        "events_per_s": round(count / elapsed, 1),
    }


# -- one store, start to end -----------------------------------------------------------------


async def measure_store(name: str, url: str, plan: Plan) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with open_store(url) as store:
        results["append"] = await run_append_cases(store, name, plan)
        await top_up(store, plan.replay_min_events)
        note(f"{name}: replaying {await store.last_offset():,} events")
        results["replay"] = await measured(run_replay(store))
        note(f"{name}: replay {results['replay']['events_per_s']:,.0f} ev/s")
        note(f"{name}: live tail in-process, {plan.live_events} events at {plan.live_rate:.0f}/s")
        in_process = await measured(run_live_in_process(store, plan))
        note(f"{name}: live tail cross-process, {plan.live_events} events")
        cross = await measured(run_live_cross_process(store, url, plan))
        results["live_tail"] = {"in_process": in_process, "cross_process": cross}
    return results


@contextmanager
def store_url(name: str, directory: Path, postgres_url: str) -> Iterator[str]:
    if name == "sqlite":
        with sqlite_location(directory) as url:
            yield url
    else:
        with postgres_schema(postgres_url) as url:
            yield url


async def measure_all(
    stores: Sequence[str], plan: Plan, postgres_url: str, directory: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in stores:
        note(f"[bold]{name}[/bold]: measuring ({plan.mode} mode)")
        try:
            with store_url(name, directory, postgres_url) as url:
                before = CpuSample.take()
                results[name] = await measure_store(name, url, plan)
                results[name]["cpu"] = before.until(CpuSample.take())
        except Exception as exc:
            console.print(f"[red]{name}: {exc!r}[/red]\n{traceback.format_exc()}")
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def add_baseline_ratios(results: dict[str, Any], baseline: Mapping[str, Any]) -> None:
    for case in results.get("sqlite", {}).get("append", {}).values():
        case["vs_sqlite3_floor"] = round(case["events_per_s"] / baseline["events_per_s"], 4)


# -- report ----------------------------------------------------------------------------------


def code_version() -> dict[str, Any]:
    """The commit measured, and whether ``bridge/`` differs from it (read-only git calls)."""
    root = SCRIPT.parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "bridge")
    return {
        "commit": git("rev-parse", "HEAD"),
        "bridge_modified": None if status is None else bool(status),
    }


def machine_info(stores: Sequence[str], postgres_url: str) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "postgres": postgres_version(postgres_url) if "postgres" in stores else None,
    }


def append_table(name: str, mode: str, cases: Mapping[str, Any]) -> Table:
    table = Table(title=f"{name} append ({mode})", title_justify="left")
    for column in ("case", "events", "ev/s", "p50 ms", "p99 ms", "vs floor", "other load"):
        table.add_column(column, justify="right")
    for key, case in cases.items():
        ratio = case.get("vs_sqlite3_floor")
        table.add_row(
            key,
            f"{case['events']:,}",
            f"{case['events_per_s']:,.0f}",
            f"{case['latency_ms']['p50']:.2f}",
            f"{case['latency_ms']['p99']:.2f}",
            f"{ratio:.1%}" if ratio is not None else "",
            f"{case['cpu'].get('other_cores')} cores",
        )
    return table


def describe_store(name: str, results: Mapping[str, Any]) -> str:
    replay, live, cpu = results["replay"], results["live_tail"], results["cpu"]
    in_process, cross = live["in_process"], live["cross_process"]

    def pair(summary: Mapping[str, float]) -> str:
        return f"p50 {summary['p50']:.2f} / p99 {summary['p99']:.2f} ms"

    return (
        f"{name} replay: {replay['events']:,} events, {replay['events_per_s']:,.0f} ev/s\n"
        f"{name} live tail in-process: commit->delivery "
        f"{pair(in_process['commit_to_delivery_ms'])}; "
        f"append->delivery {pair(in_process['append_to_delivery_ms'])}\n"
        f"{name} live tail cross-process: sent->delivery {pair(cross['sent_to_delivery_ms'])}\n"
        f"{name} cpu: {cpu['own_cpu_s']} s this process, {cpu['other_cpu_s']} s others"
        f" in {cpu['wall_s']} s\n"
    )


def print_summary(report: Mapping[str, Any]) -> None:
    for name, results in report["stores"].items():
        if "error" in results:
            console.print(f"[red]{name}: not measured: {results['error']}[/red]")
            continue
        console.print(append_table(name, report["mode"], results["append"]))
        console.print(describe_store(name, results))
    baseline = report["baseline"]
    console.print(f"sqlite3 floor: {baseline['events_per_s']:,.0f} ev/s ({baseline['events']:,})")
    for target in report["targets"]:
        mark = "[green]PASS[/green]" if target["pass"] else "[red]FAIL[/red]"
        console.print(
            f"{mark} {target['name']}: {target['measured']} {target['op']} {target['threshold']:g}"
        )
    console.print(f"took {report['duration_s']:.1f} s")


# -- entry points ----------------------------------------------------------------------------


async def run(stores: Sequence[str], plan: Plan, postgres_url: str) -> dict[str, Any]:
    started = CpuSample.take()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    quietness = await idle_check()
    with tempfile.TemporaryDirectory(prefix="canopy-bench-") as folder:
        directory = Path(folder)
        note(f"sqlite3 floor: executemany of {plan.baseline_events:,} events as runs")
        baseline = run_sqlite3_baseline(directory, plan.baseline_events)
        note(f"raw shapes: {plan.shape_events:,} events as rows and as runs")
        shapes = run_raw_shapes(directory, plan.shape_events)
        results = await measure_all(stores, plan, postgres_url, directory)
    add_baseline_ratios(results, baseline)
    targets = [t.evaluate(results) for t in targets_for(stores)]
    finished = CpuSample.take()
    return {
        "benchmark": "canopy-eventlog",
        "mode": plan.mode,
        "started_at": started_at,
        "machine": {**machine_info(stores, postgres_url), **quietness},
        "code": code_version(),
        "stores": results,
        "baseline": baseline,
        "shapes": shapes,
        "targets": targets,
        "all_targets_pass": all(t["pass"] for t in targets),
        "cpu": started.until(finished),
        "duration_s": round(finished.wall - started.wall, 2),
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 30 s in all")
    parser.add_argument(
        "--stores", default=",".join(STORES), help="comma-separated: sqlite,postgres"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument(CHILD_FLAG, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if unknown := set(args.stores) - set(STORES):
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child_appender:
        spec = json.loads(args.child_appender)
        asyncio.run(child_append(spec["url"], spec["total"], spec["warmup"], spec["rate"]))
        return 0
    try:
        report = asyncio.run(run(args.stores, QUICK if args.quick else FULL, args.postgres_url))
    except KeyboardInterrupt:
        console.print("[red]interrupted (temporary files and schema removed)[/red]")
        return 130
    print_summary(report)
    emit_report(report, args.out)
    return 1 if any("error" in r for r in report["stores"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
