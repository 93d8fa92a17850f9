"""Benchmark of what Canopy's debug engine costs a running behaviour tree, and of time travel.

What is measured, and why
-------------------------
The engine (``server/runtime/engine.py``) runs a py_trees tree in its own thread, drives
``root.tick()`` itself and records every status change and blackboard write into the event log.
The promise to users is that a tree under Canopy, with nothing to stop for, costs about what
the same tree costs without it. This benchmark checks that promise on generated trees of 10, 100
and 1,000 nodes (:func:`tree_10`, :func:`tree_100`, :func:`tree_1000`, loaded by the engine as
``bench/runtime_overhead.py:tree_100`` etc.).

The trees: a root ``Parallel`` of a few ``Repeat`` loops, each over a random (seeded, so always
the same) mix of ``Sequence`` and ``Selector`` composites, with and without memory, and a few
decorators (``Inverter``, ``FailureIsSuccess``, ``FailureIsRunning``). Leaves are ``Check``
conditions (their usual status, the other one for one to three updates in every 60 to 240;
about a quarter read a blackboard key every fourth update) and ``Act`` actions (RUNNING for 10
to 80 updates, then SUCCESS, or FAILURE every fifth or ninth run; about a third write a
blackboard key every 10 updates and when they finish). Everything is deterministic (update
counters, no clock): every run of a tree does the same work. A characterization pass under the
engine reports what this produces: about 3%, 5% and 8% of node visits change a status (10, 100
and 1,000 nodes), i.e. 2.3, 3.2 and 11 events per tick, of which two are always the tick's
``TickStarted`` and ``TickCompleted`` (exact figures in ``sizes.N.tree`` of the JSON). Events per
tick are what the log's cost scales with.

Costs are **CPU seconds of the whole process** (``time.process_time()`` deltas), which include
the tick thread, the event loop that flushes the recorder, and SQLite's threads: the honest
cost of running under Canopy.

1. **Baseline**: ``py_trees.trees.BehaviourTree(root).tick()`` in a loop, ``N`` ticks, on a
   fresh copy of the tree. ``N`` is calibrated per tree size so that a baseline run costs at
   least 0.4 s of CPU in full mode, and the cheapest variant's run at least 0.3 s (per-tick
   costs estimated from the warm-up runs); a multiple of 100 ticks, the snapshot interval.
2. **Variants**, each run between two baselines (``B V1 B V2 B ...``; the order of the
   variants rotates between repetitions). A variant's ratio is its CPU over the mean of the two
   baselines around it; the report gives the median, min and max over the repetitions.

   - ``engine_sqlite`` (a): ``InProcessControl.launch`` in auto mode, verbose capture, into a
     SQLite event log (a fresh file per run in a temporary folder), up to ``wait_for_end``
     (the thread ended and every event is flushed). Target: ratio <= 1.05.
   - ``engine_sqlite_breakpoints`` (b): the same with ten conditional breakpoints whose
     condition is false (``tick < 0``) on the ten most visited nodes, alternately ``before``
     and ``after``. Target: ratio <= 1.10.
   - ``engine_no_log`` (c): ``Execution`` built directly with a recorder whose ``record`` does
     nothing (verbose capture: the engine still builds every payload), ``start()``/``join()``.
     Target: ratio <= 1.00.
   - For scale, no target: ``snapshot_visitor``, the baseline with py_trees' own
     ``SnapshotVisitor`` attached, and ``raw_tick_generator``, a bare ``for _ in root.tick():
     pass`` loop: what the engine drives. ``BehaviourTree.tick`` costs more than that (it also
     walks the whole tree every tick for "full" visitors), which the engine saves.

   **Two ratios.** Each engine run is timed in two parts: the *launch* (loading the tree and
   building the execution: ``load_tree`` and ``Execution(...)`` for (c); for (a) and (b)
   ``InProcessControl.launch`` with ``stop_on_entry``) and the *tick path*, from the built
   execution to the end with every event flushed (for (a) and (b): setting the breakpoints
   while stopped on entry, ``resume`` and ``wait_for_end``).
   ``ratio`` is the tick path alone; ``ratio_from_launch`` is the same run's launch plus tick
   path over the same baselines, the issue's "from the launch call to ``wait_for_end``". Both
   are checked against the targets and reported per run (``launch_cpu_s`` is the median launch
   CPU). The engine remembers each class's source location (``class_kinds.class_location``),
   and the tree's module stays imported, so every launch here but a process's first of a class
   is what a user relaunching a tree pays; the first ones happen in the characterization and
   warm-up runs, which are not counted.
   After each logged run, the recorded history is read back (:func:`history_problem`: the
   ``ExecutionHistory.summary``, then the state at the last tick, whose tree must hold every
   node: the ``ExecutionStarted`` of ``tree_1000`` is a large event); a run whose history cannot
   be read is counted in ``history_unreadable_runs`` (out of ``history_checked_runs``), the
   first reason given in ``history_problem``.
3. **Jumps**: one verbose execution of ``tree_10`` recorded in SQLite (100,000 ticks; quick
   mode 10,000), timed; then 200 (quick: 50) ``ExecutionHistory.state_at_tick(t)`` for ticks
   ``t`` drawn with a fixed seed, on one history object, in wall-clock milliseconds. The first
   (cold) jump is also reported apart: it builds the history's index. Target: p99 <= 50 ms.

Targets are evaluated from the measurements (medians), never written in.

Run it from the repository root::

    .venv/bin/python bench/runtime_overhead.py --quick      # < 30 s
    .venv/bin/python bench/runtime_overhead.py              # full mode, a few minutes
    .venv/bin/python bench/runtime_overhead.py --sizes 10,100 --no-jumps --out result.json

A readable summary and progress go to stderr; the last line of stdout is one JSON object with
the machine, the mode, the per-size results and the targets. Temporary files live in one
temporary folder, removed at the end even on error. The exit status is 1 when a measurement
failed (not when a target is missed). The machine is often shared: every sample carries
``other_cores``, the CPU other processes used meanwhile, to judge how noisy it was; warnings
and errors the engine logs are shown once each and counted in ``log_messages``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import math
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

import py_trees
from measure import emit_report, machine_busy_seconds, percentile
from py_trees.behaviour import Behaviour
from py_trees.blackboard import Blackboard
from py_trees.common import Access, ParallelPolicy, Status
from rich.console import Console
from rich.table import Table

from canopy.bridge import EventStore, open_store
from canopy.server.runtime.breakpoints import BreakpointSpec, Position
from canopy.server.runtime.control import LaunchSpec
from canopy.server.runtime.definition import load_tree
from canopy.server.runtime.engine import SNAPSHOT_EVERY, CaptureLevel, Execution, Mode
from canopy.server.runtime.history import ExecutionHistory
from canopy.server.runtime.inprocess import InProcessControl

SCRIPT: Final = Path(__file__).resolve()
REPO: Final = SCRIPT.parent.parent
PROGRAM_DIR: Final = SCRIPT.relative_to(REPO).as_posix()  # bench/runtime_overhead.py
SIZES: Final = (10, 100, 1000)
SEED: Final = 20_240_601
JUMP_SEED: Final = 7
JUMP_TREE: Final = 10
TENANT: Final = "bench"
KEY_PREFIX: Final = "/bench"
BREAKPOINTS: Final = 10
FALSE_CONDITION: Final = "tick < 0"
ROUND_TICKS: Final = SNAPSHOT_EVERY  # tick counts are multiples of the snapshot interval

console = Console(
    stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160
)


# -- the trees -------------------------------------------------------------------------------


class Check(Behaviour):
    """A condition: ``normally`` the same status, the other one for ``flip`` updates in every
    ``period``; with ``read_key``, reads it every fourth update (and flips when it is 6 mod 7)."""

    def __init__(
        self, name: str, *, period: int, flip: int, normally: Status, read_key: str | None
    ) -> None:
        super().__init__(name)
        self.period = period
        self.flip = flip
        self.normally = normally
        self.other = Status.FAILURE if normally is Status.SUCCESS else Status.SUCCESS
        self.updates = 0
        self.read_key = read_key
        if read_key is not None:
            self.blackboard = self.attach_blackboard_client(name)
            self.blackboard.register_key(read_key, access=Access.READ)

    def update(self) -> Status:
        self.updates += 1
        if (
            self.read_key is not None
            and self.updates % 4 == 0
            and self.blackboard.get(self.read_key) % 7 == 6
        ):
            return self.other
        return self.other if self.updates % self.period < self.flip else self.normally


class Act(Behaviour):
    """An action: RUNNING for ``duration - 1`` updates, then SUCCESS (FAILURE on every
    ``fail_every``-th run); with ``write_key``, writes its progress there every
    :data:`PROGRESS_EVERY` updates and its run count when it finishes."""

    def __init__(self, name: str, *, duration: int, fail_every: int, write_key: str | None) -> None:
        super().__init__(name)
        self.duration = duration
        self.fail_every = fail_every
        self.progress = 0
        self.runs = 0
        self.write_key = write_key
        if write_key is not None:
            self.blackboard = self.attach_blackboard_client(name)
            self.blackboard.register_key(write_key, access=Access.WRITE)

    def initialise(self) -> None:
        self.progress = 0
        self.runs += 1

    def update(self) -> Status:
        self.progress += 1
        if self.progress < self.duration:
            if self.write_key is not None and self.progress % PROGRESS_EVERY == 0:
                self.blackboard.set(self.write_key, self.progress)
            return Status.RUNNING
        if self.write_key is not None:
            self.blackboard.set(self.write_key, self.runs)
        if self.fail_every and self.runs % self.fail_every == 0:
            return Status.FAILURE
        return Status.SUCCESS


PROGRESS_EVERY: Final = 10
DECORATORS: Final = (
    py_trees.decorators.FailureIsSuccess,
    py_trees.decorators.Inverter,
    py_trees.decorators.FailureIsRunning,
)


class TreeMaker:
    """Grows a tree of exactly ``size`` nodes from a seeded random generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.count = 0
        self.keys: list[str] = []

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def tree(self, size: int) -> Behaviour:
        """Root ``Parallel`` over ``Repeat`` loops (never ends: the engine runs to max_ticks)."""
        branches = max(1, round(math.sqrt(size) / 3))
        root = py_trees.composites.Parallel(
            "root", policy=ParallelPolicy.SuccessOnAll(synchronise=False)
        )
        left = size - 1
        for index in range(branches):
            share = left // (branches - index)
            left -= share
            body = self.grow(share - 2)
            guard = py_trees.decorators.FailureIsSuccess(self.name("keep"), child=body)
            root.add_child(
                py_trees.decorators.Repeat(self.name("loop"), child=guard, num_success=-1)
            )
        return root

    def grow(self, budget: int) -> Behaviour:
        """A subtree of exactly ``budget`` nodes (>= 1)."""
        rng = self.rng
        if budget == 1:
            return self.leaf("act" if rng.random() < 0.7 else "check")
        if budget == 2:
            return self.decorate(self.leaf("act"))
        composite: Behaviour
        if rng.random() < 0.55:
            composite = py_trees.composites.Sequence(self.name("seq"), memory=rng.random() < 0.5)
            first = self.leaf("check")
        else:
            composite = py_trees.composites.Selector(self.name("sel"), memory=rng.random() < 0.3)
            first = self.leaf("guard")
        rest = budget - 2
        width = min(rest, rng.randint(1, 4))
        children = [first]
        for share in self.split(rest, width):
            if share >= 3 and rng.random() < 0.1:
                children.append(self.decorate(self.grow(share - 1)))
            else:
                children.append(self.grow(share))
        composite.add_children(children)
        return composite

    def leaf(self, role: str) -> Behaviour:
        rng = self.rng
        if role == "act":
            key = None
            if rng.random() < 0.3:
                key = f"{KEY_PREFIX}/out{len(self.keys)}"
                self.keys.append(key)
            return Act(
                self.name("act"),
                duration=rng.randint(10, 80),
                fail_every=rng.choice((0, 0, 5, 9)),
                write_key=key,
            )
        read_key = rng.choice(self.keys) if self.keys and rng.random() < 0.25 else None
        return Check(
            self.name(role),
            period=rng.randint(60, 240),
            flip=rng.randint(1, 3) if role == "guard" else 1,
            normally=Status.FAILURE if role == "guard" else Status.SUCCESS,
            read_key=read_key,
        )

    def decorate(self, child: Behaviour) -> Behaviour:
        decorator = self.rng.choice(DECORATORS)
        return decorator(name=self.name("dec"), child=child)

    def split(self, total: int, parts: int) -> list[int]:
        """``total`` as ``parts`` positive random shares."""
        cuts = sorted(self.rng.sample(range(1, total), parts - 1)) if parts > 1 else []
        edges = [0, *cuts, total]
        return [b - a for a, b in itertools.pairwise(edges)]


