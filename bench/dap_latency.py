"""Benchmark of ``canopy dap``'s request latency and stop latency, against debugpy.

Everything goes over real TCP sockets on 127.0.0.1 to real processes, with a blocking client
(this module's :class:`DapConnection`, ``TCP_NODELAY`` set) that sends one request at a time and
times it from just before ``sendall`` to the moment its response is parsed.

What is measured
----------------
1. **Request round trips** p50/p90/p99 (ms) of ``stackTrace``, ``scopes``, ``variables`` and
   ``evaluate`` on a stopped execution. One round is what an editor sends at a stop:
   ``stackTrace`` (top frame), ``scopes`` of that frame, ``variables`` of the scope holding 100
   values, and ``evaluate`` of a small arithmetic expression on the top frame (``watch``
   context). Each round starts with ``threads``, the **floor**: a request with no work behind
   it, so what transport, event loop and the machine's scheduling cost by themselves (coming
   first, it also takes the wake-up of an adapter that sat idle while the other one was
   measured). Before each measured round, one 120-byte **TCP echo** to a child process times
   the machine itself, with no DAP at all (``machine_floor``).

   - **canopy, in-process**: ``canopy dap --port 0`` (the adapter embedding the runtime),
     launched on this module's :func:`tree` (program ``bench/dap_latency.py:tree``) in ``auto``
     mode with a function breakpoint on ``target`` and a blackboard of 100 keys (``key_000`` ..
     ``key_098`` and ``stamp``). ``variables`` expands the Blackboard scope (100 variables);
     ``evaluate`` is ``key_007 * 2``. 1000 rounds (quick: 200), after 20 unmeasured.
   - **debugpy**, the reference: ``python -m debugpy.adapter --port 0`` (endpoints read from
     ``DEBUGPY_ADAPTER_ENDPOINTS``) and a ``launch`` request, as VS Code does, on a generated
     program (:func:`debuggee_source`) stopped at a line breakpoint in a function with 100 locals
     (``v000`` .. ``v096``, ``rounds``, ``stamp``, ``i``). ``variables`` expands Locals;
     ``evaluate`` is ``v007 * 2``. A request crosses two hops there (client -> adapter ->
     pydevd in the debuggee), which is what an editor feels. 1000 rounds (quick: 30, after 3
     unmeasured: at ~44 ms a request, 200 rounds would take 40 s on their own).

   canopy answers ``stackTrace``, ``scopes`` and ``variables`` of one stop from the view it
   fetched for the first of them (frames and variables last for one stop), so after the first
   round they cost no call to the runtime; ``evaluate`` calls it every time. The first
   ``stackTrace`` of each stop, which does fetch the view, is timed in the hits phase
   (``stack_trace_after_stop_ms``).

   The subjects are measured in the same run and interleaved round by round (each spread
   evenly over the phase, the one going first alternating), so the machine's noise falls on
   all alike.
2. **Breakpoint hit -> ``stopped`` event at the client** (ms): the debuggee writes
   ``time.time_ns()`` just before the breakpoint (canopy: the ``stamp`` behaviour writes the
   blackboard key ``stamp`` and the breakpoint is *before* the next node, ``target``; debugpy:
   ``stamp = time.time_ns()`` on the line before the breakpoint's); the client takes
   ``time.time_ns()`` when the ``recv`` that completes the ``stopped`` event returns, reads the
   stamp with ``evaluate`` and reports the difference (same machine, same clock). Then
   ``continue``. ``continue_to_stopped_ms`` (continue sent -> stopped received: one tick, or
   one loop turn) is reported for scale, and ``stack_trace_after_stop_ms``, the first
   ``stackTrace`` after the stop (before the stamp is read). The client is blocked in ``recv``
   while it waits, so the receive time is not late. canopy: 200 hits (quick: 50) after 5
   unmeasured; debugpy: 200 (quick: 20) after 5 (quick: 2).
3. **Through a pod**: the same rounds and hits on a second ``canopy dap --port 0`` whose
   session launches with ``pod: "local"``: the tree runs in a debug pod worker (a process of
   its own) of a ``canopy serve --port 0`` subprocess, which the adapter finds through the
   ``server.json`` in its ``--data-dir``. A runtime call crosses adapter -> HTTP -> server ->
   pod link -> worker and back; a stop comes worker -> server -> notifications WebSocket ->
   adapter -> client (the first ``stackTrace`` of a stop fetches the view from the worker;
   later ones in the stop, and ``scopes`` and ``variables``, are answered by the adapter, as
   in-process). Measured interleaved with the other two (quick: 100 rounds, 30 hits; full:
   1000 and 200); the pod worker's process group counts among the debuggers' CPU.
4. **Step Into Target -> Python stop** (ms), on a session of its own on the in-process adapter,
   last (once debugpy listens in the adapter it traces its tree threads): stopped before
   ``stamp``, ``stepIn`` with the target into ``Stamp.update()`` sent -> the ``stopped`` event of
   the Python session the adapter had the client start (``startDebugging``; answered by this
   client with a second connection that attaches, as an editor does). The baseline, alternated
   with it from the same stop: the plain ``stepIn`` -> the tree's ``stopped``. The first Python
   step, which starts the Python session, is reported apart (``first_ms``). 20 of each (full:
   100) after 5 unmeasured.
5. **Targets**, computed from the measurements: p99 <= 1 ms in-process and <= 5 ms through a pod
   for each of the four requests and for hit -> stopped; targets carry the floor's p99 of the
   same run for context (the same adapter's ``threads``, which has no work behind it). Also the
   ratios debugpy / canopy of p50 and p99. Step Into Target -> Python stop: p99 <= 100 ms,
   with the plain step into's p99 beside it.

Run it from the repository root (debugpy must be installed in the environment for the
reference: ``.venv/bin/pip install debugpy``; without it the reference is ``null``)::

    .venv/bin/python bench/dap_latency.py --quick      # < 30 s
    .venv/bin/python bench/dap_latency.py              # full mode, about 5 minutes (debugpy)
    .venv/bin/python bench/dap_latency.py --profile-adapter /tmp/adapter.prof
    .venv/bin/python bench/dap_latency.py --adapter-root /tmp/canopy-head   # another tree

``--profile-adapter`` runs the in-process canopy adapter under ``cProfile`` (its numbers are
then inflated and the report says ``profiled``) and prints the adapter's most expensive
functions to stderr. ``--adapter-root`` runs the adapters and the server from another source
tree (say ``git archive HEAD`` unpacked somewhere), to measure a commit while the work tree is
being edited.

A readable summary goes to stderr; the last line of stdout is one JSON object with the machine,
the mode, every measurement, the ratios and the targets. Every process started lives in a
process group of its own (the debuggee too: debugpy's launcher makes one, learnt from the
``process`` event; and the pod worker, a child of the server leading its own group) and is
killed with its group at the end, even on error. The exit status is 1
when a measurement failed (not when a target is missed). The machine is often shared: each phase
carries ``other_cores``, the CPU that processes other than this one and the debuggers used
meanwhile, to judge how noisy it was.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import pstats
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import py_trees
from measure import emit_report, machine_busy_seconds, percentile
from py_trees.common import Access, Status
from rich.console import Console
from rich.table import Table

SCRIPT: Final = Path(__file__).resolve()
ROOT: Final = SCRIPT.parent.parent
PROGRAM: Final = "bench/dap_latency.py:tree"
REQUESTS: Final = ("stackTrace", "scopes", "variables", "evaluate")
FLOOR: Final = "threads"  # no work behind it: what transport, event loop and scheduling cost
ROUND: Final = (FLOOR, *REQUESTS)
BLACKBOARD_KEYS: Final = 100
DEBUGGEE_LOCALS: Final = 100
PYTHON_STOP_P99_MS: Final = 100.0
"""Step Into Target -> the Python stop: two hops more than a tree stop (the relay, and debugpy's
adapter to pydevd), within what a user feels as at once."""
IN_PROCESS_P99_MS: Final = 1.0
POD_P99_MS: Final = 5.0
TIMEOUT_S: Final = 20.0
STARTUP_TIMEOUT_S: Final = 30.0
SLOW_MS: Final = 30.0  # a sample this slow smells of Nagle + delayed ACK (~40 ms on Linux)

console = Console(
    stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 110
)


# -- the tree canopy debugs (the adapter imports this module for ``tree``) -------------------


class Stamp(py_trees.behaviour.Behaviour):
    """Writes ``time.time_ns()`` to the blackboard key ``stamp``: the moment of the hit."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.board = self.attach_blackboard_client(name)
        self.board.register_key("stamp", access=Access.WRITE)

    def update(self) -> Status:
        self.board.stamp = time.time_ns()
        return Status.SUCCESS


