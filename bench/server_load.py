"""Scale benchmark of the server's pod link: many debug sessions streaming through one server.

``N`` synthetic debug pods (default 100), each streaming ``R`` events/s (default 1000) of one
execution, are linked to ONE ``canopy serve`` for ``D`` seconds (default 60), while a few
subscribed clients follow every stream. What is measured:

1. **Accepted vs sent.** Each pod counts the events it sent and the ones the server
   acknowledged; at the end the events of every stream are counted in the log itself (SQL
   ``COUNT(*) ... GROUP BY stream`` on the store, after the server stopped). ``events.ok`` is
   true when, for every stream, sent = acknowledged = in the log;
   ``streams_log_differs_from_sent`` = 0 says nothing sent was lost or doubled even where an
   ack was lost with its link. Events that fell *due* but were never sent (a pod that fell
   behind: the server acknowledged too slowly) are reported as ``unsent_backlog``, never
   hidden. Events the server wrote itself on a pod's stream (``ExecutionEnded`` when it gave
   the pod up) are counted apart (``server_written_events``).
2. **End-to-end latency** p50/p99 (ms): from "the pod sent the event" (``time_us`` =
   ``time.time_ns() // 1000`` when its batch is built) to "a subscribed client received it"
   (``time.time_ns() // 1000`` as the client iterates it). Same machine, same clock. The
   clients are :class:`bridge.client.CanopyClient` subscriptions (WebSocket, the local token),
   4 of them, each following a quarter of the streams, so every event is delivered (and
   timed) exactly once. Target: p99 <= 100 ms. ``pod_queue_ms`` is the time an event waited
   in its pod before it was sent (due -> sent): it stays near the tick (50 ms) while the server
   keeps up, and grows when it does not — latency counts from *sent*, so read both.
3. **Server RSS** every second from ``/proc/<pid>/status`` (``VmRSS``): first / last / max,
   the slope over the run after its first fifth, and ``flat`` (the slope accounts for < 10 %
   of the first steady sample, or < 16 MB, over the run).
4. **Server CPU** from ``/proc/<pid>/stat`` (utime + stime) over the load phase, as % of one
   core (the server's event loop is one thread; its SQLite writer is another, so > 100 % is
   possible). The load generator's and the subscribers' CPU are reported too, and
   ``other_cores``, what every other process used meanwhile: the whole machine has ``cores``
   cores shared by all of them.
5. **Sustained throughput**: events in the log / load seconds (until the last pod finished),
   and per-second acks (min / median / max over the run without its first and last second).
6. **Baseline, same run**: the same event mix appended directly to the same kind of store
   from this process (bypassing the server): ``N`` concurrent producer tasks, each appending
   batches of the pods' nominal size (``R`` x 50 ms) with the same idempotency keys, as fast as
   the store takes them. ``server_fraction_of_baseline`` = sustained / baseline.

How the pods get in: each synthetic pod is a WebSocket client of ``/api/v1/pods/connect``
speaking the worker's protocol (``server/pods/protocol.py``: ``hello`` -> ``welcome``, then
``events`` frames ``[offset, topic, stream, type, time_us, payload]``, one batch in flight
until its ``ack``; events that fall due meanwhile go in the next batch, cut at the worker's
1 MB rule; a dropped link is linked again with the worker's back-off and the unacknowledged
batch resent as it was, counted in ``link_drops`` / ``resent_events``). The server takes them
as pods it did not start (``PodManager._adopt``): before the server starts, this script writes
one ``PodRequested`` fact per pod (tenant ``local``, its own user, the SHA-256 of its own
token) into the log. The events are valid ``debugging.execution`` events (the store validates
them): one ``ExecutionStarted`` of a 3-node tree, then ticks of 3 ``NodeStatusChanged``, one
``BlackboardChanged`` and one ``TickCompleted``.

Processes: the server (``canopy serve --port 0``), the load generator (this script with a
hidden flag: every pod in one asyncio loop) and this process (the subscribers and the
sampler). On a 2-core machine they compete for the same cores; ``cpu`` says who used what.

Run it from the repository root::

    .venv/bin/python bench/server_load.py --quick     # 20 sessions x 200 ev/s x 8 s, < 30 s
    .venv/bin/python bench/server_load.py             # 100 x 1000 ev/s x 60 s, ~2 min
    .venv/bin/python bench/server_load.py --sessions 20 --rate 500 --seconds 20

``--database-url`` points the server at another log (default: a fresh SQLite file in a
temporary folder, removed afterwards). Progress goes to stderr; the last line of stdout is one
JSON object. The exit status is 1 when the run failed (not when a target is missed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import os
import platform
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
from measure import emit_report, machine_busy_seconds, percentile
from rich.console import Console

from canopy.bridge import EventFilter, NewEvent, Producer, ProducerSequence, Topic, open_store
from canopy.bridge.client import CanopyClient, read_discovery
from canopy.bridge.sql import SqlEventStore
from canopy.server.auth import LOCAL_TENANT
from canopy.server.pods.protocol import (
    BATCH_BYTES,
    CONNECT_PATH,
    HEARTBEAT_SECONDS,
    MAX_FRAME_BYTES,
    POD_HEADER,
    producer_id,
)

SCRIPT: Final = Path(__file__).resolve()
ROOT: Final = SCRIPT.parent.parent
CANOPY: Final = Path(sys.executable).with_name("canopy")
CHILD_FLAG: Final = "--child-pods"
TICK_S: Final = 0.05
"""A pod sends one batch every tick (if none is in flight): what the worker's outbox does."""
RECONNECT_MIN_S: Final = 0.05
RECONNECT_MAX_S: Final = 2.0
"""The worker's back-off after a dropped link (``server/pods/worker.py``)."""
SUBSCRIBERS: Final = 4
LATENCY_P99_TARGET_MS: Final = 100.0
HISTOGRAM_US: Final = 10
"""Latency histogram resolution (µs): percentiles are exact to 10 µs, memory stays bounded."""
TENANT: Final = LOCAL_TENANT
BASELINE_TENANT: Final = "bench-baseline"
PRODUCER: Final = Producer("canopy-pod", "bench")
SETUP_PRODUCER: Final = Producer("bench-server-load", "1")
SERVER_START_TIMEOUT_S: Final = 30.0
LINK_TIMEOUT_S: Final = 30.0
RSS_FLAT_FRACTION: Final = 0.10
RSS_FLAT_MB: Final = 16.0