def make_tree(size: int) -> Behaviour:
    """A fresh tree of ``size`` nodes (the same one every time for the same size)."""
    return TreeMaker(SEED + size).tree(size)


def tree_10() -> Behaviour:
    """Factory ``bench/runtime_overhead.py:tree_10``."""
    return make_tree(10)


def tree_100() -> Behaviour:
    """Factory ``bench/runtime_overhead.py:tree_100``."""
    return make_tree(100)


def tree_1000() -> Behaviour:
    """Factory ``bench/runtime_overhead.py:tree_1000``."""
    return make_tree(1000)


FACTORIES: Final[Mapping[int, Callable[[], Behaviour]]] = {
    10: tree_10,
    100: tree_100,
    1000: tree_1000,
}


@cache
def initial_blackboard(size: int) -> dict[str, int]:
    """The keys the tree of ``size`` reads and writes, all 0: the launch blackboard."""
    maker = TreeMaker(SEED + size)
    maker.tree(size)
    return dict.fromkeys(maker.keys, 0)


def program(size: int) -> str:
    """The factory reference of a tree, relative to the repository root."""
    return f"{PROGRAM_DIR}:{FACTORIES[size].__name__}"


# -- recorders for the engine alone ----------------------------------------------------------


class NullRecorder:
    """Stands in for ``EventRecorder``: ``record`` does nothing (variant c). Its ``loop`` is
    none: the benchmark's trees hold no agents, which alone would run calls on it."""

    written = 0
    dropped = 0
    loop = None

    def record(self, event_type: str, payload: dict[str, Any]) -> None:
        """Forget the event."""