def tree() -> py_trees.behaviour.Behaviour:
    """bench (Repeat forever) > round (Sequence): stamp, target. Auto mode ticks it as fast as it
    can; the breakpoint is before ``target``, right after ``stamp`` wrote the time."""
    round_ = py_trees.composites.Sequence("round", memory=False)
    round_.add_children([Stamp("stamp"), py_trees.behaviours.Success("target")])
    return py_trees.decorators.Repeat("bench", child=round_, num_success=-1)


def initial_blackboard() -> dict[str, int]:
    """100 keys: ``key_000`` .. ``key_098`` (value = index) and ``stamp``."""
    board = {f"key_{i:03d}": i for i in range(BLACKBOARD_KEYS - 1)}
    board["stamp"] = 0
    return board


def debuggee_source() -> tuple[str, int]:
    """A program with a function of exactly ``DEBUGGEE_LOCALS`` locals that loops forever;
    returns the source and the (1-based) line of its breakpoint."""
    named = DEBUGGEE_LOCALS - 3  # + rounds, stamp, i
    lines = ["import time", "", "", "def work(rounds):"]
    lines += [f"    v{i:03d} = {i}" for i in range(named)]
    lines += [
        "    stamp = 0",
        "    for i in range(rounds):",
        "        stamp = time.time_ns()",
        "        if stamp < 0:  # the breakpoint: right after the stamp",
        "            break",
        "    return stamp",
        "",
        "",
        "work(10**12)",
        "",
    ]
    breakpoint_line = next(n for n, line in enumerate(lines, 1) if "the breakpoint" in line)
    return "\n".join(lines), breakpoint_line


# -- what a run does -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """How many request rounds and breakpoint hits one debugger gets (and how many more come
    first, unmeasured)."""

    rounds: int
    hits: int
    warmup_rounds: int
    warmup_hits: int
    python_steps: int = 0  # Step Into Target -> Python stop (in-process canopy only)


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of every phase for one mode: canopy's in-process, canopy's through a pod, and
    the reference's.

    In quick mode debugpy gets fewer samples: at ~44 ms a request (~180 ms a hit, which needs
    continue, stackTrace and evaluate), 200 rounds of four would take 35 s on their own. The
    pod gets fewer than in-process (its server and worker start within the 30 s too).
    """

    mode: str
    canopy: Counts
    pod: Counts
    reference: Counts

    def counts(self, name: str) -> Counts:
        if name == POD_SUBJECT:
            return self.pod
        return self.canopy if name == "canopy" else self.reference


POD_SUBJECT: Final = "canopy_pod"
QUICK: Final = Plan(
    "quick",
    canopy=Counts(rounds=200, hits=50, warmup_rounds=20, warmup_hits=5, python_steps=20),
    pod=Counts(rounds=100, hits=30, warmup_rounds=10, warmup_hits=3),
    reference=Counts(rounds=30, hits=20, warmup_rounds=3, warmup_hits=2),
)
FULL: Final = Plan(
    "full",
    canopy=Counts(rounds=1000, hits=200, warmup_rounds=20, warmup_hits=5, python_steps=100),
    pod=Counts(rounds=1000, hits=200, warmup_rounds=20, warmup_hits=5),
    reference=Counts(rounds=1000, hits=200, warmup_rounds=20, warmup_hits=5),
)


class BenchError(RuntimeError):
    """A measurement could not be made (a process failed, a request failed or timed out)."""


# -- small helpers ---------------------------------------------------------------------------


def summarize_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p99/min/max/mean in milliseconds of durations given in nanoseconds."""
    if not samples_ns:
        raise BenchError("no latency samples were collected")
    ordered = sorted(s / 1e6 for s in samples_ns)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p90": round(percentile(ordered, 90), 3),
        "p99": round(percentile(ordered, 99), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
        "samples": len(ordered),
        f"over_{SLOW_MS:g}ms": sum(1 for s in ordered if s > SLOW_MS),
    }


def note(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def group_cpu_seconds(groups: Sequence[int]) -> float:
    """CPU seconds used so far by the live processes of these process groups (Linux)."""
    if not groups:
        return 0.0
    wanted = set(groups)
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 12 and int(fields[2]) in wanted:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class CpuWatch:
    """CPU used during a phase: by this process, by the debuggers, and by everything else."""

    groups: Callable[[], Sequence[int]]
    wall: float = 0.0
    machine: float | None = None
    own: float = 0.0
    subjects: float = 0.0

    def start(self) -> CpuWatch:
        self.wall = time.perf_counter()
        self.machine = machine_busy_seconds()
        self.own = time.process_time()
        self.subjects = group_cpu_seconds(self.groups())
        return self

    def stop(self) -> dict[str, float | None]:
        wall = time.perf_counter() - self.wall
        own = time.process_time() - self.own
        subjects = group_cpu_seconds(self.groups()) - self.subjects
        machine = machine_busy_seconds()
        result: dict[str, float | None] = {
            "wall_s": round(wall, 3),
            "client_cpu_s": round(own, 3),
            "debuggers_cpu_s": round(subjects, 3),
            "other_cpu_s": None,
            "other_cores": None,
        }
        if self.machine is not None and machine is not None:
            other = max(0.0, machine - self.machine - own - subjects)
            result["other_cpu_s"] = round(other, 3)
            result["other_cores"] = round(other / wall, 2) if wall > 0 else None
        return result


def idle_check(seconds: float = 1.0) -> dict[str, float | None]:
    """How busy the machine is without us: other load makes every number here noisy."""
    usage = CpuWatch(lambda: ()).start()
    time.sleep(seconds)
    cores = usage.stop()["other_cores"]
    if cores is not None and cores > 0.2:
        console.print(
            f"[yellow]warning: other processes keep {cores:.2f} cores busy before the run;"
            " the numbers will be noisy[/yellow]"
        )
    return {"other_cores_busy_before_run": cores, "load_average": os.getloadavg()[0]}


# -- a blocking DAP client -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A message and the wall-clock time (``time.time_ns``) its last byte was read."""

    message: dict[str, Any]
    at_ns: int
    size: int