console = Console(
    stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 110
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The load of one run."""

    mode: str
    sessions: int
    rate: int
    seconds: float
    baseline_seconds: float
    drain_seconds: float

    @property
    def offered_rate(self) -> int:
        return self.sessions * self.rate

    @property
    def batch(self) -> int:
        """Nominal events per frame: what falls due in one tick."""
        return max(1, round(self.rate * TICK_S))


QUICK: Final = Plan("quick", 20, 200, 8.0, 1.5, 4.0)
FULL: Final = Plan("full", 100, 1000, 60.0, 8.0, 15.0)


class BenchError(RuntimeError):
    """The run could not be carried out (the server did not start, a pod was refused, ...)."""


def note(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def now_us() -> int:
    return time.time_ns() // 1000


# -- the event mix ---------------------------------------------------------------------------

NODES: Final = (
    {"id": "root", "name": "root", "kind": "Sequence", "parent": None, "path": "root"},
    {"id": "root/a", "name": "a", "kind": "Success", "parent": "root", "path": "root/a"},
    {"id": "root/b", "name": "b", "kind": "Success", "parent": "root", "path": "root/b"},
)
EVENTS_PER_TICK: Final = 5


def started_payload(execution_id: str) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "tree": {"name": "bench", "program": "bench/server_load.py", "nodes": list(NODES)},
        "mode": "auto",
        "capture": "verbose",
        "blackboard": {"counter": 0},
    }


def payload_at(execution_id: str, k: int) -> tuple[str, dict[str, Any]]:
    """The ``k``-th event (0-based) of an execution: ``ExecutionStarted``, then ticks of child
    a, child b, root status changes, one blackboard write and ``TickCompleted``."""
    if k == 0:
        return "ExecutionStarted", started_payload(execution_id)
    tick, slot = divmod(k - 1, EVENTS_PER_TICK)
    tick += 1
    if slot < 3:
        node = ("root/a", "root/b", "root")[slot]
        return "NodeStatusChanged", {
            "execution_id": execution_id,
            "tick": tick,
            "node_id": node,
            "status": "SUCCESS",
            "previous": "RUNNING",
        }
    if slot == 3:
        return "BlackboardChanged", {
            "execution_id": execution_id,
            "tick": tick,
            "key": "/counter",
            "old": tick - 1,
            "new": tick,
            "writer": "root/b",
        }
    return "TickCompleted", {
        "execution_id": execution_id,
        "tick": tick,
        "root_status": "SUCCESS",
        "duration_ms": 0.042,
    }


def rows(
    execution_id: str, first: int, count: int, time_us: int, budget: int = BATCH_BYTES
) -> list[list[Any]]:
    """Up to ``count`` events from ``first`` (0-based) as pod-link rows, within the worker's
    batch size rule (``Outbox.ship``: stop adding past ``budget`` bytes, counted as 64 + the
    payload's JSON); the worker's offset of event ``k`` is ``k + 1``."""
    stream = f"execution/{execution_id}"
    found: list[list[Any]] = []
    size = 0
    for k in range(first, first + count):
        if found and size >= budget:
            break
        kind, payload = payload_at(execution_id, k)
        found.append([k + 1, Topic.EXECUTION, stream, kind, time_us, payload])
        size += 64 + len(orjson.dumps(payload))
    return found


# -- statistics ------------------------------------------------------------------------------


def summarize_ms(samples_ms: Sequence[float]) -> dict[str, Any] | None:
    if not samples_ms:
        return None
    ordered = sorted(samples_ms)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
        "samples": len(ordered),
    }


@dataclass(slots=True)
class Histogram:
    """Latencies in buckets of :data:`HISTOGRAM_US` microseconds."""

    buckets: Counter[int] = field(default_factory=Counter)
    count: int = 0
    total_us: int = 0
    max_us: int = 0

    def add(self, latency_us: int) -> None:
        self.buckets[max(0, latency_us) // HISTOGRAM_US] += 1
        self.count += 1
        self.total_us += latency_us
        if latency_us > self.max_us:
            self.max_us = latency_us

    def merge(self, other: Histogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.total_us += other.total_us
        self.max_us = max(self.max_us, other.max_us)

    def quantile_ms(self, q: float) -> float:
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return (bucket + 1) * HISTOGRAM_US / 1000  # the bucket's upper edge
        return self.max_us / 1000

    def over_ms(self, limit_ms: float) -> int:
        edge = int(limit_ms * 1000) // HISTOGRAM_US
        return sum(n for bucket, n in self.buckets.items() if bucket >= edge)

    def summary(self) -> dict[str, Any] | None:
        if not self.count:
            return None
        return {
            "p50": round(self.quantile_ms(50), 3),
            "p90": round(self.quantile_ms(90), 3),
            "p99": round(self.quantile_ms(99), 3),
            "p999": round(self.quantile_ms(99.9), 3),
            "max": round(self.max_us / 1000, 3),
            "mean": round(self.total_us / self.count / 1000, 3),
            "samples": self.count,
            f"over_{LATENCY_P99_TARGET_MS:g}ms": self.over_ms(LATENCY_P99_TARGET_MS),
        }


# -- /proc -----------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (all its threads) in seconds; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mb(pid: int) -> float | None:
    """``VmRSS`` of ``pid`` in MB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def idle_check(seconds: float = 1.0) -> dict[str, Any]:
    """How busy the machine is before the run: other load makes every number here noisy."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    after = machine_busy_seconds()
    cores = None if before is None or after is None else round((after - before) / seconds, 2)
    if cores is not None and cores > 0.2:
        console.print(
            f"[yellow]warning: other processes keep {cores:.2f} cores busy before the run;"
            " the numbers will be noisy[/yellow]"
        )
    return {"other_cores_busy_before_run": cores, "load_average": os.getloadavg()[0]}


@dataclass(slots=True)
class Sampler:
    """The server's RSS and CPU every second, and what the subscribers have received."""

    pid: int
    samples: list[dict[str, float]]
    started: float = 0.0

    def take(self, delivered: int) -> dict[str, float]:
        sample = {
            "t": round(time.monotonic() - self.started, 3),
            "rss_mb": process_rss_mb(self.pid) or 0.0,
            "cpu_s": process_cpu_seconds(self.pid) or 0.0,
            "delivered": float(delivered),
        }
        self.samples.append(sample)
        return sample


def rss_report(samples: Sequence[Mapping[str, float]], seconds: float) -> dict[str, Any] | None:
    """first/last/max RSS, and whether it stayed flat once the run was under way (its first
    fifth is warm-up: pods linking, the first pages of every subscriber)."""
    values = [(s["t"], s["rss_mb"]) for s in samples if s["rss_mb"] > 0]
    if not values:
        return None
    steady = [(t, v) for t, v in values if t >= seconds / 5] or values
    slope = 0.0
    if len(steady) >= 3:
        mean_t = sum(t for t, _ in steady) / len(steady)
        mean_v = sum(v for _, v in steady) / len(steady)
        spread = sum((t - mean_t) ** 2 for t, _ in steady)
        if spread > 0:
            slope = sum((t - mean_t) * (v - mean_v) for t, v in steady) / spread
    growth = slope * (steady[-1][0] - steady[0][0])
    limit = max(RSS_FLAT_FRACTION * steady[0][1], RSS_FLAT_MB)
    return {
        "first_mb": round(values[0][1], 1),
        "last_mb": round(values[-1][1], 1),
        "max_mb": round(max(v for _, v in values), 1),
        "steady_first_mb": round(steady[0][1], 1),
        "slope_mb_per_min": round(slope * 60, 2),
        "growth_over_steady_mb": round(growth, 1),
        "flat": growth <= limit,
        "flat_rule": f"growth over the run after its first fifth <= max({RSS_FLAT_FRACTION:.0%}"
        f" of the first steady sample, {RSS_FLAT_MB:g} MB)",
        "timeline_mb": [round(v, 1) for _, v in values],
    }


# -- the load generator (a child process) ----------------------------------------------------


class LinkDropped(Exception):
    """The pod's link closed while a batch waited for its ack."""


@dataclass(slots=True)
class SyntheticPod:
    """One debug pod's worker, reduced to its link: ``hello``, then batches until ``ack``; a
    dropped link is re-established with the worker's back-off and the unacknowledged batch
    resent as it was (same offsets, so the log's idempotency keys write it once)."""

    index: int
    pod_id: str
    token: str
    execution_id: str
    rate: int
    session: aiohttp.ClientSession
    url: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    sent: int = 0
    acked: int = 0
    error: str | None = None
    drops: list[str] = field(default_factory=list)
    resent: int = 0
    ack_ms: list[float] = field(default_factory=list)
    queue_ms: list[float] = field(default_factory=list)
    calls: int = 0
    _waiting: asyncio.Future[None] | None = None
    _reader: asyncio.Task[None] | None = None

    @property
    def stream(self) -> str:
        return f"execution/{self.execution_id}"

    async def link(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", POD_HEADER: self.pod_id}
        ws = await self.session.ws_connect(
            self.url + CONNECT_PATH,
            headers=headers,
            heartbeat=HEARTBEAT_SECONDS,
            max_msg_size=MAX_FRAME_BYTES,
        )
        await ws.send_bytes(orjson.dumps({"op": "hello", "pod_id": self.pod_id, "pid": 0}))
        first = await ws.receive(timeout=LINK_TIMEOUT_S)
        if first.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            await ws.close()
            raise BenchError(f"pod {self.pod_id}: the server closed the link ({first.type.name})")
        if orjson.loads(first.data).get("op") != "welcome":
            await ws.close()
            raise BenchError(f"pod {self.pod_id}: expected welcome, got {first.data!r}")
        self.ws = ws
        self._reader = asyncio.create_task(self._read(ws), name=f"pod-{self.index}")

    async def relink(self, deadline: float) -> None:
        """Link again, backing off like the worker (50 ms doubling to 2 s); the server may
        still hold the old link for a moment (409)."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                await self.link()
                return
            except (BenchError, aiohttp.ClientError, OSError, TimeoutError) as error:
                if time.monotonic() + delay > deadline:
                    raise BenchError(f"pod {self.pod_id}: cannot link again: {error}") from error
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    break
                frame = orjson.loads(message.data)
                op = frame.get("op")
                if op == "ack":
                    self.acked = max(self.acked, int(frame["through"]))
                    waiting = self._waiting
                    if waiting is not None and not waiting.done() and self.acked >= self.sent:
                        waiting.set_result(None)
                elif op == "call":  # an adopted pod is asked what it runs
                    self.calls += 1
                    answer = {"op": "result", "id": frame["id"], "value": []}
                    await ws.send_bytes(orjson.dumps(answer))
        finally:
            reason = f"code {ws.close_code}: {ws.exception() or 'closed'}"
            waiting = self._waiting
            if waiting is not None and not waiting.done():
                waiting.set_exception(LinkDropped(reason))

    async def _ship(self, start: float, due: int, deadline: float) -> None:
        """Send what fell due (within the worker's batch size) as one frame; return once the
        server acknowledged it, linking again and resending it as often as the link drops."""
        sent_at = time.monotonic()
        due_at = start + (self.sent + 1) / self.rate  # when the oldest of them fell due
        self.queue_ms.append(max(0.0, (sent_at - due_at) * 1000))
        batch = rows(self.execution_id, self.sent, due - self.sent, now_us())
        self.sent += len(batch)
        frame = orjson.dumps({"op": "events", "through": self.sent, "events": batch})
        while True:
            self._waiting = asyncio.get_running_loop().create_future()
            try:
                if self.ws is None or self.ws.closed:
                    raise LinkDropped("closed before the send")
                await self.ws.send_bytes(frame)
                await self._waiting
                break
            except (LinkDropped, ConnectionError, aiohttp.ClientError) as error:
                self.drops.append(f"{type(error).__name__}: {error}")
                self.resent += len(batch)
                await self.relink(deadline)
        self.ack_ms.append((time.monotonic() - sent_at) * 1000)

    async def run(self, start: float, seconds: float, deadline: float) -> None:
        """Every tick, send what fell due (a tick missed while a batch waited for its ack is
        not made up with extra frames: its events go in the next batch). After ``seconds``,
        one last batch of what is due, if the link still allows."""
        end = start + seconds
        total = round(self.rate * seconds)
        tick = start + random.uniform(0, TICK_S)  # pods are not in lock-step
        try:
            while True:
                delay = tick - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.monotonic()
                last = now >= end
                due = total if last else min(total, int(self.rate * (now - start)))
                if due > self.sent:
                    await self._ship(start, due, deadline)
                if last:
                    return
                tick = max(tick + TICK_S, time.monotonic())
        except BenchError as error:
            self.error = str(error)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    def result(self) -> dict[str, Any]:
        return {
            "pod_id": self.pod_id,
            "stream": self.stream,
            "sent": self.sent,
            "acked": self.acked,
            "link_drops": len(self.drops),
            "resent": self.resent,
            "error": self.error,
        }


async def _read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def child_main() -> dict[str, Any]:
    """The load generator: link every pod, say ``linked``, wait for ``go``, run, report."""
    config = json.loads(await _read_line())
    rate, seconds, drain = config["rate"], config["seconds"], config["drain_seconds"]
    url = config["url"]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        pods = [
            SyntheticPod(i, p["pod_id"], p["token"], p["execution_id"], rate, session, url)
            for i, p in enumerate(config["pods"])
        ]
        gate = asyncio.Semaphore(16)

        async def link(pod: SyntheticPod) -> None:
            async with gate:
                await pod.link()

        await asyncio.gather(*(link(pod) for pod in pods))
        print("linked", flush=True)
        if (await _read_line()).strip() != "go":
            return {"error": "no go"}
        cpu_before, start = time.process_time(), time.monotonic()
        acked_timeline: list[int] = []

        async def count_acks() -> None:
            next_at = start
            while True:
                next_at += 1.0
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                acked_timeline.append(sum(pod.acked for pod in pods))
                if len(acked_timeline) % config["progress_every"] == 0:
                    sent = sum(pod.sent for pod in pods)
                    drops = sum(len(pod.drops) for pod in pods)
                    note(
                        f"pods: t={len(acked_timeline)} s sent {sent:,} acked"
                        f" {acked_timeline[-1]:,}; link drops {drops}"
                    )

        counter = asyncio.create_task(count_acks())
        deadline = start + seconds + drain
        runs = [asyncio.create_task(pod.run(start, seconds, deadline)) for pod in pods]
        _, pending = await asyncio.wait(runs, timeout=seconds + drain)
        load_seconds = time.monotonic() - start
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        counter.cancel()
        cpu = time.process_time() - cpu_before
        await asyncio.gather(*(pod.close() for pod in pods))
    ack_ms = [ms for pod in pods for ms in pod.ack_ms]
    queue_ms = [ms for pod in pods for ms in pod.queue_ms]
    return {
        "pods": [pod.result() for pod in pods],
        "load_seconds": round(load_seconds, 3),
        "unfinished_pods": len(pending),
        "acked_per_second_cumulative": acked_timeline,
        "ack_round_trip_ms": summarize_ms(ack_ms),
        "pod_queue_ms": summarize_ms(queue_ms),
        "frames": len(ack_ms),
        "calls_answered": sum(pod.calls for pod in pods),
        "link_drops": sum(len(pod.drops) for pod in pods),
        "link_drop_reasons": dict(Counter(d for pod in pods for d in pod.drops).most_common(5)),
        "resent_events": sum(pod.resent for pod in pods),
        "cpu_s": round(cpu, 3),
    }


def child_entry() -> int:
    try:
        result = asyncio.run(child_main())
    except Exception as error:
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0


# -- the baseline: the same appends, straight into a store ------------------------------------


def new_events(tenant_id: str, batch: list[list[Any]]) -> list[NewEvent]:
    """What the server's link makes of a frame (``server/pods/link.py``); it appends them with
    the pod's sequence, numbered by the first row's offset."""
    return [
        NewEvent(
            tenant_id=tenant_id,
            topic=topic,
            stream=stream,
            type=kind,
            payload=payload,
            producer=PRODUCER,
            time=time_us,
        )
        for _, topic, stream, kind, time_us, payload in batch
    ]


async def baseline(url: str, tenant_id: str, plan: Plan, run_id: str) -> dict[str, Any]:
    """``plan.sessions`` producer tasks appending ``plan.batch`` events per call, as fast as
    the store takes them, for ``plan.baseline_seconds``."""
    store = open_store(url)
    await store.start()
    try:
        stop_at = time.monotonic() + plan.baseline_seconds
        latencies: list[float] = []
        written = [0] * plan.sessions

        async def producer(index: int) -> None:
            pod_id = f"base-{run_id}-{index:03d}"
            execution_id = pod_id
            while time.monotonic() < stop_at:
                batch = rows(execution_id, written[index], plan.batch, now_us())
                events = new_events(tenant_id, batch)
                sequence = ProducerSequence(producer_id(pod_id), batch[0][0])
                began = time.monotonic()
                await store.append(events, sequence=sequence)
                latencies.append((time.monotonic() - began) * 1000)
                written[index] += len(events)

        cpu_before, began = time.process_time(), time.monotonic()
        await asyncio.gather(*(producer(i) for i in range(plan.sessions)))
        wall = time.monotonic() - began
        cpu = time.process_time() - cpu_before
    finally:
        await store.close()
    total = sum(written)
    return {
        "what": f"{plan.sessions} tasks in one process, store.append of {plan.batch} events"
        " per call (the pods' nominal frame), same payloads and sequences, no server",
        "events": total,
        "seconds": round(wall, 3),
        "events_per_s": round(total / wall) if wall > 0 else None,
        "append_ms": summarize_ms(latencies),
        "cpu_percent_of_one_core": round(cpu / wall * 100, 1) if wall > 0 else None,
        "cpu_ms_per_1k_events": round(cpu / total * 1e6, 1) if total else None,
    }


# -- setting the run up ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodIdentity:
    pod_id: str
    user_id: str
    token: str
    execution_id: str

    @property
    def stream(self) -> str:
        return f"execution/{self.execution_id}"


def identities(run_id: str, sessions: int) -> list[PodIdentity]:
    return [
        PodIdentity(
            pod_id=f"{run_id}p{i:03d}",
            user_id=f"bench-{run_id}-{i:03d}",
            token=secrets.token_urlsafe(32),
            execution_id=f"bench-{run_id}-{i:03d}",
        )
        for i in range(sessions)
    ]


async def register_pods(url: str, pods: Sequence[PodIdentity]) -> None:
    """One ``PodRequested`` fact per pod, as the manager writes it when it starts a pod: the
    server then takes each link back as a pod it did not start (``PodManager._adopt``). Every
    pod has its own user: the server keeps one pod per user."""
    store = open_store(url)
    await store.start()
    try:
        facts = [
            NewEvent(
                tenant_id=TENANT,
                topic=Topic.INTERNAL,
                stream=f"pod/{pod.pod_id}",
                type="PodRequested",
                payload={
                    "pod_id": pod.pod_id,
                    "user_id": pod.user_id,
                    "provider": "local",
                    "token_sha256": hashlib.sha256(pod.token.encode()).hexdigest(),
                },
                producer=SETUP_PRODUCER,
            )
            for pod in pods
        ]
        await store.append(facts)
    finally:
        await store.close()


@dataclass(frozen=True, slots=True)
class LogCount:
    """What the log holds for the run, counted by the database after the server stopped."""

    pod_events: dict[str, int]
    """Per stream: events the pods wrote (the link's producer wrote them)."""
    server_events: int
    """Events the server itself wrote on those streams (``ExecutionEnded`` of a pod it gave
    up on)."""
    pods_failed: int
    """Pods the server declared dead (``PodFailed``: the link stayed down past its grace)."""


async def count_in_log(url: str, pods: Sequence[PodIdentity]) -> LogCount:
    """Counted through the store's own reads, so the count does not depend on how the log
    lays its events out."""
    streams = [pod.stream for pod in pods]
    store = open_store(url)
    await store.start()
    try:
        pod_events = dict.fromkeys(streams, 0)
        server_events = 0
        execution = EventFilter.of(TENANT, topics=[Topic.EXECUTION], streams=streams)
        async for event in read_everything(store, execution):
            if event.producer.name == PRODUCER.name:
                pod_events[event.stream] += 1
            else:
                server_events += 1
        failed = EventFilter.of(
            TENANT, types=["PodFailed"], streams=[f"pod/{pod.pod_id}" for pod in pods]
        )
        pods_failed = len([event async for event in read_everything(store, failed)])
    finally:
        await store.close()
    return LogCount(pod_events, server_events, pods_failed)


async def read_everything(store: SqlEventStore, wanted: EventFilter) -> AsyncIterator[Any]:
    """Every event of the filter, page by page."""
    after = 0
    while True:
        page = await store.read(wanted, after=after, limit=10_000)
        for event in page.events:
            yield event
        if len(page.events) < 10_000:
            return
        after = page.scanned_to


@dataclass(slots=True)
class Server:
    """``canopy serve`` in a process group of its own."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    url: str = ""
    token: str = ""

    @classmethod
    def start(cls, data_dir: Path, database_url: str) -> Server:
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = data_dir / "server.log"
        command = [str(CANOPY), "serve", "--port", "0", "--data-dir", str(data_dir)]
        command += ["--database-url", database_url, "--log-level", "WARNING"]
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(process, data_dir, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = read_discovery(self.data_dir)
            if found is not None and found.pid == self.pid:
                self.url, self.token = found.url, found.token
                return
            if self.process.poll() is not None:
                raise BenchError(f"the server exited with {self.process.returncode}")
            time.sleep(0.05)
        raise BenchError(f"the server did not start within {SERVER_START_TIMEOUT_S:g} s")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- subscribers -----------------------------------------------------------------------------


@dataclass(slots=True)
class Delivery:
    """Events delivered to all subscribers so far, and a wait for a total."""

    count: int = 0
    target: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)

    def one(self) -> None:
        self.count += 1
        if self.target is not None and self.count >= self.target:
            self.reached.set()

    async def until(self, target: int) -> None:
        self.target = target
        if self.count >= target:
            return
        await self.reached.wait()


@dataclass(slots=True)
class Follower:
    """One client following some streams (and its own marker stream) over a subscription."""

    streams: list[str]
    marker: str
    delivery: Delivery
    histogram: Histogram = field(default_factory=Histogram)
    received: Counter[str] = field(default_factory=Counter)
    server_written: int = 0
    live: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, client: CanopyClient, after: int) -> None:
        topics = [Topic.EXECUTION]
        subscription = client.subscribe(
            after=after, topics=topics, streams=[*self.streams, self.marker]
        )
        async with subscription:
            async for event in subscription:
                latency = now_us() - event.time_us
                if event.stream == self.marker:
                    self.live.set()
                    continue
                if event.type == "ExecutionEnded":  # the server gave up on the pod
                    self.server_written += 1
                    continue
                self.histogram.add(latency)
                self.received[event.stream] += 1
                self.delivery.one()


def marker_event(stream: str, execution_id: str) -> dict[str, Any]:
    return {
        "topic": Topic.EXECUTION,
        "stream": stream,
        "type": "TickCompleted",
        "payload": {
            "execution_id": execution_id,
            "tick": 1,
            "root_status": "SUCCESS",
            "duration_ms": 0,
        },
        "producer": {"name": "bench-server-load", "version": "1"},
    }


# -- the run ---------------------------------------------------------------------------------


def code_version() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "server", "bridge")
    return {
        "commit": git("rev-parse", "HEAD"),
        "server_or_bridge_modified": None if status is None else bool(status),
    }


async def spawn_generator() -> asyncio.subprocess.Process:
    """The load generator's process; it imports while the server starts, then waits for its
    configuration on stdin."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        CHILD_FLAG,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


async def configure_generator(
    child: asyncio.subprocess.Process, server: Server, pods: Sequence[PodIdentity], plan: Plan
) -> None:
    config = {
        "url": server.url,
        "rate": plan.rate,
        "seconds": plan.seconds,
        "drain_seconds": plan.drain_seconds,
        "progress_every": 2 if plan.seconds <= 10 else 10,
        "pods": [
            {"pod_id": p.pod_id, "token": p.token, "execution_id": p.execution_id} for p in pods
        ],
    }
    assert child.stdin is not None
    child.stdin.write(json.dumps(config).encode() + b"\n")
    await child.stdin.drain()


async def read_child_line(child: asyncio.subprocess.Process, within: float) -> str:
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), within)
    if not line:
        raise BenchError(f"the load generator exited early (status {await child.wait()})")
    return line.decode().strip()


@dataclass(slots=True)
class Observed:
    """The raw measurements of one run, before they are summarised."""

    run_id: str
    baseline: dict[str, Any]
    generator: dict[str, Any] = field(default_factory=dict)
    """The load generator's report (per pod: sent, acked, drops; ack and queue times)."""
    samples: list[dict[str, float]] = field(default_factory=list)
    followers: list[Follower] = field(default_factory=list)
    subscriber_errors: list[str] = field(default_factory=list)
    logged: LogCount | None = None
    load_wall: float = 0.0
    tail_seconds: float = 0.0
    machine_busy: float | None = None
    own_cpu: float = 0.0
    server_pid: int = 0
    server_exit_status: int | None = None


async def measure(plan: Plan, database_url: str, folder: Path) -> Observed:
    """Baseline, then the server under load; everything started is stopped at the end."""
    run_id = secrets.token_hex(3)
    baseline_url = database_url
    baseline_tenant = BASELINE_TENANT
    if database_url.startswith("sqlite") and str(folder) in database_url:
        baseline_url = f"sqlite:///{folder / 'baseline.db'}"  # a fresh file of its own
    note(
        f"baseline: {plan.sessions} producers x {plan.batch} events per append, straight into"
        f" the store, {plan.baseline_seconds:g} s"
    )
    seen = Observed(run_id, await baseline(baseline_url, baseline_tenant, plan, run_id))
    note(f"baseline: {seen.baseline['events_per_s']:,} events/s")

    pods = identities(run_id, plan.sessions)
    await register_pods(database_url, pods)
    server = Server.start(folder / "data", database_url)
    seen.server_pid = server.pid
    child: asyncio.subprocess.Process | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        child = await spawn_generator()
        await asyncio.get_running_loop().run_in_executor(None, server.wait_ready)
        note(f"server pid {server.pid} at {server.url}")
        async with CanopyClient(server.url, server.token) as client:
            head = (await client.health())["head"]
            delivery = Delivery()
            seen.followers = followers = [
                Follower(
                    [p.stream for p in pods[k::SUBSCRIBERS]],
                    f"execution/marker-{run_id}-{k}",
                    delivery,
                )
                for k in range(min(SUBSCRIBERS, len(pods)))
            ]
            tasks = [asyncio.create_task(f.follow(client, head)) for f in followers]
            await client.append(
                [marker_event(f.marker, f"marker-{run_id}-{k}") for k, f in enumerate(followers)]
            )
            async with asyncio.timeout(LINK_TIMEOUT_S):
                await asyncio.gather(*(f.live.wait() for f in followers))
            note(f"{len(followers)} subscribers live; linking {plan.sessions} pods")

            await configure_generator(child, server, pods, plan)
            linked = await read_child_line(child, LINK_TIMEOUT_S + plan.sessions * 0.5)
            if linked != "linked":
                raise BenchError(f"the load generator said {linked!r}")
            note(
                f"load: {plan.sessions} sessions x {plan.rate} events/s ="
                f" {plan.offered_rate:,} events/s offered, {plan.seconds:g} s"
            )
            sampler = Sampler(server.pid, seen.samples)
            machine_before = machine_busy_seconds()
            own_before = time.process_time()
            sampler.started = time.monotonic()

            def delivered() -> int:
                return delivery.count

            sampler.take(delivered())
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            finished = asyncio.create_task(
                read_child_line(child, plan.seconds + plan.drain_seconds + 30)
            )
            every = 2 if plan.seconds <= 10 else 10
            while not finished.done():
                await asyncio.wait({finished}, timeout=1.0)
                sample = sampler.take(delivered())
                second = len(sampler.samples) - 1
                if not finished.done() and second % every == 0:
                    previous = sampler.samples[-1 - every]
                    cpu = (sample["cpu_s"] - previous["cpu_s"]) / (sample["t"] - previous["t"])
                    rate = (sample["delivered"] - previous["delivered"]) / (
                        sample["t"] - previous["t"]
                    )
                    note(
                        f"server: t={second} s CPU {cpu * 100:.0f}% RSS"
                        f" {sample['rss_mb']:.0f} MB; delivered {int(sample['delivered']):,}"
                        f" ({rate:,.0f}/s)"
                    )
            seen.load_wall = time.monotonic() - sampler.started
            seen.generator = report = json.loads(finished.result())
            if "error" in report:
                raise BenchError(f"load generator: {report['error']}")
            await child.wait()
            sent = sum(pod["sent"] for pod in report["pods"])
            acked = sum(pod["acked"] for pod in report["pods"])
            note(f"pods done: {sent:,} sent, {acked:,} acknowledged; waiting for the subscribers")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(plan.drain_seconds):
                    await delivery.until(sent)
            seen.tail_seconds = time.monotonic() - sampler.started - seen.load_wall
            sampler.take(delivered())
            machine_after = machine_busy_seconds()
            if machine_before is not None and machine_after is not None:
                seen.machine_busy = machine_after - machine_before
            seen.own_cpu = time.process_time() - own_before
            for task in tasks:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):
                    seen.subscriber_errors.append(f"{type(outcome).__name__}: {outcome}")
        stop = asyncio.get_running_loop().run_in_executor(None, server.stop)
        seen.server_exit_status = await stop
        note("server stopped; counting events per stream in the log")
        seen.logged = await count_in_log(database_url, pods)
    except BaseException:
        if tail := server.log_tail():
            console.print(f"[dim]server log:\n{tail}[/dim]")
        raise
    finally:
        for task in tasks:
            task.cancel()
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            await child.wait()
        server.stop()
    return seen


def analyse(plan: Plan, seen: Observed) -> dict[str, Any]:
    """What the numbers say."""
    report, logged, samples = seen.generator, seen.logged, seen.samples
    assert logged is not None
    load = [s for s in samples if s["t"] <= seen.load_wall + 0.5]
    server_cpu = load[-1]["cpu_s"] - load[0]["cpu_s"]
    load_seconds = load[-1]["t"] - load[0]["t"]
    received: Counter[str] = Counter()
    histogram = Histogram()
    for follower in seen.followers:
        received.update(follower.received)
        histogram.merge(follower.histogram)
    per_stream = []
    for pod in report["pods"]:
        stream = pod["stream"]
        per_stream.append(
            {
                **pod,
                "in_log": logged.pod_events[stream],
                "delivered": received[stream],
                "due": round(plan.rate * plan.seconds),
            }
        )
    sent = sum(p["sent"] for p in per_stream)
    in_log = sum(p["in_log"] for p in per_stream)
    mismatched = [p for p in per_stream if not p["sent"] == p["acked"] == p["in_log"]]
    timeline = report["acked_per_second_cumulative"]
    per_second = [b - a for a, b in zip([0, *timeline], timeline, strict=False)]
    steady = sorted(per_second[1:-1]) or sorted(per_second)
    other = None
    generator_cpu = report["cpu_s"]
    if seen.machine_busy is not None:
        wall = seen.load_wall + seen.tail_seconds
        others = seen.machine_busy - server_cpu - generator_cpu - seen.own_cpu
        other = round(max(0.0, others) / wall, 2)
    sustained = in_log / report["load_seconds"] if report["load_seconds"] else 0.0
    events_due = round(plan.rate * plan.seconds) * plan.sessions
    baseline_rate = seen.baseline["events_per_s"]
    return {
        "run_id": seen.run_id,
        "baseline": seen.baseline,
        "server_pid": seen.server_pid,
        "server_exit_status": seen.server_exit_status,
        "events": {
            "due": events_due,
            "sent": sent,
            "accepted": sum(p["acked"] for p in per_stream),
            "in_log": in_log,
            "delivered_to_subscribers": histogram.count,
            "unsent_backlog": events_due - sent,
            "ok": not mismatched and sent > 0,
            "streams": len(per_stream),
            "streams_mismatched": len(mismatched),
            "mismatches": mismatched[:10],
            "streams_log_differs_from_sent": sum(p["in_log"] != p["sent"] for p in per_stream),
            "log_vs_sent_note": "0 means nothing sent was lost or doubled in the log, even"
            " where acks were lost with a dropped link",
            "pod_errors": [p["error"] for p in per_stream if p["error"]][:10],
            "frames": report["frames"],
            "control_calls_answered": report["calls_answered"],
            "link_drops": report["link_drops"],
            "link_drop_reasons": report["link_drop_reasons"],
            "resent_events": report["resent_events"],
            "unfinished_pods": report["unfinished_pods"],
            "pods_declared_dead_by_server": logged.pods_failed,
            "server_written_events": logged.server_events,
            "server_written_delivered": sum(f.server_written for f in seen.followers),
            "subscriber_errors": seen.subscriber_errors,
        },
        "latency_ms": {
            "end_to_end": histogram.summary(),
            "what": "pod's time_us when its batch was built -> subscriber iterates the event",
            "ack_round_trip": report["ack_round_trip_ms"],
            "pod_queue": report["pod_queue_ms"],
            "pod_queue_what": "event due -> its batch sent: waiting in the pod for the"
            " previous batch's ack (the tick alone makes up to 50 ms)",
        },
        "throughput": {
            "offered_per_s": plan.offered_rate,
            "sustained_per_s": round(sustained),
            "sustained_fraction_of_offered": round(sustained / plan.offered_rate, 3),
            "acked_per_second": {
                "min": steady[0] if steady else None,
                "median": steady[len(steady) // 2] if steady else None,
                "max": steady[-1] if steady else None,
                "timeline": per_second,
            },
            "load_seconds": report["load_seconds"],
            "baseline_per_s": baseline_rate,
            "server_fraction_of_baseline": round(sustained / baseline_rate, 3)
            if baseline_rate
            else None,
            "saturated": events_due > in_log or report["load_seconds"] > plan.seconds + 1.0,
            "fraction_note": "sustained / baseline says what the server path achieves of"
            " the raw store only when saturated; otherwise it is bounded by the offered load",
            "server_cpu_ms_per_1k_events": round(server_cpu / in_log * 1e6, 1) if in_log else None,
            "baseline_cpu_ms_per_1k_events": seen.baseline["cpu_ms_per_1k_events"],
        },
        "server": {
            "rss": rss_report(samples, plan.seconds),
            "cpu_percent_of_one_core": round(server_cpu / load_seconds * 100, 1)
            if load_seconds > 0
            else None,
            "cpu_timeline_percent": [
                round((b["cpu_s"] - a["cpu_s"]) / (b["t"] - a["t"]) * 100)
                for a, b in itertools.pairwise(load)
                if b["t"] - a["t"] >= 0.5
            ],
        },
        "cpu": {
            "cores": os.cpu_count(),
            "server_s": round(server_cpu, 2),
            "load_generator_s": round(generator_cpu, 2),
            "subscribers_and_sampler_s": round(seen.own_cpu, 2),
            "other_cores": other,
            "load_wall_s": round(seen.load_wall, 2),
            "delivery_tail_s": round(seen.tail_seconds, 2),
            "note": "server, load generator (all pods, one process) and subscribers share"
            " these cores",
        },
    }


def targets(results: Mapping[str, Any], plan: Plan) -> list[dict[str, Any]]:
    latency = results.get("latency_ms", {}).get("end_to_end") or {}
    events = results.get("events", {})
    throughput = results.get("throughput", {})
    rss = (results.get("server") or {}).get("rss") or {}
    return [
        {
            "name": "accepted = sent = in the log, per stream",
            "pass": events.get("ok"),
        },
        {
            "name": f"end-to-end p99 <= {LATENCY_P99_TARGET_MS:g} ms",
            "measured_ms": latency.get("p99"),
            "pass": latency.get("p99") is not None and latency["p99"] <= LATENCY_P99_TARGET_MS,
        },
        {
            "name": "kept up: every event due was sent and acknowledged, within 1 s of the end",
            "measured": throughput.get("sustained_fraction_of_offered"),
            "pass": events.get("unsent_backlog") == 0
            and events.get("accepted") == events.get("due")
            and (throughput.get("load_seconds") or math.inf) <= plan.seconds + 1.0,
        },
        {"name": "server RSS flat", "pass": rss.get("flat")},
    ]


def run(plan: Plan, database_url: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    quietness = idle_check()
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="canopy-server-load-") as name:
        folder = Path(name)
        url = database_url or f"sqlite:///{folder / 'events.db'}"
        try:
            results = analyse(plan, asyncio.run(measure(plan, url, folder)))
        except Exception as error:
            console.print(f"[red]{error!r}[/red]\n{traceback.format_exc()}")
            errors["measurement"] = f"{type(error).__name__}: {error}"
            results = {}
    found_targets = targets(results, plan) if results else []
    return {
        "benchmark": "canopy-server-load",
        "mode": plan.mode,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            **quietness,
        },
        "code": code_version(),
        "plan": {**asdict(plan), "offered_per_s": plan.offered_rate, "tick_ms": TICK_S * 1000},
        "store": "sqlite (fresh file)" if database_url is None else _redacted(database_url),
        **results,
        "targets": found_targets,
        "all_targets_pass": bool(found_targets) and all(t["pass"] for t in found_targets),
        "errors": errors,
        "duration_s": round(time.perf_counter() - started, 2),
    }


def _redacted(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.partition(':')[0]}:***@{tail}"


def print_summary(report: Mapping[str, Any]) -> None:
    events = report.get("events")
    if events:
        console.print(
            f"events: due {events['due']:,}, sent {events['sent']:,}, accepted"
            f" {events['accepted']:,}, in the log {events['in_log']:,}, delivered"
            f" {events['delivered_to_subscribers']:,}; unsent backlog {events['unsent_backlog']:,}"
            f"; {'OK' if events['ok'] else 'MISMATCH'}"
        )
        latency = report["latency_ms"]
        for label, key in (("end-to-end", "end_to_end"), ("ack RTT", "ack_round_trip")):
            summary = latency[key]
            if summary:
                console.print(
                    f"{label}: p50 {summary['p50']:.1f} / p99 {summary['p99']:.1f} / max"
                    f" {summary['max']:.1f} ms"
                )
        if latency["pod_queue"]:
            queue = latency["pod_queue"]
            console.print(f"pod queue: p50 {queue['p50']:.1f} / p99 {queue['p99']:.1f} ms")
        throughput = report["throughput"]
        console.print(
            f"throughput: offered {throughput['offered_per_s']:,}/s, sustained"
            f" {throughput['sustained_per_s']:,}/s; baseline (store alone)"
            f" {throughput['baseline_per_s']:,}/s"
        )
        server = report["server"]
        rss = server["rss"] or {}
        console.print(
            f"server: CPU {server['cpu_percent_of_one_core']}% of one core; RSS first"
            f" {rss.get('first_mb')} / last {rss.get('last_mb')} / max {rss.get('max_mb')} MB,"
            f" {'flat' if rss.get('flat') else 'NOT flat'}"
        )
        cpu = report["cpu"]
        console.print(
            f"cpu seconds: server {cpu['server_s']}, load generator {cpu['load_generator_s']},"
            f" subscribers {cpu['subscribers_and_sampler_s']}; other {cpu['other_cores']} cores"
            f" ({cpu['cores']} cores in all)"
        )
    for target in report["targets"]:
        mark = "[green]PASS[/green]" if target["pass"] else "[red]FAIL[/red]"
        console.print(f"{mark} {target['name']}")
    for name, error in report["errors"].items():
        console.print(f"[red]{name}: {error}[/red]")
    console.print(f"took {report['duration_s']:.1f} s")


# -- entry points ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 x 200 ev/s x 8 s, < 30 s")
    parser.add_argument("--sessions", type=int, help="concurrent debug sessions (default 100)")
    parser.add_argument("--rate", type=int, help="events/s per session (default 1000)")
    parser.add_argument("--seconds", type=float, help="load duration (default 60)")
    parser.add_argument(
        "--database-url", help="the server's log (default: a fresh SQLite file in a temp dir)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    for name in ("sessions", "rate", "seconds"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be positive")
    return args


def plan_of(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    changes = {
        name: getattr(args, name)
        for name in ("sessions", "rate", "seconds")
        if getattr(args, name) is not None
    }
    if not changes:
        return plan
    return Plan(
        mode=f"{plan.mode}-custom",
        sessions=changes.get("sessions", plan.sessions),
        rate=changes.get("rate", plan.rate),
        seconds=changes.get("seconds", plan.seconds),
        baseline_seconds=plan.baseline_seconds,
        drain_seconds=plan.drain_seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == CHILD_FLAG:
        return child_entry()
    args = parse_args(argv)
    report = run(plan_of(args), args.database_url)
    print_summary(report)
    emit_report(report, args.out)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