class CountingRecorder:
    """Counts events by type (the characterization pass); no loop, as :class:`NullRecorder`."""

    loop = None

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def record(self, event_type: str, payload: dict[str, Any]) -> None:
        """Count the event."""
        self.counts[event_type] += 1


# -- measurement helpers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clock:
    """Process CPU, wall time and the machine's busy CPU at one instant."""

    cpu: float
    wall: float
    machine: float | None

    @classmethod
    def now(cls) -> Clock:
        return cls(time.process_time(), time.perf_counter(), machine_busy_seconds())


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed run."""

    cpu_s: float
    wall_s: float
    other_cores: float | None  # CPU others used meanwhile, in cores (noise indicator)

    @classmethod
    def between(cls, start: Clock, end: Clock) -> Sample:
        cpu, wall = end.cpu - start.cpu, end.wall - start.wall
        other = None
        if start.machine is not None and end.machine is not None and wall > 0:
            other = round(max(0.0, end.machine - start.machine - cpu) / wall, 2)
        return cls(cpu, wall, other)

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_s": round(self.cpu_s, 5),
            "wall_s": round(self.wall_s, 5),
            "other_cores": self.other_cores,
        }


def spread(values: Sequence[float], digits: int = 4) -> dict[str, float]:
    """Median, min and max."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