class DapConnection:
    """One DAP session over a TCP socket, one request at a time; events are queued in order."""

    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()
        self._seq = 0
        self.events: deque[Received] = deque()
        self._answers: dict[int, dict[str, Any]] = {}  # responses read while awaiting another
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self.last_size = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def send(self, command: str, arguments: Mapping[str, Any] | None = None) -> int:
        """Send a request without waiting; returns its seq."""
        self._seq += 1
        message: dict[str, Any] = {"seq": self._seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        body = json.dumps(message, separators=(",", ":")).encode()
        self._sock.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        return self._seq

    def request(self, command: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its response (successful or not)."""
        return self.response(self.send(command, arguments))

    def ok(self, command: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A request that must succeed; returns its body."""
        return self.check(self.request(command, arguments))

    def check(self, response: Mapping[str, Any]) -> dict[str, Any]:
        if not response.get("success"):
            raise BenchError(
                f"{self.name}: {response.get('command')} failed: {response.get('message')}"
            )
        body: dict[str, Any] = response.get("body") or {}
        return body

    def timed(self, command: str, arguments: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """(round trip in ns, body) of a request that must succeed."""
        started = time.perf_counter_ns()
        response = self.response(self.send(command, arguments))
        elapsed = time.perf_counter_ns() - started
        return elapsed, self.check(response)

    def response(self, seq: int) -> dict[str, Any]:
        """Read until the response to ``seq``; events met on the way are queued."""
        if seq in self._answers:
            return self._answers.pop(seq)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            received = self._read(deadline)
            message = received.message
            kind = message.get("type")
            if kind == "response" and message.get("request_seq") == seq:
                self.last_size = received.size
                return message
            if kind == "response":
                self._answers[int(message.get("request_seq", 0))] = message
            elif kind == "event":
                self.events.append(received)
            elif kind == "request":
                self._reverse(message)

    def wait_event(self, name: str, **fields: Any) -> Received:
        """The next queued or arriving event ``name`` whose body has ``fields``; earlier events
        of other names are dropped."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            while self.events:
                received = self.events.popleft()
                message = received.message
                body = message.get("body") or {}
                if message.get("event") == name and all(
                    body.get(k) == v for k, v in fields.items()
                ):
                    return received
            received = self._read(deadline)
            if received.message.get("type") == "event":
                self.events.append(received)
            elif received.message.get("type") == "request":
                self._reverse(received.message)
            elif received.message.get("type") == "response":
                message = received.message
                self._answers[int(message.get("request_seq", 0))] = message

    def _reverse(self, message: dict[str, Any]) -> None:
        """Answer a reverse request: through ``on_request`` (which raises to refuse), else
        refused (runInTerminal...)."""
        problem = "not supported by the benchmark client"
        if self.on_request is not None:
            try:
                self.on_request(message)
                problem = ""
            except BenchError as error:
                problem = str(error)
        self._seq += 1
        answer: dict[str, Any] = {
            "seq": self._seq,
            "type": "response",
            "request_seq": message.get("seq", 0),
            "command": message.get("command", ""),
            "success": not problem,
        }
        if problem:
            answer["message"] = problem
        body = json.dumps(answer).encode()
        self._sock.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def _read(self, deadline: float) -> Received:
        """The next message; its time is that of the ``recv`` that completed it."""
        at_ns = time.time_ns()
        while True:
            message = self._parse()
            if message is not None:
                parsed, size = message
                return Received(parsed, at_ns, size)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no message within {TIMEOUT_S:g} s")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                raise BenchError(f"{self.name}: no message within {TIMEOUT_S:g} s") from None
            at_ns = time.time_ns()
            if not chunk:
                raise BenchError(f"{self.name}: the adapter closed the connection")
            self._buffer += chunk

    def _parse(self) -> tuple[dict[str, Any], int] | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        length: int | None = None
        for line in bytes(self._buffer[:end]).split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None:
            raise BenchError(f"{self.name}: a message without Content-Length")
        start = end + 4
        if len(self._buffer) < start + length:
            return None
        body = bytes(self._buffer[start : start + length])
        del self._buffer[: start + length]
        return json.loads(body), length


# -- processes -------------------------------------------------------------------------------


@dataclass(slots=True)
class Child:
    """A process started in a process group of its own; ``extra_groups`` are groups it made."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    extra_groups: list[int] = field(default_factory=list)

    @property
    def groups(self) -> list[int]:
        return [self.process.pid, *self.extra_groups]

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to every group, then SIGKILL to whatever is left after a grace period."""
        for group in self.groups:
            _signal_group(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(_group_alive(g) for g in self.groups):
            time.sleep(0.05)
        for group in self.groups:
            _signal_group(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def spawn(
    name: str, argv: Sequence[str], directory: Path, env: Mapping[str, str], cwd: Path = ROOT
) -> Child:
    log = directory / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=sink,
            start_new_session=True,
        )
    return Child(name, process, log)


def read_port_line(child: Child) -> int:
    """The port ``canopy dap --port 0`` prints on its first line of stdout."""
    assert child.process.stdout is not None
    fd = child.process.stdout.fileno()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or child.process.poll() is not None:
                raise BenchError(f"{child.name} did not print its port:\n{child.log_tail()}")
            if selector.select(min(left, 0.2)):
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                data += chunk
    return int(data.split(b"\n", 1)[0])


def wait_for_endpoints(child: Child, path: Path) -> int:
    """The client port debugpy's adapter writes to ``DEBUGPY_ADAPTER_ENDPOINTS``."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            break
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int(json.loads(path.read_text())["client"]["port"])
        time.sleep(0.02)
    raise BenchError(f"{child.name} did not report its endpoints:\n{child.log_tail()}")


ADAPTER_ENTRY: Final = """\
import sys
from pathlib import Path

from canopy import dap
from canopy import server

root = Path({root!r})
for module in (dap, server):
    if not Path(module.__file__ or "").resolve().is_relative_to(root):
        sys.exit(f"{{module.__name__}} is imported from {{module.__file__}}, not from {{root}}")
from canopy.server.cli import main

sys.exit(main())
"""


def canopy_entry(directory: Path, adapter_root: Path) -> Path:
    """The script that runs ``canopy`` from ``adapter_root`` (checked: an installed copy
    elsewhere must not be measured instead)."""
    entry = directory / "canopy_adapter.py"
    if not entry.exists():
        entry.write_text(ADAPTER_ENTRY.format(root=str(adapter_root.resolve())))
    return entry


def start_canopy(
    directory: Path,
    adapter_root: Path,
    profile: Path | None,
    *,
    name: str = "canopy-adapter",
    data_dir: Path | None = None,
) -> Child:
    """``canopy dap --port 0`` from ``adapter_root``; its event log, and the ``server.json``
    it looks for, in ``data_dir``."""
    entry = canopy_entry(directory, adapter_root)
    argv: list[str] = [sys.executable]
    if profile is not None:
        argv += ["-m", "cProfile", "-o", str(profile)]
    data = data_dir or directory / "canopy-data"
    argv += [str(entry), "dap", "--port", "0", "--data-dir", str(data)]
    return spawn(name, argv, directory, {"PYTHONPATH": str(adapter_root)}, adapter_root)


def start_server(directory: Path, adapter_root: Path, data_dir: Path) -> Child:
    """``canopy serve --port 0`` with local pods, advertising itself in ``data_dir``."""
    entry = canopy_entry(directory, adapter_root)
    argv = [sys.executable, str(entry), "serve", "--port", "0", "--data-dir", str(data_dir)]
    argv += ["--log-level", "WARNING"]
    env = {"PYTHONPATH": str(adapter_root), "CANOPY_PODS": "local"}
    return spawn("canopy-server", argv, directory, env, adapter_root)


def wait_for_server(child: Child, data_dir: Path) -> str:
    """The URL the server writes to ``server.json`` once it listens."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and child.process.poll() is None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            found = json.loads((data_dir / "server.json").read_text())
            if found["pid"] == child.process.pid:
                return str(found["url"])
        time.sleep(0.02)
    raise BenchError(f"{child.name} did not advertise itself:\n{child.log_tail()}")


def child_groups(pid: int) -> list[int]:
    """Process groups of the children of ``pid`` that lead their own (the server's pod
    workers start sessions of their own), from ``/proc``."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[1]) == pid and int(fields[2]) == int(entry.name):
            found.append(int(entry.name))
    return found


def start_debugpy(directory: Path) -> Child:
    endpoints = directory / "debugpy-endpoints.json"
    argv = [sys.executable, "-m", "debugpy.adapter", "--host", "127.0.0.1", "--port", "0"]
    return spawn("debugpy-adapter", argv, directory, {"DEBUGPY_ADAPTER_ENDPOINTS": str(endpoints)})


ECHO_SERVER: Final = """\
import socket
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while data := conn.recv(1 << 16):
    conn.sendall(data)
"""


class Echo:
    """A TCP echo server in a process of its own: what one round trip between two processes
    costs on this machine right now, with no DAP, JSON or event loop in the way."""

    MESSAGE: Final = b"x" * 120  # the size of a typical request

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def timed(self) -> int:
        started = time.perf_counter_ns()
        self._sock.sendall(self.MESSAGE)
        received = 0
        while received < len(self.MESSAGE):
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                raise BenchError("the echo server closed the connection")
            received += len(chunk)
        return time.perf_counter_ns() - started

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def start_echo(run: Run, directory: Path) -> Echo:
    child = spawn("tcp-echo", [sys.executable, "-c", ECHO_SERVER], directory, {})
    run.children.append(child)
    echo = Echo(read_port_line(child))
    run.closers.append(echo.close)
    return echo


# -- the two debuggers, behind one interface -------------------------------------------------


@dataclass(slots=True)
class Round:
    """What one round of the four requests needs to carry from one request to the next."""

    frame_id: int = 0
    reference: int = 0


class Subject(ABC):
    """A debugger stopped in its debuggee, able to time the four requests and a hit."""

    name: str
    expression: str
    expected_value: str
    scope_name: str
    connection: DapConnection
    thread_id: int

    def request_args(self, kind: str, state: Round) -> dict[str, Any]:
        if kind == FLOOR:
            return {}
        if kind == "stackTrace":
            return {"threadId": self.thread_id, "startFrame": 0, "levels": 20}
        if kind == "scopes":
            return {"frameId": state.frame_id}
        if kind == "variables":
            return {"variablesReference": state.reference}
        return {"expression": self.expression, "frameId": state.frame_id, "context": "watch"}

    def absorb(self, kind: str, body: Mapping[str, Any], state: Round) -> None:
        """Take what the next request of the round needs from a response."""
        if kind == "stackTrace":
            state.frame_id = int(body["stackFrames"][0]["id"])
        elif kind == "scopes":
            scope = next((s for s in body["scopes"] if s["name"] == self.scope_name), None)
            if scope is None:
                names = [s["name"] for s in body["scopes"]]
                raise BenchError(f"{self.name}: no scope {self.scope_name!r} in {names}")
            state.reference = int(scope["variablesReference"])

    def check_round(self, bodies: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """Check the first round's answers; describe them for the report."""
        variables = bodies["variables"]["variables"]
        if len(variables) < 100:
            raise BenchError(f"{self.name}: {len(variables)} variables, expected 100 or more")
        result = bodies["evaluate"]["result"]
        if result != self.expected_value:
            raise BenchError(f"{self.name}: {self.expression} gave {result!r}")
        return {
            "frames": len(bodies["stackTrace"]["stackFrames"]),
            "variables": len(variables),
            "evaluate": f"{self.expression} = {result}",
        }

    @abstractmethod
    def read_stamp(self) -> int:
        """The time (ns) the debuggee recorded just before the breakpoint it stopped at."""

    def close(self) -> None:
        """End the session, and with it the debuggee."""
        with contextlib.suppress(BenchError, OSError):
            self.connection.request("disconnect", {"terminateDebuggee": True})
        self.connection.close()

    def hit(self) -> tuple[int, int, int]:
        """Continue to the next hit: (stamp -> stopped received, continue sent -> stopped,
        the first stackTrace of the stop) in ns."""
        connection = self.connection
        sent = time.time_ns()
        connection.ok("continue", {"threadId": self.thread_id})
        stopped = connection.wait_event("stopped", reason="breakpoint")
        stack_ns, _ = connection.timed("stackTrace", self.request_args("stackTrace", Round()))
        stamp = self.read_stamp()
        return stopped.at_ns - stamp, stopped.at_ns - sent, stack_ns


class Canopy(Subject):
    name = "canopy"
    expression = "key_007 * 2"
    expected_value = "14"
    scope_name = "Blackboard"

    def __init__(self, port: int) -> None:
        self.connection = DapConnection(self.name, port)
        self.thread_id = 1

    def launch_arguments(self) -> dict[str, Any]:
        return {
            "program": PROGRAM,
            "cwd": str(ROOT),
            "mode": "auto",
            "blackboard": initial_blackboard(),
        }

    def setup(self) -> None:
        connection = self.connection
        connection.ok("initialize", {"adapterID": "canopy", "clientID": "bench"})
        connection.ok("launch", self.launch_arguments())
        connection.wait_event("initialized")
        connection.ok("setFunctionBreakpoints", {"breakpoints": [{"name": "target"}]})
        connection.ok("configurationDone")
        stopped = connection.wait_event("stopped", reason="breakpoint")
        self.thread_id = int(stopped.message["body"]["threadId"])

    def read_stamp(self) -> int:
        return int(self.connection.ok("evaluate", {"expression": "stamp"})["result"])


class CanopyPod(Canopy):
    """The same session, launched in a local debug pod through a Canopy server."""

    name = POD_SUBJECT

    def launch_arguments(self) -> dict[str, Any]:
        return {**super().launch_arguments(), "pod": "local"}


class Debugpy(Subject):
    name = "debugpy"
    expression = "v007 * 2"
    expected_value = "14"
    scope_name = "Locals"

    def __init__(self, port: int, program: Path, line: int) -> None:
        self.connection = DapConnection("debugpy", port)
        self.program = program
        self.line = line
        self.thread_id = 0
        self.debuggee_pid: int | None = None

    def setup(self) -> None:
        connection = self.connection
        connection.ok(
            "initialize",
            {
                "clientID": "vscode",
                "adapterID": "debugpy",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
                "supportsVariableType": True,
                "supportsRunInTerminalRequest": False,
            },
        )
        # debugpy answers launch only after configurationDone.
        launch = connection.send(
            "launch",
            {
                "name": "bench",
                "type": "python",
                "request": "launch",
                "program": str(self.program),
                "python": [sys.executable],
                "console": "internalConsole",
                "justMyCode": True,
                "cwd": str(self.program.parent),
            },
        )
        connection.wait_event("initialized")
        placed = connection.ok(
            "setBreakpoints",
            {"source": {"path": str(self.program)}, "breakpoints": [{"line": self.line}]},
        )
        if not all(b.get("verified", True) for b in placed.get("breakpoints", [])):
            raise BenchError(f"debugpy: breakpoint not verified: {placed}")
        connection.ok("configurationDone")
        connection.check(connection.response(launch))
        process = connection.wait_event("process")
        self.debuggee_pid = int(process.message["body"]["systemProcessId"])
        stopped = connection.wait_event("stopped", reason="breakpoint")
        self.thread_id = int(stopped.message["body"]["threadId"])

    def read_stamp(self) -> int:
        frames = self.connection.ok("stackTrace", {"threadId": self.thread_id, "levels": 1})
        frame_id = frames["stackFrames"][0]["id"]
        body = self.connection.ok(
            "evaluate", {"expression": "stamp", "frameId": frame_id, "context": "watch"}
        )
        return int(body["result"])


# -- measurements ----------------------------------------------------------------------------


class PythonSteps:
    """Step Into Target -> the stop in the node's Python code, against the tree's plain step
    into from the same stop (the baseline), on a session of its own on the in-process adapter.

    The session runs :func:`tree` in manual mode with a function breakpoint on ``stamp`` (a
    node with its own ``update()``). Each sample starts stopped there, alternating: the plain
    ``stepIn`` (sent -> the tree's ``stopped``), or ``stepIn`` with the target into
    ``Stamp.update()`` (sent -> the ``stopped`` of the Python session; then ``continue`` there
    returns to the tree). The first Python step answers the adapter's ``startDebugging`` by
    opening that session (a second connection, ``attach`` with the configuration given) and is
    reported on its own (``first_ms``: debugpy's start and the attach included)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.tree = DapConnection("canopy-steps", port)
        self.tree.on_request = self._start_python
        self.python: DapConnection | None = None
        self.thread_id = 1

    def setup(self) -> None:
        tree = self.tree
        tree.ok(
            "initialize",
            {"adapterID": "canopy", "clientID": "bench", "supportsStartDebuggingRequest": True},
        )
        launch = {"program": PROGRAM, "cwd": str(ROOT), "mode": "manual"}
        tree.ok("launch", {**launch, "blackboard": initial_blackboard()})
        tree.wait_event("initialized")
        tree.ok("setFunctionBreakpoints", {"breakpoints": [{"name": "stamp"}]})
        tree.ok("configurationDone")
        entry = tree.wait_event("stopped", reason="entry")
        self.thread_id = int(entry.message["body"]["threadId"])
        self._to_stamp()

    def plain(self) -> int:
        started = time.time_ns()
        self.tree.ok("stepIn", {"threadId": self.thread_id})
        stopped = self.tree.wait_event("stopped", reason="step")
        self._to_stamp()
        return stopped.at_ns - started

    def into_python(self) -> int:
        tree = self.tree
        frame = tree.ok("stackTrace", {"threadId": self.thread_id, "levels": 1})["stackFrames"][0]
        targets = tree.ok("stepInTargets", {"frameId": frame["id"]})["targets"]
        target = next(t for t in targets if str(t["label"]).startswith("into Stamp.update()"))
        started = time.time_ns()
        tree.ok("stepIn", {"threadId": self.thread_id, "targetId": target["id"]})
        if self.python is None:
            raise BenchError("the adapter did not start the Python session (startDebugging)")
        stopped = self.python.wait_event("stopped", reason="breakpoint")
        self.python.ok("continue", {"threadId": stopped.message["body"]["threadId"]})
        tree.wait_event("stopped", reason="step")
        self._to_stamp()
        return stopped.at_ns - started

    def close(self) -> None:
        for connection in (self.python, self.tree):
            if connection is not None:
                with contextlib.suppress(BenchError, OSError):
                    connection.request("disconnect", {})
                connection.close()

    def _to_stamp(self) -> None:
        """Continue (a tick at most, manual mode) until stopped before ``stamp`` again."""
        for _ in range(3):
            self.tree.ok("continue", {"threadId": self.thread_id})
            stopped = self.tree.wait_event("stopped")
            if stopped.message["body"].get("reason") == "breakpoint":
                return
        raise BenchError("canopy-steps: the tree did not stop before stamp again")

    def _start_python(self, request: dict[str, Any]) -> None:
        """What an editor does with ``startDebugging``: a child session, attached."""
        if request.get("command") != "startDebugging":
            raise BenchError(f"unexpected reverse request {request.get('command')!r}")
        python = DapConnection("canopy-python", self.port)
        python.ok("initialize", {"adapterID": "canopy", "clientID": "bench", "pathFormat": "path"})
        attach = python.send("attach", request["arguments"]["configuration"])
        python.wait_event("initialized")
        python.ok("configurationDone")
        python.check(python.response(attach))
        self.python = python


def measure_python_steps(port: int, plan: Plan) -> dict[str, Any]:
    """Step Into Target -> Python stop and, alternating with it, the plain step into."""
    steps = PythonSteps(port)
    try:
        steps.setup()
        first = steps.into_python()
        counts = plan.counts("canopy")
        python: list[int] = []
        plain: list[int] = []
        for index in range(counts.warmup_hits + counts.python_steps):
            sample_python, sample_plain = steps.into_python(), steps.plain()
            if index >= counts.warmup_hits:
                python.append(sample_python)
                plain.append(sample_plain)
    finally:
        steps.close()
    return {
        "python_stop_ms": summarize_ms(python),
        "plain_step_in_ms": summarize_ms(plain),
        "first_ms": round(first / 1e6, 3),
        "what": "stepIn with the target into Stamp.update() sent -> stopped in the Python"
        " session; baseline: the plain stepIn from the same stop -> the tree's stopped;"
        " first_ms: the first Python step, which starts the Python session",
    }


def schedule(subjects: Sequence[Subject], totals: Mapping[str, int]) -> Iterator[Subject]:
    """Every subject ``totals[name]`` times, interleaved: each spread evenly over the run, the
    one going first alternating, so that the machine's noise falls on all alike."""
    slots = max(totals.values(), default=0)
    turns = {
        s.name: {(k * slots) // totals[s.name] for k in range(totals[s.name])} for s in subjects
    }
    for index in range(slots):
        order = subjects if index % 2 == 0 else list(reversed(subjects))
        for subject in order:
            if index in turns[subject.name]:
                yield subject


def measure_requests(
    subjects: Sequence[Subject], plan: Plan, echo: Echo
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Rounds of the four requests, interleaved between the subjects; and the TCP echo round
    trip, timed once before every measured round (the machine's own floor)."""
    echoes: list[int] = []
    samples: dict[str, dict[str, list[int]]] = {
        s.name: {kind: [] for kind in ROUND} for s in subjects
    }
    sizes: dict[str, dict[str, int]] = {s.name: {} for s in subjects}
    checks: dict[str, dict[str, Any]] = {}
    done = dict.fromkeys((s.name for s in subjects), 0)
    totals = {
        s.name: plan.counts(s.name).warmup_rounds + plan.counts(s.name).rounds for s in subjects
    }
    for subject in schedule(subjects, totals):
        index = done[subject.name]
        done[subject.name] += 1
        measured = index >= plan.counts(subject.name).warmup_rounds
        if measured:
            echoes.append(echo.timed())
        state = Round()
        bodies: dict[str, dict[str, Any]] = {}
        for kind in ROUND:
            elapsed, body = subject.connection.timed(kind, subject.request_args(kind, state))
            subject.absorb(kind, body, state)
            if measured:
                samples[subject.name][kind].append(elapsed)
            elif index == 0:
                bodies[kind] = body
                sizes[subject.name][kind] = subject.connection.last_size
        if index == 0:
            checks[subject.name] = subject.check_round(bodies)
    per_subject = {
        s.name: {
            "requests": {kind: summarize_ms(samples[s.name][kind]) for kind in REQUESTS},
            "floor_threads": summarize_ms(samples[s.name][FLOOR]),
            "response_bytes": sizes[s.name],
            "checked": checks[s.name],
        }
        for s in subjects
    }
    return per_subject, summarize_ms(echoes)


def measure_hits(subjects: Sequence[Subject], plan: Plan) -> dict[str, dict[str, Any]]:
    """Breakpoint hits with a continue in between, interleaved between the subjects."""
    to_stopped: dict[str, list[int]] = {s.name: [] for s in subjects}
    round_trip: dict[str, list[int]] = {s.name: [] for s in subjects}
    stack_traces: dict[str, list[int]] = {s.name: [] for s in subjects}
    done = dict.fromkeys((s.name for s in subjects), 0)
    totals = {s.name: plan.counts(s.name).warmup_hits + plan.counts(s.name).hits for s in subjects}
    for subject in schedule(subjects, totals):
        index = done[subject.name]
        done[subject.name] += 1
        hit_ns, continue_ns, stack_ns = subject.hit()
        if hit_ns <= 0:
            raise BenchError(
                f"{subject.name}: the stamp is not before the stopped event ({hit_ns} ns): "
                "the stop read is not the one just hit"
            )
        if index >= plan.counts(subject.name).warmup_hits:
            to_stopped[subject.name].append(hit_ns)
            round_trip[subject.name].append(continue_ns)
            stack_traces[subject.name].append(stack_ns)
    return {
        s.name: {
            "hit_to_stopped_ms": summarize_ms(to_stopped[s.name]),
            "continue_to_stopped_ms": summarize_ms(round_trip[s.name]),
            "stack_trace_after_stop_ms": summarize_ms(stack_traces[s.name]),
        }
        for s in subjects
    }


# -- targets and ratios ----------------------------------------------------------------------


def p99_at(side: Mapping[str, Any] | None, path: Sequence[str]) -> float | None:
    """The p99 of the summary at ``path`` in one subject's results (None if absent)."""
    value: Any = side
    for step in path:
        value = value.get(step) if isinstance(value, Mapping) else None
    return value.get("p99") if isinstance(value, Mapping) else None


def targets(
    canopy: Mapping[str, Any] | None,
    pod: Mapping[str, Any] | None,
    echo: Mapping[str, Any] | None,
    pod_reason: str | None,
) -> list[dict[str, Any]]:
    """p99 goals per request and for hit -> stopped, in-process and through a pod.

    Targets also carry ``floor_p99_ms``, the p99 of ``threads`` on the same adapter (no work
    behind it), and ``tcp_echo_p99_ms``, a bare TCP round trip between two processes, both
    from the same run: when those miss the threshold, the machine's scheduling noise does,
    whatever the handlers cost. A pod target that could not be measured is ``null`` with the
    reason."""
    found: list[dict[str, Any]] = []
    metrics: list[tuple[str, tuple[str, ...]]] = [(kind, ("requests", kind)) for kind in REQUESTS]
    metrics.append(("breakpoint hit -> stopped", ("hit_to_stopped_ms",)))
    sides = (
        ("in-process", "in_process", canopy, IN_PROCESS_P99_MS),
        ("through a pod", "through_pod", pod, POD_P99_MS),
    )
    for label, path in metrics:
        for title, key, side, threshold in sides:
            measured = p99_at(side, path)
            target: dict[str, Any] = {
                "name": f"canopy {title} {label} p99",
                "metric": ".".join((key, *path, "p99")),
                "op": "<=",
                "threshold_ms": threshold,
                "measured_ms": measured,
                "pass": None if side is None else measured is not None and measured <= threshold,
                "floor_p99_ms": p99_at(side, ("floor_threads",)),
                "tcp_echo_p99_ms": echo["p99"] if echo else None,
            }
            if side is None:
                target["reason"] = pod_reason if key == "through_pod" else "not measured"
            found.append(target)
    return found


def python_stop_target(
    steps: Mapping[str, Any] | None, errors: Mapping[str, str]
) -> dict[str, Any]:
    """Step Into Target -> Python stop p99, with the plain step into's p99 (same adapter, same
    stop, same run) as its baseline."""
    measured = p99_at(steps, ("python_stop_ms",))
    target: dict[str, Any] = {
        "name": "canopy in-process Step Into Target -> Python stop p99",
        "metric": "step_into_python.python_stop_ms.p99",
        "op": "<=",
        "threshold_ms": PYTHON_STOP_P99_MS,
        "measured_ms": measured,
        "pass": None if measured is None else measured <= PYTHON_STOP_P99_MS,
        "baseline_plain_step_in_p99_ms": p99_at(steps, ("plain_step_in_ms",)),
    }
    if steps is None:
        target["reason"] = errors.get("step_into_python") or "not measured"
    return target


def ratios(canopy: Mapping[str, Any], debugpy: Mapping[str, Any]) -> dict[str, Any]:
    """debugpy / canopy, p50 and p99, per request and for hit -> stopped."""
    pairs = {kind: (canopy["requests"][kind], debugpy["requests"][kind]) for kind in REQUESTS}
    pairs["floor_threads"] = (canopy["floor_threads"], debugpy["floor_threads"])
    pairs["hit_to_stopped"] = (canopy["hit_to_stopped_ms"], debugpy["hit_to_stopped_ms"])
    found: dict[str, Any] = {}
    for kind, (ours, theirs) in pairs.items():
        found[kind] = {
            q: round(theirs[q] / ours[q], 2) if ours[q] > 0 else None for q in ("p50", "p99")
        }
    return found


# -- the run ---------------------------------------------------------------------------------


def code_version(adapter_root: Path) -> dict[str, Any]:
    """The adapter's code: its folder, commit, and whether ``dap/`` or ``server/`` differ from
    that commit (read-only git calls; None outside a git work tree)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(adapter_root), *args],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--", "dap", "server")
    return {
        "adapter_root": str(adapter_root),
        "commit": git("rev-parse", "HEAD"),
        "dap_or_server_modified": None if status is None else bool(status),
    }


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def debugpy_version() -> str | None:
    """The installed debugpy's version; None when it is not installed."""
    return package_version("debugpy")


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "py_trees": package_version("py_trees"),
        "debugpy": debugpy_version(),
    }


@dataclass(slots=True)
class Run:
    """The processes and sessions of one run, for cleanup whatever happens."""

    children: list[Child] = field(default_factory=list)
    subjects: list[Subject] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)
    canopy_port: int | None = None  # the in-process adapter's, for more sessions

    def groups(self) -> list[int]:
        return [group for child in self.children for group in child.groups]

    def close(self) -> None:
        for subject in self.subjects:
            with contextlib.suppress(Exception):
                subject.close()
        for close in self.closers:
            close()
        for child in self.children:
            child.stop()


def set_up_canopy(run: Run, child: Child) -> None:
    port = read_port_line(child)
    run.canopy_port = port
    canopy = Canopy(port)
    run.subjects.append(canopy)
    canopy.setup()
    note(f"canopy stopped at its breakpoint (port {port})")


def set_up_pod(run: Run, server: Child, adapter: Child, data_dir: Path) -> None:
    """Once the server advertises itself, the pod adapter's session launches in a local pod
    (the adapter finds the server through ``data_dir/server.json``)."""
    url = wait_for_server(server, data_dir)
    port = read_port_line(adapter)
    pod = CanopyPod(port)
    run.subjects.append(pod)
    try:
        pod.setup()
    finally:
        server.extra_groups += child_groups(server.process.pid)
    note(f"canopy stopped at its breakpoint in a local pod (port {port}, server {url})")


def set_up_debugpy(run: Run, child: Child, directory: Path) -> None:
    source, line = debuggee_source()
    program = directory / "debuggee.py"
    program.write_text(source)
    port = wait_for_endpoints(child, directory / "debugpy-endpoints.json")
    debugpy = Debugpy(port, program, line)
    run.subjects.append(debugpy)
    try:
        debugpy.setup()
    finally:
        if debugpy.debuggee_pid is not None:
            child.extra_groups.append(debugpy.debuggee_pid)
    note(f"debugpy stopped at its breakpoint (port {port})")


def measure(
    plan: Plan, directory: Path, adapter_root: Path, profile: Path | None
) -> dict[str, Any]:
    """Start both debuggers, stop both, measure; everything is stopped at the end. A debugger
    that cannot be set up is reported in ``errors`` and the other one is still measured."""
    run = Run()
    results: dict[str, Any] = {"errors": {}}
    errors: dict[str, str] = results["errors"]

    def failed(name: str, exc: Exception, child: Child | None) -> None:
        console.print(f"[red]{name}: {exc!r}[/red]\n{traceback.format_exc()}")
        errors[name] = f"{type(exc).__name__}: {exc}"
        if child is not None and (tail := child.log_tail()):
            console.print(f"[dim]{child.name} log:\n{tail}[/dim]")
        for subject in [s for s in run.subjects if s.name == name]:
            run.subjects.remove(subject)
            subject.close()

    try:
        note(
            "starting canopy dap --port 0 (twice), canopy serve --port 0"
            " and python -m debugpy.adapter --port 0"
        )
        canopy_child = start_canopy(directory, adapter_root, profile)
        run.children.append(canopy_child)
        pod_data = directory / "pod-data"
        server_child = start_server(directory, adapter_root, pod_data)
        run.children.append(server_child)
        pod_child = start_canopy(
            directory, adapter_root, None, name="canopy-pod-adapter", data_dir=pod_data
        )
        run.children.append(pod_child)
        debugpy_child: Child | None = None
        if debugpy_version() is None:
            errors["debugpy"] = "debugpy is not installed: pip install debugpy"
        else:
            debugpy_child = start_debugpy(directory)
            run.children.append(debugpy_child)
        try:
            set_up_canopy(run, canopy_child)
        except Exception as exc:
            failed("canopy", exc, canopy_child)
        try:
            set_up_pod(run, server_child, pod_child, pod_data)
        except Exception as exc:
            failed(POD_SUBJECT, exc, pod_child)
            if tail := server_child.log_tail():
                console.print(f"[dim]{server_child.name} log:\n{tail}[/dim]")
        if debugpy_child is not None:
            try:
                set_up_debugpy(run, debugpy_child, directory)
            except Exception as exc:
                failed("debugpy", exc, debugpy_child)
        subjects = list(run.subjects)
        if not subjects:
            return results
        rounds = " and ".join(f"{plan.counts(s.name).rounds} on {s.name}" for s in subjects)
        note(f"rounds of {', '.join(ROUND)}: {rounds}")
        watch = CpuWatch(run.groups).start()
        echo = start_echo(run, directory)
        requests, results["tcp_echo_ms"] = measure_requests(subjects, plan, echo)
        results["requests_cpu"] = watch.stop()
        hits_text = " and ".join(f"{plan.counts(s.name).hits} on {s.name}" for s in subjects)
        note(f"breakpoint hits: {hits_text}")
        watch = CpuWatch(run.groups).start()
        hits = measure_hits(subjects, plan)
        results["hits_cpu"] = watch.stop()
        for subject in subjects:
            results[subject.name] = {**requests[subject.name], **hits[subject.name]}
        if run.canopy_port is not None and any(s.name == "canopy" for s in subjects):
            # Last: once debugpy listens in the adapter, it traces the adapter's tree threads.
            note(f"step into a node's Python code: {plan.canopy.python_steps} and as many plain")
            try:
                results["step_into_python"] = measure_python_steps(run.canopy_port, plan)
            except Exception as exc:
                failed("step_into_python", exc, canopy_child)
    except Exception as exc:
        console.print(f"[red]{exc!r}[/red]\n{traceback.format_exc()}")
        errors["measurement"] = f"{type(exc).__name__}: {exc}"
        for child in run.children:
            if tail := child.log_tail():
                console.print(f"[dim]{child.name} log:\n{tail}[/dim]")
    finally:
        run.close()
    return results


def run(plan: Plan, adapter_root: Path, profile: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    quietness = idle_check()
    with tempfile.TemporaryDirectory(prefix="canopy-dap-bench-") as folder:
        results = measure(plan, Path(folder), adapter_root, profile)
    errors = results.pop("errors")
    canopy = results.get("canopy")
    pod = results.get(POD_SUBJECT)
    debugpy = results.get("debugpy")
    pod_reason = None
    if pod is None:
        pod_reason = errors.get(POD_SUBJECT) or errors.get("measurement") or "not measured"
    in_process = None if canopy is None else {"adapter": "canopy dap --port 0", **canopy}
    through_pod = None
    if pod is not None:
        through_pod = {
            "adapter": "canopy dap --port 0, launch with pod: local",
            "server": "canopy serve --port 0 (CANOPY_PODS=local), found through server.json",
            "note": "the adapter answers stackTrace (after the first of a stop), scopes and"
            " variables from the view it fetched at the stop, as in-process; evaluate and"
            " stack_trace_after_stop_ms cross to the pod worker every time",
            **pod,
        }
    echo = results.get("tcp_echo_ms")
    found_targets = targets(canopy, pod, echo, pod_reason)
    found_targets.append(python_stop_target(results.get("step_into_python"), errors))
    graded = [t["pass"] for t in found_targets if t["pass"] is not None]
    report: dict[str, Any] = {
        "benchmark": "canopy-dap-latency",
        "mode": plan.mode,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine_info(), **quietness},
        "code": code_version(adapter_root),
        "plan": {
            "canopy": asdict(plan.canopy),
            "canopy_through_pod": asdict(plan.pod),
            "debugpy": asdict(plan.reference),
            "blackboard_keys": BLACKBOARD_KEYS,
            "debuggee_locals": DEBUGGEE_LOCALS,
            "transport": "TCP 127.0.0.1, client TCP_NODELAY, one request at a time",
        },
        "profiled": str(profile) if profile else None,
        "machine_floor": {
            "tcp_echo_ms": echo,
            "what": "120-byte TCP echo round trip between this process and a child process,"
            " once before every measured round: the machine's own latency, with no DAP",
        },
        "canopy": {
            "in_process": in_process,
            "through_pod": through_pod,
            "through_pod_reason": pod_reason,
            "step_into_python": results.get("step_into_python"),
        },
        "debugpy": None
        if debugpy is None
        else {"adapter": "python -m debugpy.adapter --port 0, launch request", **debugpy},
        "debugpy_reason": None
        if debugpy is not None
        else errors.get("debugpy") or errors.get("measurement") or "not measured",
        "ratio_debugpy_over_canopy": ratios(canopy, debugpy) if canopy and debugpy else None,
        "cpu": {"requests": results.get("requests_cpu"), "hits": results.get("hits_cpu")},
        "targets": found_targets,
        "all_targets_pass": bool(graded) and all(graded),
        "errors": errors,
        "duration_s": round(time.perf_counter() - started, 2),
    }
    return report


# -- report ----------------------------------------------------------------------------------


def latency_table(report: Mapping[str, Any]) -> Table:
    canopy = report["canopy"]["in_process"] or {}
    pod = report["canopy"]["through_pod"] or {}
    debugpy = report["debugpy"] or {}
    ratio = report["ratio_debugpy_over_canopy"] or {}
    table = Table(title=f"DAP latency in ms ({report['mode']})", title_justify="left")
    table.add_column("measure", no_wrap=True)
    columns = ("canopy p50", "p99", "pod p50", "p99", "debugpy p50", "p99", "ratio p50", "p99")
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)

    def cell(side: Mapping[str, Any], kind: str, q: str) -> str:
        summary = side.get("requests", {}).get(kind) if kind in REQUESTS else side.get(kind)
        return f"{summary[q]:.3f}" if summary else "-"

    rows = [(kind, kind, kind) for kind in REQUESTS]
    rows += [
        ("hit -> stopped", "hit_to_stopped_ms", "hit_to_stopped"),
        ("threads (floor)", "floor_threads", "floor_threads"),
    ]
    for label, kind, key in rows:
        factor = ratio.get(key, {})
        table.add_row(
            label,
            cell(canopy, kind, "p50"),
            cell(canopy, kind, "p99"),
            cell(pod, kind, "p50"),
            cell(pod, kind, "p99"),
            cell(debugpy, kind, "p50"),
            cell(debugpy, kind, "p99"),
            f"{factor['p50']:.0f}x" if factor.get("p50") else "-",
            f"{factor['p99']:.0f}x" if factor.get("p99") else "-",
        )
    return table


def print_summary(report: Mapping[str, Any]) -> None:
    console.print(latency_table(report))
    canopy = report["canopy"]["in_process"]
    pod = report["canopy"]["through_pod"]
    sides = (("canopy", canopy), ("canopy through a pod", pod), ("debugpy", report["debugpy"]))
    for name, side in sides:
        if side:
            loop, first = side["continue_to_stopped_ms"], side["stack_trace_after_stop_ms"]
            console.print(
                f"{name}: continue -> stopped p50 {loop['p50']:.3f} / p99 {loop['p99']:.3f} ms;"
                f" first stackTrace of a stop p50 {first['p50']:.3f} / p99 {first['p99']:.3f} ms;"
                f" response bytes {side['response_bytes']}"
            )
    steps = report["canopy"]["step_into_python"]
    if steps:
        python, plain = steps["python_stop_ms"], steps["plain_step_in_ms"]
        console.print(
            f"Step Into Target -> Python stop p50 {python['p50']:.3f} / p99 {python['p99']:.3f}"
            f" ms (the plain step into: p50 {plain['p50']:.3f} / p99 {plain['p99']:.3f} ms;"
            f" the first, starting the Python session: {steps['first_ms']:.1f} ms)"
        )
    if report["debugpy"] is None:
        console.print(f"[yellow]debugpy not measured: {report['debugpy_reason']}[/yellow]")
    echo = report["machine_floor"]["tcp_echo_ms"]
    if echo:
        console.print(
            f"machine floor, bare TCP echo between two processes: p50 {echo['p50']:.3f}"
            f" / p90 {echo['p90']:.3f} / p99 {echo['p99']:.3f} ms"
        )
    if pod is None:
        console.print(f"[yellow]through a pod: null ({report['canopy']['through_pod_reason']})")
    for phase, cpu in report["cpu"].items():
        if cpu:
            console.print(
                f"{phase}: {cpu['wall_s']} s, debuggers {cpu['debuggers_cpu_s']} s CPU,"
                f" others {cpu['other_cores']} cores"
            )
    for target in report["targets"]:
        if target["pass"] is None:
            mark = "[yellow]N/A [/yellow]"
        else:
            mark = "[green]PASS[/green]" if target["pass"] else "[red]FAIL[/red]"
        floor, echo_p99 = target.get("floor_p99_ms"), target.get("tcp_echo_p99_ms")
        context = f" (p99 of threads {floor} ms, of a bare TCP echo {echo_p99} ms)"
        if target.get("reason"):
            context = f" ({target['reason']})"
        console.print(
            f"{mark} {target['name']}: {target['measured_ms']} {target['op']}"
            f" {target['threshold_ms']:g} ms"
            + (context if floor is not None or target.get("reason") else "")
        )
    for name, error in report["errors"].items():
        console.print(f"[red]{name}: {error}[/red]")
    console.print(f"took {report['duration_s']:.1f} s")


def print_profile(path: Path, limit: int = 30) -> None:
    """The adapter's most expensive functions (its main thread: the event loop)."""
    if not path.is_file():
        console.print(f"[yellow]no profile written at {path}[/yellow]")
        return
    stream = _ConsoleStream()
    stats = pstats.Stats(str(path), stream=stream)  # type: ignore[arg-type]
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


class _ConsoleStream:
    def write(self, text: str) -> int:
        sys.stderr.write(text)
        return len(text)


# -- entry points ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 30 s in all")
    parser.add_argument("--out", type=Path, help="also write the JSON result to this file")
    parser.add_argument(
        "--adapter-root",
        type=Path,
        default=ROOT,
        metavar="DIR",
        help="run the canopy adapter from this source tree (e.g. an export of another commit);"
        " default: this repository",
    )
    parser.add_argument(
        "--profile-adapter",
        type=Path,
        metavar="PATH",
        help="run the canopy adapter under cProfile, writing its stats to PATH",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    profile = args.profile_adapter.resolve() if args.profile_adapter else None
    report = run(QUICK if args.quick else FULL, args.adapter_root.resolve(), profile)
    print_summary(report)
    if profile is not None:
        print_profile(profile)
    emit_report(report, args.out)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