class OnceHandler(logging.Handler):
    """Shows each kind of warning or error of the engine's loggers once (every run of a tree
    repeats them; numbers are ignored when comparing) and counts them all."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = f"{record.name}: {record.getMessage()}"
        kind = re.sub(r"\d+", "#", message)  # the same message about other ids or sizes
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            console.print(f"[red]{message}[/red] [dim](shown once, counted)[/dim]")


@contextmanager
def engine_logs(handler: OnceHandler) -> Iterator[None]:
    """Route the warnings of ``server`` and ``bridge`` to ``handler`` for the duration."""
    loggers = [logging.getLogger(name) for name in ("canopy.server", "canopy.bridge")]
    saved = [(logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, (propagate, level) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)


def note(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


class BenchError(RuntimeError):
    """A run did not do what it was asked (wrong tick count, unverified breakpoint...)."""


def reset_blackboard(size: int | None = None) -> None:
    """Forget py_trees' process-global blackboard (values, clients, key metadata) between runs
    (nothing ticks then), and seed the keys of the tree of ``size`` for a baseline run."""
    Blackboard.clear()
    if size is not None:
        Blackboard.storage.update(initial_blackboard(size))


def quiesce() -> None:
    """Start every timed run with no garbage left by the previous one."""
    gc.collect()


DATABASE_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")


def remove_database(path: Path) -> None:
    """Delete a SQLite database and its side files."""
    for suffix in DATABASE_SUFFIXES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def database_bytes(path: Path) -> int:
    """Size of a SQLite database with its side files."""
    files = (Path(f"{path}{suffix}") for suffix in DATABASE_SUFFIXES)
    return sum(f.stat().st_size for f in files if f.exists())


# -- the runs --------------------------------------------------------------------------------


def run_baseline(size: int, ticks: int, *, visitor: bool = False) -> Sample:
    """``BehaviourTree(root).tick()`` ``ticks`` times (optionally with a SnapshotVisitor)."""
    reset_blackboard(size)
    tree = py_trees.trees.BehaviourTree(FACTORIES[size]())
    if visitor:
        tree.add_visitor(py_trees.visitors.SnapshotVisitor())
    tick = tree.tick
    quiesce()
    start = Clock.now()
    for _ in range(ticks):
        tick()
    return Sample.between(start, Clock.now())


def run_raw_generator(size: int, ticks: int) -> Sample:
    """The loop the engine drives, with nothing in it: ``for _ in root.tick(): pass``."""
    reset_blackboard(size)
    root = FACTORIES[size]()
    quiesce()
    start = Clock.now()
    for _ in range(ticks):
        for _node in root.tick():
            pass
    return Sample.between(start, Clock.now())


@dataclass(frozen=True, slots=True)
class EngineRun:
    """A run of the engine: ``launch_cpu_s`` up to a built execution ready to tick (loading the
    tree; for the logged variants, launched and stopped on entry), then ``sample`` from there to
    the end with every event flushed (what is compared with the baseline)."""

    launch_cpu_s: float
    sample: Sample
    events: int | None = None
    problem: str | None = None  # the recorded history is unreadable (and why)


def run_engine_alone(
    size: int, ticks: int, recorder: NullRecorder | CountingRecorder | None = None
) -> tuple[EngineRun, Execution]:
    """Variant (c): load the tree, build an ``Execution`` with a do-nothing recorder, run it in
    auto mode for ``ticks`` ticks with ``start()``/``join()``."""
    reset_blackboard()
    quiesce()
    start = Clock.now()
    definition = load_tree(program(size), base_dir=REPO)
    execution = Execution(
        f"bench-{size}",
        definition,
        recorder or NullRecorder(),  # type: ignore[arg-type]
        mode=Mode.AUTO,
        max_ticks=ticks,
        capture=CaptureLevel.VERBOSE,
        blackboard=initial_blackboard(size),
    )
    ready = Clock.now()
    execution.start()
    execution.join()
    sample = Sample.between(ready, Clock.now())
    if execution.tick_count != ticks or execution.end_reason != "max_ticks":
        raise BenchError(
            f"engine alone on tree_{size}: {execution.tick_count} ticks, "
            f"ended {execution.end_reason!r} (wanted {ticks}, 'max_ticks')"
        )
    return EngineRun(ready.cpu - start.cpu, sample), execution


def launch_spec(size: int, ticks: int) -> LaunchSpec:
    """Auto mode, verbose capture, stopped on entry (so that the launch is timed apart)."""
    return LaunchSpec(
        program=program(size),
        mode=Mode.AUTO,
        max_ticks=ticks,
        capture=CaptureLevel.VERBOSE,
        blackboard=initial_blackboard(size),
        stop_on_entry=True,
        base_dir=str(REPO),
    )


async def run_engine_logged(
    size: int,
    ticks: int,
    directory: Path,
    breakpoints: Sequence[BreakpointSpec] = (),
) -> EngineRun:
    """Variants (a) and (b): ``InProcessControl.launch`` into a fresh SQLite log, stopped on
    entry; set the breakpoints, resume, ``wait_for_end`` (the thread ended and every event is
    in the log)."""
    path = directory / f"run-{uuid.uuid4().hex[:8]}.db"
    try:
        async with open_store(f"sqlite:///{path}") as store:
            control = InProcessControl(store, tenant_id=TENANT)
            try:
                reset_blackboard()
                quiesce()
                start = Clock.now()
                info = await control.launch(launch_spec(size, ticks))
                ready = Clock.now()
                views = await control.set_breakpoints(info.id, breakpoints) if breakpoints else []
                await control.resume(info.id)
                info = await control.wait_for_end(info.id)
                sample = Sample.between(ready, Clock.now())
                events = await store.last_offset()
                problem = await history_problem(store, info.id, ticks, size)
            finally:
                await control.close()
    finally:
        remove_database(path)
    if info.tick != ticks or info.end_reason != "max_ticks":
        raise BenchError(
            f"engine on tree_{size}: {info.tick} ticks, ended {info.end_reason!r} "
            f"(wanted {ticks}, 'max_ticks')"
        )
    verified = sum(1 for view in views if view.verified)
    if verified != len(breakpoints):
        raise BenchError(f"only {verified} of {len(breakpoints)} breakpoints verified")
    return EngineRun(ready.cpu - start.cpu, sample, events, problem)


async def history_problem(
    store: EventStore, execution_id: str, ticks: int, nodes: int
) -> str | None:
    """Why the recorded history of the run cannot be read back, or None when it can.

    Reads the summary (the ``ExecutionStarted`` with the whole tree, the last
    ``TickCompleted``, the ``ExecutionEnded``), then the state at the last tick, which must
    hold the tree's ``nodes`` nodes. The recorder drops an event the log refuses (one over the
    payload size limit, say) and the engine runs on: this is where that shows. Any exception
    while reading counts as a problem, not only ``HistoryError``.
    """
    try:
        history = ExecutionHistory(store, TENANT, execution_id)
        summary = await history.summary()
        if summary.ticks != ticks:
            return f"the history holds {summary.ticks} completed ticks, not {ticks}"
        if summary.ended != "max_ticks":
            return f"the history ends with {summary.ended!r}, not 'max_ticks'"
        state = await history.state_at_tick(ticks)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if len(state.tree) != nodes or len(state.statuses) != nodes:
        return (
            f"the state at tick {ticks} has {len(state.tree)} nodes and "
            f"{len(state.statuses)} statuses, not {nodes}"
        )
    return None


# -- plan ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of every phase for one mode."""

    mode: str
    baseline_cpu_s: float  # calibrate N so that a baseline run costs about this much CPU
    min_run_cpu_s: float  # ... and so that the cheapest variant's run costs at least this
    repetitions: int
    characterize_ticks: int
    warmup_ticks: int  # at most, per warm-up run of a variant
    idle_check_s: float
    jump_ticks: int
    jumps: int


QUICK: Final = Plan(
    mode="quick",
    baseline_cpu_s=0.03,
    min_run_cpu_s=0.02,
    repetitions=2,
    characterize_ticks=300,
    warmup_ticks=200,
    idle_check_s=0.5,
    jump_ticks=10_000,
    jumps=50,
)
FULL: Final = Plan(
    mode="full",
    baseline_cpu_s=0.4,
    min_run_cpu_s=0.3,
    repetitions=5,
    characterize_ticks=3_000,
    warmup_ticks=1_000,
    idle_check_s=1.0,
    jump_ticks=100_000,
    jumps=200,
)

VARIANTS: Final = (
    "engine_sqlite",
    "engine_sqlite_breakpoints",
    "engine_no_log",
    "snapshot_visitor",
    "raw_tick_generator",
)
ENGINE_VARIANTS: Final = ("engine_sqlite", "engine_sqlite_breakpoints", "engine_no_log")
TARGETS: Final = {  # variant -> highest median CPU ratio to the baseline
    "engine_sqlite": 1.05,
    "engine_sqlite_breakpoints": 1.10,
    "engine_no_log": 1.00,
}
JUMP_P99_MS: Final = 50.0


def calibrate(size: int, wanted_cpu_s: float) -> tuple[int, float]:
    """Ticks for a baseline run of about ``wanted_cpu_s`` CPU (a multiple of the snapshot
    interval), and the baseline's CPU per tick found on the way."""
    ticks = ROUND_TICKS
    while True:
        sample = run_baseline(size, ticks)
        if sample.cpu_s >= min(0.05, wanted_cpu_s / 2) or ticks >= 1_000_000:
            break
        ticks *= 2
    per_tick = sample.cpu_s / ticks
    wanted = max(ROUND_TICKS, math.ceil(wanted_cpu_s / per_tick / ROUND_TICKS) * ROUND_TICKS)
    return wanted, per_tick


# -- per tree size ---------------------------------------------------------------------------


def characterize(size: int, ticks: int) -> tuple[dict[str, Any], list[str]]:
    """What the tree does per tick under the engine (events by type, visits), and the ids of
    the :data:`BREAKPOINTS` most visited nodes (where breakpoints cost the most)."""
    recorder = CountingRecorder()
    _, execution = run_engine_alone(size, ticks, recorder)
    nodes = list(execution.nodes())
    visits_of = {node: execution.node_state(node)["visits"] for node in nodes}
    visits = sum(visits_of.values())
    counts = recorder.counts
    changes = counts["NodeStatusChanged"]
    writes = counts["BlackboardChanged"]
    ranked = sorted(nodes, key=lambda node: -visits_of[node])  # stable: pre-order on ties
    chosen = ranked[:BREAKPOINTS]
    info = {
        "nodes": len(nodes),
        "kinds": dict(sorted(Counter(type(node).__name__ for node in nodes).items())),
        "characterized_ticks": ticks,
        "visits_per_tick": round(visits / ticks, 2),
        "status_changes_per_tick": round(changes / ticks, 3),
        "status_changes_per_visit": round(changes / visits, 4),
        "blackboard_writes_per_tick": round(writes / ticks, 3),
        "events_per_tick": round(sum(counts.values()) / ticks, 3),
        "events_per_tick_by_type": {
            kind: round(n / ticks, 3) for kind, n in sorted(counts.items())
        },
        "breakpoint_evaluations_per_tick": round(
            sum(visits_of[node] for node in chosen) / ticks, 2
        ),
    }
    reset_blackboard()
    return info, [execution.node_id(node) for node in chosen]


def breakpoint_specs(node_ids: Sequence[str]) -> list[BreakpointSpec]:
    """False conditional breakpoints, ``before`` and ``after`` alternately."""
    return [
        BreakpointSpec(
            node=node_id,
            position=Position.BEFORE if index % 2 == 0 else Position.AFTER,
            condition=FALSE_CONDITION,
        )
        for index, node_id in enumerate(node_ids)
    ]


async def run_variant(
    name: str, size: int, ticks: int, directory: Path, specs: Sequence[BreakpointSpec]
) -> EngineRun:
    """One timed run of a variant (baseline-like variants have no launch)."""
    if name == "engine_sqlite":
        return await run_engine_logged(size, ticks, directory)
    if name == "engine_sqlite_breakpoints":
        return await run_engine_logged(size, ticks, directory, specs)
    if name == "engine_no_log":
        return run_engine_alone(size, ticks)[0]
    if name == "snapshot_visitor":
        return EngineRun(0.0, run_baseline(size, ticks, visitor=True))
    if name == "raw_tick_generator":
        return EngineRun(0.0, run_raw_generator(size, ticks))
    raise ValueError(name)


async def measure_size(size: int, plan: Plan, directory: Path) -> dict[str, Any]:
    note(f"[bold]tree_{size}[/bold]: characterizing ({plan.characterize_ticks} ticks)")
    tree, chosen = characterize(size, plan.characterize_ticks)
    note(
        f"tree_{size}: {tree['nodes']} nodes, {tree['visits_per_tick']} visits/tick, "
        f"{tree['status_changes_per_tick']} status changes/tick "
        f"({tree['status_changes_per_visit']:.1%} of visits), "
        f"{tree['blackboard_writes_per_tick']} blackboard writes/tick, "
        f"{tree['events_per_tick']} events/tick"
    )
    ticks, per_tick = calibrate(size, plan.baseline_cpu_s)
    specs = breakpoint_specs(chosen)
    warm_ticks = min(ticks, plan.warmup_ticks)
    note(f"tree_{size}: warm-up run of every variant ({warm_ticks:,} ticks)")
    cheapest = min(
        [
            (await run_variant(name, size, warm_ticks, directory, specs)).sample.cpu_s / warm_ticks
            for name in VARIANTS
        ]
    )
    enough = math.ceil(plan.min_run_cpu_s / cheapest / ROUND_TICKS) * ROUND_TICKS
    ticks = max(ticks, enough)
    note(
        f"tree_{size}: {ticks:,} ticks per run (baseline ~{per_tick * 1e6:.1f} us/tick, "
        f"~{per_tick * ticks:.2f} s CPU; the cheapest variant ~{cheapest * ticks:.2f} s)"
    )
    baselines: list[Sample] = []
    runs: dict[str, list[EngineRun]] = {name: [] for name in VARIANTS}
    ratios: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with_launch: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for rep in range(plan.repetitions):
        shift = rep % len(VARIANTS)
        before = run_baseline(size, ticks)
        baselines.append(before)
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            engine_run = await run_variant(name, size, ticks, directory, specs)
            after = run_baseline(size, ticks)
            baselines.append(after)
            reference = (before.cpu_s + after.cpu_s) / 2
            runs[name].append(engine_run)
            ratios[name].append(engine_run.sample.cpu_s / reference)
            with_launch[name].append(
                (engine_run.sample.cpu_s + engine_run.launch_cpu_s) / reference
            )
            before = after
        shown = "  ".join(f"{name} {ratios[name][-1]:.3f}" for name in VARIANTS)
        note(f"tree_{size}: repetition {rep + 1}/{plan.repetitions}: {shown}")
    baseline_cpu = statistics.median(s.cpu_s for s in baselines)
    variants: dict[str, Any] = {}
    for name in VARIANTS:
        samples = [r.sample for r in runs[name]]
        cpu = statistics.median(s.cpu_s for s in samples)
        entry: dict[str, Any] = {
            "ratio": spread(ratios[name]),
            "ratios": [round(r, 4) for r in ratios[name]],
            "median_cpu_s": round(cpu, 5),
            "us_per_tick": round(cpu / ticks * 1e6, 2),
            "samples": [s.to_json() for s in samples],
        }
        if name in ENGINE_VARIANTS:
            entry["ratio_from_launch"] = spread(with_launch[name])
            entry["ratios_from_launch"] = [round(r, 4) for r in with_launch[name]]
            entry["launch_cpu_s"] = round(statistics.median(r.launch_cpu_s for r in runs[name]), 5)
        written = [r.events for r in runs[name] if r.events is not None]
        if written:
            events = statistics.median(written)
            entry["events_written"] = int(events)
            entry["events_per_tick"] = round(events / ticks, 3)
            problems = [r.problem for r in runs[name] if r.problem]
            entry["history_checked_runs"] = len(runs[name])
            entry["history_unreadable_runs"] = len(problems)
            entry["history_problem"] = problems[0] if problems else None
            if problems:
                console.print(
                    f"[red]tree_{size} {name}: the recorded history of {len(problems)} of "
                    f"{len(runs[name])} runs cannot be read back: {problems[0]}[/red]"
                )
        variants[name] = entry
    return {
        "nodes": tree["nodes"],
        "ticks": ticks,
        "tree": tree,
        "baseline": {
            "median_cpu_s": round(baseline_cpu, 5),
            "us_per_tick": round(baseline_cpu / ticks * 1e6, 2),
            "samples": [s.to_json() for s in baselines],
        },
        "variants": variants,
        "costs": costs(variants, baseline_cpu, ticks, tree["breakpoint_evaluations_per_tick"]),
        "breakpoints": [
            {"node": s.node, "position": s.position.value, "condition": s.condition} for s in specs
        ],
        "other_cores_median": _median_noise(
            [*baselines, *(r.sample for r in itertools.chain(*runs.values()))]
        ),
    }


def costs(
    variants: Mapping[str, Any], baseline_cpu: float, ticks: int, evaluations: float
) -> dict[str, float]:
    """Where the time goes, in microseconds, from differences of medians: the event log per
    event written, the breakpoints per condition evaluated, the engine per tick over the bare
    ``root.tick()`` loop, and ``BehaviourTree.tick``'s own cost over that loop."""
    cpu = {name: variant["median_cpu_s"] for name, variant in variants.items()}
    events = variants["engine_sqlite"]["events_written"]
    log = cpu["engine_sqlite"] - cpu["engine_no_log"]
    breakpoints = cpu["engine_sqlite_breakpoints"] - cpu["engine_sqlite"]
    return {
        "log_us_per_event": round(log / events * 1e6, 2),
        "log_us_per_tick": round(log / ticks * 1e6, 2),
        "breakpoints_us_per_tick": round(breakpoints / ticks * 1e6, 2),
        "breakpoints_us_per_evaluation": round(breakpoints / ticks / evaluations * 1e6, 2),
        "engine_us_per_tick_over_raw_loop": round(
            (cpu["engine_no_log"] - cpu["raw_tick_generator"]) / ticks * 1e6, 2
        ),
        "behaviour_tree_tick_us_per_tick_over_raw_loop": round(
            (baseline_cpu - cpu["raw_tick_generator"]) / ticks * 1e6, 2
        ),
    }


def _median_noise(samples: Sequence[Sample]) -> float | None:
    values = [s.other_cores for s in samples if s.other_cores is not None]
    return round(statistics.median(values), 2) if values else None


# -- jumps -----------------------------------------------------------------------------------


async def measure_jumps(plan: Plan, directory: Path) -> dict[str, Any]:
    """Record a long verbose execution, then jump to random ticks on one history."""
    size, ticks = JUMP_TREE, plan.jump_ticks
    path = directory / "jumps.db"
    note(f"jumps: recording {ticks:,} ticks of tree_{size} into SQLite")
    async with open_store(f"sqlite:///{path}") as store:
        control = InProcessControl(store, tenant_id=TENANT)
        try:
            reset_blackboard()
            quiesce()
            start = Clock.now()
            info = await control.launch(
                LaunchSpec(
                    program=program(size),
                    mode=Mode.AUTO,
                    max_ticks=ticks,
                    capture=CaptureLevel.VERBOSE,
                    blackboard=initial_blackboard(size),
                    base_dir=str(REPO),
                )
            )
            info = await control.wait_for_end(info.id)
            recording = Sample.between(start, Clock.now())
            if info.tick != ticks:
                raise BenchError(f"recorded {info.tick} ticks, wanted {ticks}")
            events = await store.last_offset()
            note(
                f"jumps: recorded {events:,} events in {recording.wall_s:.1f} s "
                f"({recording.cpu_s:.1f} s CPU); {plan.jumps} jumps"
            )
            history = ExecutionHistory(store, TENANT, info.id)
            rng = random.Random(JUMP_SEED)
            targets = [rng.randint(1, ticks) for _ in range(plan.jumps)]
            latencies: list[float] = []
            for tick in targets:
                began = time.perf_counter()
                state = await history.state_at_tick(tick)
                latencies.append((time.perf_counter() - began) * 1000)
                if state.tick != tick or state.in_tick:
                    raise BenchError(f"state_at_tick({tick}) gave tick {state.tick}")
        finally:
            await control.close()
    size_mb = database_bytes(path)
    ordered = sorted(latencies)
    warm = sorted(latencies[1:]) or ordered
    return {
        "tree": f"tree_{size}",
        "ticks": ticks,
        "events": events,
        "events_per_tick": round(events / ticks, 3),
        "snapshot_every": SNAPSHOT_EVERY,
        "database_mb": round(size_mb / 1e6, 1),
        "recording": {
            **recording.to_json(),
            "ticks_per_s_wall": round(ticks / recording.wall_s, 1),
            "cpu_us_per_tick": round(recording.cpu_s / ticks * 1e6, 2),
        },
        "jumps": plan.jumps,
        "seed": JUMP_SEED,
        "latency_ms": {
            "p50": round(percentile(ordered, 50), 3),
            "p99": round(percentile(ordered, 99), 3),
            "max": round(ordered[-1], 3),
            "mean": round(statistics.fmean(ordered), 3),
            "first": round(latencies[0], 3),
            "p99_without_first": round(percentile(warm, 99), 3),
        },
    }


# -- targets and report ----------------------------------------------------------------------


def target(name: str, metric: str, threshold: float, measured: float | None) -> dict[str, Any]:
    """A goal: passed when the measurement is at most ``threshold``; ``pass`` is None when
    it was not measured (a size or phase left out, or the measurement failed)."""
    return {
        "name": name,
        "metric": metric,
        "op": "<=",
        "threshold": threshold,
        "measured": measured,
        "pass": None if measured is None else measured <= threshold,
    }


def evaluate_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every target against the measurements (``measured`` None: it was not measured).

    Each engine target is checked twice: on the tick path (``ratio``: from a built execution
    to the end, every event flushed), and as the issue words it, from the launch call
    (``ratio_from_launch``: the same runs with their launch counted)."""
    found: list[dict[str, Any]] = []
    for size, measured in results.get("sizes", {}).items():
        variants = measured.get("variants", {})
        for variant, threshold in TARGETS.items():
            entry = variants.get(variant, {})
            found.append(
                target(
                    f"tree_{size} {variant}: CPU ratio, tick path",
                    f"sizes.{size}.variants.{variant}.ratio.median",
                    threshold,
                    entry.get("ratio", {}).get("median"),
                )
            )
            found.append(
                target(
                    f"tree_{size} {variant}: CPU ratio, from the launch call",
                    f"sizes.{size}.variants.{variant}.ratio_from_launch.median",
                    threshold,
                    entry.get("ratio_from_launch", {}).get("median"),
                )
            )
    found.append(
        target(
            "state_at_tick jump p99 (ms)",
            "jumps.latency_ms.p99",
            JUMP_P99_MS,
            results.get("jumps", {}).get("latency_ms", {}).get("p99"),
        )
    )
    return found


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "py_trees": version("py_trees"),
        "sqlite": sqlite3.sqlite_version,
        "load_average": round(os.getloadavg()[0], 2),
    }


async def idle_check(seconds: float = 1.0) -> float | None:
    """Cores other processes keep busy before the run (the machine is shared)."""
    start = Clock.now()
    await asyncio.sleep(seconds)
    busy = Sample.between(start, Clock.now()).other_cores
    if busy is not None and busy > 0.2:
        console.print(
            f"[yellow]warning: other processes keep {busy:.2f} cores busy before the run;"
            " the numbers will be noisy[/yellow]"
        )
    return busy


def _ratio_cell(ratio: Mapping[str, float], limit: float | None) -> str:
    """``median [min-max]``, green or red against ``limit`` when there is one."""
    cell = f"{ratio['median']:.3f} [{ratio['min']:.2f}-{ratio['max']:.2f}]"
    if limit is None:
        return cell
    colour = "green" if ratio["median"] <= limit else "red"
    return f"[{colour}]{cell}[/{colour}]"


def print_summary(report: Mapping[str, Any]) -> None:
    table = Table(
        title=f"CPU time ratio to BehaviourTree.tick() ({report['mode']} mode): "
        "median \\[min-max] over repetitions; 'tick path:' from the built execution, "
        "'from launch:' the same runs from the launch call, 'launch:' median launch CPU",
        title_justify="left",
    )
    for column in ("tree", "ticks/run", "base us/tick", "events/tick"):
        table.add_column(column, justify="right")
    for name in VARIANTS:
        limit = TARGETS.get(name)
        table.add_column(name + (f" (<= {limit:.2f})" if limit else ""), justify="right")
    for size, result in report["sizes"].items():
        if "error" in result:
            table.add_row(f"tree_{size}", "error", result["error"])
            continue
        cells = []
        for name in VARIANTS:
            variant = result["variants"][name]
            limit = TARGETS.get(name)
            if limit is None:
                cells.append(_ratio_cell(variant["ratio"], None))
                continue
            cells.append(
                f"tick path: {_ratio_cell(variant['ratio'], limit)}\n"
                f"from launch: {_ratio_cell(variant['ratio_from_launch'], limit)}\n"
                f"launch: {variant['launch_cpu_s'] * 1000:.1f} ms"
            )
        table.add_row(
            f"{result['nodes']} nodes",
            f"{result['ticks']:,}",
            f"{result['baseline']['us_per_tick']:.1f}",
            f"{result['tree']['events_per_tick']:.2f}",
            *cells,
        )
    console.print(table)
    for size, result in report["sizes"].items():
        if "costs" in result:
            shown = ", ".join(f"{k} {v:g}" for k, v in result["costs"].items())
            console.print(f"tree_{size} costs (us, differences of medians): {shown}")
    jumps = report.get("jumps", {})
    if "latency_ms" in jumps:
        latency, recording = jumps["latency_ms"], jumps["recording"]
        console.print(
            f"jumps: {jumps['jumps']} x state_at_tick over {jumps['ticks']:,} ticks "
            f"({jumps['events']:,} events, {jumps['events_per_tick']} events/tick): "
            f"p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms, "
            f"max {latency['max']:.2f} ms (first {latency['first']:.2f} ms); recording took "
            f"{recording['wall_s']:.1f} s wall, {recording['cpu_s']:.1f} s CPU"
        )
    elif "error" in jumps:
        console.print(f"[red]jumps: {jumps['error']}[/red]")
    for found in report["targets"]:
        marks = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]", None: "[dim]n/a [/dim]"}
        mark = marks[found["pass"]]
        console.print(
            f"{mark} {found['name']}: {found['measured']} {found['op']} {found['threshold']}"
        )
    console.print(f"took {report['duration_s']:.1f} s")


# -- entry points ----------------------------------------------------------------------------


async def run(plan: Plan, sizes: Sequence[int], jumps: bool) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    began = Clock.now()
    quietness = await idle_check(plan.idle_check_s)
    results: dict[str, Any] = {"sizes": {}}
    logs = OnceHandler()
    with (
        engine_logs(logs),
        tempfile.TemporaryDirectory(prefix="canopy-runtime-bench-") as folder,
    ):
        directory = Path(folder)
        for size in sizes:
            try:
                results["sizes"][str(size)] = await measure_size(size, plan, directory)
            except Exception as exc:
                console.print(f"[red]tree_{size}: {exc!r}[/red]\n{traceback.format_exc()}")
                results["sizes"][str(size)] = {"error": f"{type(exc).__name__}: {exc}"}
        if jumps:
            try:
                results["jumps"] = await measure_jumps(plan, directory)
            except Exception as exc:
                console.print(f"[red]jumps: {exc!r}[/red]\n{traceback.format_exc()}")
                results["jumps"] = {"error": f"{type(exc).__name__}: {exc}"}
    reset_blackboard()
    targets = evaluate_targets(results)
    finished = Clock.now()
    total = Sample.between(began, finished)
    return {
        "benchmark": "canopy-runtime-overhead",
        "mode": plan.mode,
        "started_at": started_at,
        "machine": {**machine_info(), "other_cores_busy_before_run": quietness},
        "plan": {
            "baseline_cpu_s": plan.baseline_cpu_s,
            "min_run_cpu_s": plan.min_run_cpu_s,
            "repetitions": plan.repetitions,
            "characterize_ticks": plan.characterize_ticks,
            "warmup_ticks": plan.warmup_ticks,
            "jump_ticks": plan.jump_ticks,
            "jumps": plan.jumps,
            "cpu_clock": "time.process_time (whole process, every thread)",
            "ratio": "variant CPU / mean CPU of the baselines run just before and after it",
        },
        **results,
        "log_messages": dict(logs.counts),
        "targets": targets,
        "all_targets_pass": all(t["pass"] is not False for t in targets),
        "targets_not_measured": sum(1 for t in targets if t["pass"] is None),
        "cpu_s": round(total.cpu_s, 2),
        "duration_s": round(total.wall_s, 2),
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 30 s in all")
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="comma-separated tree sizes"
    )
    parser.add_argument("--no-jumps", action="store_true", help="skip the jump benchmark")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if unknown := set(args.sizes) - set(SIZES):
        parser.error(f"unknown size(s): {sorted(unknown)}; choose from {list(SIZES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = asyncio.run(run(QUICK if args.quick else FULL, args.sizes, not args.no_jumps))
    print_summary(report)
    emit_report(report, args.out)
    failed = any("error" in r for r in report["sizes"].values()) or "error" in report.get(
        "jumps", {}
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
