"""The debug engine: runs one behaviour tree, records it, and stops where the debugger asks.

Each execution ticks in its own thread, driving py_trees' ``tick()`` generator itself (cheaper
than ``BehaviourTree.tick()``, and it hands control back between any two node updates). Every
debugger stop is the tick thread waiting; control calls from the event loop wake it.

What it costs when nothing is set: per node and tick, one lookup of the node's
:class:`_NodeState`, one status comparison and one flag test.
Status changes at a node's yield, INVALID transitions through a ``stop()`` hook, and blackboard
writes through the execution's :class:`~server.runtime.blackboard.RecordingStorage` become
events handed to the :class:`~server.runtime.recorder.EventRecorder`, which never blocks on I/O.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from types import FrameType, TracebackType
from typing import Any, Final

from py_trees.behaviour import Behaviour
from py_trees.common import Status

from ..llm.costs import CostTable
from .agent_summary import AGENT_NAMES, agent_fields
from .agents import Agent, AgentHost
from .blackboard import MISSING, BlackboardView, Installation, RecordingStorage, absolute
from .breakpoints import (
    Breakpoint,
    BreakpointSpec,
    ExceptionFilter,
    Position,
    Watch,
    WatchSpec,
    resolve_breakpoint,
    resolve_watch,
)
from .definition import BuiltTree, TreeDefinition, build_tree
from .expressions import ExpressionError
from .expressions.errors import EvalError
from .failures import agent_failure_report, failure_summary, raised_report
from .raised import raised_frames
from .recorded import RecordedCalls
from .recorder import EventRecorder
from .user_faults import RUNTIME_CONTROL_FLOW
from .values import jsonable

__all__ = [
    "CaptureLevel",
    "Execution",
    "Mode",
    "Notification",
    "RunState",
    "StepKind",
    "StopInfo",
    "end_text",
]

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 100
EXECUTION_THREAD_PREFIX = "execution-"
"""Names the threads that run behaviour code (debugpy must trace those, and only those)."""
TERMINAL = (Status.SUCCESS, Status.FAILURE)


class Mode(StrEnum):
    """How ticks are paced."""

    MANUAL = "manual"
    AUTO = "auto"
    INTERVAL = "interval"
    PAUSED = "paused"


_PACED: Final = frozenset({Mode.AUTO, Mode.INTERVAL})
"""Modes that tick on their own: a tree waiting only on agents' calls ticks when one finishes
(auto mode ticks only then; interval mode also at its pace)."""


class CaptureLevel(StrEnum):
    """``verbose``: every status change and blackboard write; ``silent``: lifecycle, errors and
    per-tick summaries only."""

    VERBOSE = "verbose"
    SILENT = "silent"


class RunState(StrEnum):
    """What the tick thread is doing."""

    IDLE = "idle"
    RUNNING = "running"
    STOPPED = "stopped"
    ENDED = "ended"


class StepKind(StrEnum):
    """Resume actions (DAP ``next``, ``stepIn``, ``stepOut``, ``continue``)."""

    OVER = "over"
    INTO = "into"
    OUT = "out"
    CONTINUE = "continue"


@dataclass(frozen=True, slots=True)
class StopInfo:
    """Why and where the execution stopped."""

    reason: str
    node_id: str
    position: str
    tick: int
    breakpoint_ids: tuple[int, ...] = ()
    description: str = ""
    exception: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """Something clients of the execution should hear about (``stopped``, ``continued``,
    ``output``, ``ended``)."""

    kind: str
    execution_id: str
    stop: StopInfo | None = None
    text: str = ""
    category: str = "console"
    reason: str = ""
    status: str = ""  # the root's status, for ``ended``


def end_text(reason: str, detail: str | None) -> str:
    """An end as one line, as every view shows it: ``failed: KeyError in check_battery``,
    ``completed``."""
    return f"{reason}: {detail}" if detail else reason


class _Terminate(Exception):
    """Unwinds the tick thread when the execution is stopped for good."""


@dataclass(slots=True, eq=False)
class _NodeState:
    """What the engine keeps about one behaviour. Kept beside the behaviour rather than set on
    it, so that py_trees' class stays as it is and every read is typed; a slotted object makes
    the per-tick ``visits`` increment and ``status`` read as cheap as instance attributes."""

    id: str
    """The stable id (also on the behaviour as ``canopy_id``, for debugpy conditions)."""
    status: Status
    """The last status recorded: a status change is a yield whose status differs."""
    visits: int = 0
    """How many times the node's update ran."""
    stopping: bool = False
    """Inside the node's ``stop()``: the ``tick()`` call py_trees makes there to reset the
    node's iterator is not the node running, and must not hit a before-breakpoint."""


@dataclass(frozen=True, slots=True)
class _LiveTree:
    """A built tree and the state of each of its nodes, swapped as one on a hot reload so
    that no reader ever pairs a tree with the other tree's states."""

    built: BuiltTree
    nodes: dict[Behaviour, _NodeState]
    """Every behaviour of the tree, in pre-order."""


@dataclass(slots=True)
class _Debug:
    """Breakpoints in the shapes the hot path wants: keyed by behaviour object."""

    before: dict[Behaviour, list[Breakpoint]] = field(default_factory=dict)
    after: dict[Behaviour, list[Breakpoint]] = field(default_factory=dict)
    watches: dict[str, list[Watch]] = field(default_factory=dict)


class Execution:
    """One running tree with its debugger state. Thread-safe control methods; all tree work
    happens on the execution's own thread."""

    def __init__(
        self,
        execution_id: str,
        definition: TreeDefinition,
        recorder: EventRecorder,
        *,
        mode: Mode = Mode.MANUAL,
        interval_ms: float = 100.0,
        max_ticks: int | None = None,
        keep_ticking: bool = False,
        capture: CaptureLevel = CaptureLevel.VERBOSE,
        blackboard: Mapping[str, Any] | None = None,
        stop_on_entry: bool = False,
        notify: Callable[[Notification], None] = lambda _: None,
        forked_from: tuple[str, int] | None = None,
        recorded: RecordedCalls | None = None,
        costs: CostTable | None = None,
    ) -> None:
        self.id = execution_id
        self.forked_from = forked_from
        """The execution and tick a fork (or a restart) starts from."""
        self.definition = definition
        self.recorder = recorder
        self.capture = capture
        self.max_ticks = max_ticks
        self.keep_ticking = keep_ticking
        self.stop_on_entry = stop_on_entry
        self.tick_count = 0
        self.state = RunState.IDLE
        self.stopped: StopInfo | None = None
        self.end_reason: str | None = None
        self.end_detail: str | None = None
        self._failure: str | None = None  # this tick's exception, as the end detail it makes
        self._notify = notify
        self._mode = mode
        self._interval = interval_ms / 1000
        self._initial_blackboard = {**definition.blackboard, **(blackboard or {})}
        self.storage = RecordingStorage()
        self._installation = Installation(self.storage)
        self._rebind_lock = threading.Lock()
        self._reload: tuple[TreeDefinition, bool, Future[list[str]]] | None = None
        self._last_tick_started = 0.0
        self._paused = 0.0  # seconds the tick in progress has spent stopped for the debugger
        self._tick_owed = False  # verbose capture, inside a tick not yet announced
        self._cond = threading.Condition()
        self._pending_ticks = 0
        self._pause_requested = False
        self._pause_reason = "pause"
        self._terminate = False
        self._resume: StepKind | None = None
        self._pending_writes: list[tuple[str, Any]] = []
        self._step: StepKind | None = None
        self._step_target: Behaviour | None = None
        self._watching = False
        self._pending_data_stop: tuple[Watch, str] | None = None
        self._current: Behaviour | None = None
        self._debug = _Debug()
        self._breakpoints: list[Breakpoint] = []
        self._watches: list[Watch] = []
        self._filters: frozenset[ExceptionFilter] = frozenset()
        self._next_breakpoint_id = 1
        self._thread = threading.Thread(
            target=self._main, name=f"{EXECUTION_THREAD_PREFIX}{execution_id}"
        )
        self.agents = AgentHost(
            execution_id=execution_id,
            loop=recorder.loop,
            record=self.record_event,
            tick=lambda: self.tick_count,
            silent=capture is CaptureLevel.SILENT,
            tree_path=definition.path,
            recorded=recorded,
            costs=costs,
            wake=self._call_finished,
            output=self._output,
        )
        """What the tree's agents share: the loop their calls run on, the recorder, models."""
        self._waiting_on_calls = False  # only agents' calls can change the tree
        self._call_done = False  # a call finished since the last tick began
        self._tree = self._build(definition)

    # -- control (any thread) ----------------------------------------------------------------

    def start(self) -> None:
        """Record the start and begin the tick thread."""
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the tick thread to finish; True when it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until the tree is not ticking: idle with no tick pending, stopped, or ended."""
        with self._cond:
            return self._cond.wait_for(self._settled, timeout)

    def _settled(self) -> bool:
        if self.state is RunState.IDLE:
            return not self._pending_ticks and self._mode in (Mode.MANUAL, Mode.PAUSED)
        return self.state in (RunState.STOPPED, RunState.ENDED)

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def root(self) -> Behaviour:
        return self._tree.built.root

    def request_ticks(self, count: int = 1) -> None:
        """Manual mode: tick ``count`` more times."""
        with self._cond:
            self._pending_ticks += count
            self._cond.notify_all()

    def set_mode(self, mode: Mode, interval_ms: float | None = None) -> None:
        """Switch pacing; ``paused`` stops ticking at the next tick boundary."""
        with self._cond:
            self._mode = mode
            if interval_ms is not None:
                self._interval = interval_ms / 1000
            self._cond.notify_all()

    def pause(self, reason: str = "pause") -> None:
        """Stop at the next node boundary (or right away when between ticks); ``entry`` for the
        stop a client asks for before the first tick."""
        with self._cond:
            self._pause_reason = reason
            self._pause_requested = True
            self._watching = True
            self._cond.notify_all()

    def resume(self, action: StepKind) -> None:
        """Leave a stop, continuing or stepping."""
        with self._cond:
            if self.state is RunState.STOPPED:
                self._resume = action
                self.stopped = None
                self.state = RunState.RUNNING
                self._cond.notify_all()

    def terminate(self) -> None:
        """End the execution as soon as the tick thread can."""
        with self._cond:
            self._terminate = True
            self._cond.notify_all()

    def set_blackboard(self, key: str, value: Any) -> None:
        """Write a value as the client: now if the tree is not ticking, else between ticks."""
        with self._cond:
            if self.state in (RunState.STOPPED, RunState.IDLE):
                self._client_write(key, value)
            else:
                self._pending_writes.append((key, value))

    def _client_write(self, key: str, value: Any) -> None:
        """A client's write; over an output of an agent's answered call, the log also says
        that what runs downstream reads an edited answer (``AgentOutputEdited``)."""
        old = self.storage.get(key, MISSING)
        self.storage[key] = value
        for node in self._tree.built.behaviours.values():
            if isinstance(node, Agent):
                node.edited(key, None if old is MISSING else old, value)

    def reload(
        self, definition: TreeDefinition, *, keep_blackboard: bool = True
    ) -> Future[list[str]]:
        """Replace the tree, keeping id, history and breakpoints (rebound by node id). Applied
        between ticks; a stop in the middle of a tick abandons the rest of that tick. The
        future gives the node ids of breakpoints whose node no longer exists."""
        done: Future[list[str]] = Future()
        with self._cond:
            if self.state is RunState.ENDED:
                done.set_exception(RuntimeError("the execution has ended"))
                return done
            self._reload = (definition, keep_blackboard, done)
            self._cond.notify_all()
        return done

    def set_breakpoints(self, specs: Sequence[BreakpointSpec]) -> list[Breakpoint]:
        """Replace every node breakpoint; return them resolved (verified or with the reason)."""
        resolved = []
        for spec in specs:
            resolved.append(resolve_breakpoint(self._next_breakpoint_id, spec, self.definition))
            self._next_breakpoint_id += 1
        self._breakpoints = resolved
        self._rebind()
        return resolved

    def set_watches(self, specs: Sequence[WatchSpec]) -> list[Watch]:
        """Replace every data breakpoint."""
        watches = []
        for spec in specs:
            watches.append(resolve_watch(self._next_breakpoint_id, spec))
            self._next_breakpoint_id += 1
        self._watches = watches
        self._rebind()
        return watches

    def set_exception_filters(self, filters: Sequence[ExceptionFilter]) -> None:
        """Choose which exceptional events stop the execution."""
        self._filters = frozenset(filters)
        self._rebind()

    # -- state while stopped -----------------------------------------------------------------

    def node_by_id(self, node_id: str) -> Behaviour | None:
        """The live behaviour with that stable id."""
        return self._tree.built.behaviours.get(node_id)

    def node_id(self, node: Behaviour) -> str:
        """The stable id of a behaviour of the running tree."""
        return self._tree.nodes[node].id

    def path(self) -> list[Behaviour]:
        """From the current node up to the root (the current node first)."""
        node: Behaviour | None = self._current or self.root
        chain = []
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain

    def node_state(self, node: Behaviour) -> dict[str, Any]:
        """What a client shows for one node; for an agent, its last call (``agent``)."""
        state = self._tree.nodes[node]
        spec = self.definition.node(state.id)
        shown = {
            "id": state.id,
            "name": node.name,
            "kind": spec.kind if spec else type(node).__name__,
            "status": node.status.value,
            "feedback": node.feedback_message,
            "visits": state.visits,
            "params": jsonable(spec.params) if spec else {},
        }
        if isinstance(node, Agent):
            shown["agent"] = jsonable(node.summary())
        return shown

    def nodes(self) -> Iterator[Behaviour]:
        """Every node, pre-order (parents before children, as in the tree file)."""
        return _preorder(self.root)

    def blackboard(self) -> dict[str, Any]:
        """JSON-safe copy of the blackboard, by absolute key."""
        return {key: jsonable(value) for key, value in sorted(self.storage.items())}

    def context(self, node: Behaviour | None = None) -> Mapping[str, Any]:
        """Names visible to expressions: the node's state over the blackboard."""
        node = node or self._current or self.root
        return _NodeContext(self, node, self._tree.nodes[node])

    # -- the tick thread ---------------------------------------------------------------------

    def _main(self) -> None:
        reason, detail = "completed", ""
        try:
            self._record_start()
            if self.stop_on_entry:
                self._stop(StopInfo("entry", self.node_id(self.root), "tick", 0))
            while self._await_tick():
                self._tick()
                if self.root.status in TERMINAL and not self.keep_ticking:
                    if self._failure is not None:  # the tree ended because a behaviour raised
                        reason, detail = "failed", self._failure
                    break
                if self.max_ticks is not None and self.tick_count >= self.max_ticks:
                    reason = "max_ticks"
                    break
            else:
                reason = "stopped"
        except _Terminate:
            reason = "stopped"
        except BaseException as exc:  # the engine's own fault: the execution must still end
            log.exception("execution %s failed", self.id)
            reason, detail = "error", f"{type(exc).__name__}: {exc}"
        self._end(reason, detail)

    def _await_tick(self) -> bool:
        """Wait until the next tick is due; False once the execution must end."""
        with self._cond:
            while True:
                if self._terminate:
                    return False
                if self._apply_pending_writes() or self._reload is not None:
                    self._waiting_on_calls = False  # the tree may take another path now
                self._apply_reload()
                if self._pause_requested:
                    self._pause_requested = False
                    self._cond.release()
                    try:
                        self._stop(
                            StopInfo(
                                self._pause_reason,
                                self.node_id(self.root),
                                "tick",
                                self.tick_count,
                            )
                        )
                    finally:
                        self._cond.acquire()
                    continue
                if self._pending_ticks > 0:
                    self._pending_ticks -= 1
                    break
                if self._mode is Mode.AUTO:
                    if self._waiting_on_calls and not self._call_done:
                        # Ticking would only poll calls in flight: wait for one to finish, or
                        # to turn slow (a tick tells it).
                        slow = self.agents.next_slow()
                        wait = None if slow is None else slow - time.perf_counter()
                        if wait is None or wait > 0:
                            self._cond.wait(wait)
                            continue
                    break
                if self._mode is Mode.INTERVAL:
                    wait = self._last_tick_started + self._interval - time.monotonic()
                    if wait <= 0 or (self._waiting_on_calls and self._call_done):
                        # A call the tree waits on finished: its agent goes on now, not at
                        # the next tick the interval would bring.
                        break
                    self._cond.wait(wait)
                    continue
                self.state = RunState.IDLE
                self._cond.notify_all()
                self._cond.wait()
            self.state = RunState.RUNNING
            self._call_done = False
            self._last_tick_started = time.monotonic()
        return True

    def _call_finished(self) -> None:
        """An agent's call is over (any thread): a tree waiting on calls ticks again."""
        with self._cond:
            self._call_done = True
            self._cond.notify_all()

    def _only_calls_run(self, root: Behaviour) -> bool:
        """Whether the tree is RUNNING only because agents wait on their calls: no other leaf
        runs, so another tick now could change nothing."""
        if root.status is not Status.RUNNING or not self.agents.in_flight:
            return False
        return not any(
            node.status is Status.RUNNING and not node.children and not isinstance(node, Agent)
            for node in self._tree.nodes
        )

    def _apply_pending_writes(self) -> bool:
        """Write what clients set while the tree ticked; whether there was anything."""
        writes, self._pending_writes = self._pending_writes, []
        for key, value in writes:
            self._client_write(key, value)
        return bool(writes)

    def _tick(self) -> None:
        self.tick_count += 1
        tick = self.tick_count
        verbose = self.capture is CaptureLevel.VERBOSE
        record = self.recorder.record
        # TickStarted is written just before the tick's first event: a tick in which nothing
        # changes costs one event (its TickCompleted summary), not two.
        self._tick_owed = verbose
        self._failure = None
        self._paused = 0.0
        started = time.perf_counter()
        tree = self._tree
        root = tree.built.root
        nodes = tree.nodes
        abandoned = False
        after = self._debug.after  # breakpoints changed mid-tick apply from the next tick
        with self._installation:
            try:
                for node in root.tick():
                    state = nodes[node]
                    state.visits += 1
                    status = node.status
                    if status is not state.status:
                        self._changed(node, state, status, verbose)
                    if self._watching:
                        self._after_node(node)
                    if after and node in after:
                        self._current = node
                        self._hit(node, after[node], Position.AFTER)
            except _Reload:
                abandoned = True
                self._reset_tree(Status.INVALID, verbose)
            except _Terminate:
                raise
            except RUNTIME_CONTROL_FLOW:
                raise
            except BaseException as exc:  # sys.exit() in update() is the behaviour's fault too
                self._raised(exc, verbose)
        wall = time.perf_counter() - started
        paused = min(self._paused, wall)
        paused_ms = round(paused * 1000, 3)
        self._tick_owed = False
        completed: dict[str, Any] = {
            "execution_id": self.id,
            "tick": tick,
            "root_status": root.status.value,
            "duration_ms": round((wall - paused) * 1000, 3),  # the tree's own time
        }
        if paused_ms:  # only when the tick stopped: an unstopped tick costs no more bytes
            completed["paused_ms"] = paused_ms
        record("TickCompleted", completed)
        self._waiting_on_calls = self._mode in _PACED and self._only_calls_run(root)
        if abandoned:
            self._reloaded_mid_tick()
            return
        if verbose and tick % SNAPSHOT_EVERY == 0:
            self._snapshot()
        if self._step is not None:  # over, or into/out that found nothing sooner in this tick
            self._current = root
            self._stop(StopInfo("step", nodes[root].id, "tick", tick))

    def record_event(self, event_type: str, payload: dict[str, Any]) -> None:
        """Record an event of this execution from any thread; from the tick thread, after the
        ``TickStarted`` of the tick in progress (agents record their calls' events here)."""
        if threading.current_thread() is self._thread:
            self._announce_tick()
        self.recorder.record(event_type, payload)

    def _announce_tick(self) -> None:
        """Write TickStarted once, before the first event recorded inside a tick."""
        if self._tick_owed:
            self._tick_owed = False
            self.recorder.record("TickStarted", {"execution_id": self.id, "tick": self.tick_count})

    def _reloaded_mid_tick(self) -> None:
        """A reload arrived while stopped mid-tick: the old tree was reset; swap it in."""
        self._apply_reload()
        self._current = self.root
        self._stop(
            StopInfo(
                "pause", self.node_id(self.root), "tick", self.tick_count, description="reloaded"
            )
        )

    def _changed(self, node: Behaviour, state: _NodeState, status: Status, verbose: bool) -> None:
        previous = state.status
        state.status = status
        if verbose:
            if self._tick_owed:
                self._announce_tick()
            payload: dict[str, Any] = {
                "execution_id": self.id,
                "tick": self.tick_count,
                "node_id": state.id,
                "status": status.value,
                "previous": previous.value,
            }
            if node.feedback_message:
                payload["feedback"] = node.feedback_message
            self.recorder.record("NodeStatusChanged", payload)
        report = None
        if status is Status.FAILURE and isinstance(node, Agent):
            report = self._agent_failure_report(node, state)
        if self._watching and self._step is StepKind.INTO:
            self._current = node
            self._stop(StopInfo("step", state.id, "after", self.tick_count), report=report)
        elif status is Status.FAILURE and ExceptionFilter.FAILED in self._filters:
            self._current = node
            # An agent's failure says why: its error message (AgentCallFailed's) is its feedback.
            why = f": {node.feedback_message}" if isinstance(node, Agent) else ""
            stop = StopInfo(
                "failure",
                state.id,
                "after",
                self.tick_count,
                description=f"{node.name} returned FAILURE{why}",
            )
            self._stop(stop, report=report)
        elif report is not None:
            self._output(report, "stderr")

    def _agent_failure_report(self, agent: Agent, state: _NodeState) -> str | None:
        """An agent's failed call as told on stderr as it happens, like a behaviour's
        exception (with no exception filter set, it is the only word of it before the end);
        None when the failure was not a call's."""
        failure = agent.take_failure()
        if failure is None:
            return None
        message, frame = failure
        spec = self.definition.node(state.id)
        source = spec.source if spec else None
        return agent_failure_report(agent.name, state.id, self.tick_count, message, source, frame)

    def _after_node(self, node: Behaviour) -> None:
        """Decisions at a node boundary (only while something is being watched)."""
        self._current = node
        if self._pause_requested:
            self._pause_requested = False
            self._stop(StopInfo(self._pause_reason, self.node_id(node), "after", self.tick_count))
            return
        if self._pending_data_stop is not None:
            watch, description = self._pending_data_stop
            self._pending_data_stop = None
            self._stop(
                StopInfo(
                    "data breakpoint",
                    self.node_id(node),
                    "after",
                    self.tick_count,
                    (watch.id,),
                    description,
                )
            )
            return
        if self._step is StepKind.OUT and node is self._step_target:
            self._stop(StopInfo("step", self.node_id(node), "after", self.tick_count))

    def _before_node(self, node: Behaviour) -> None:
        self._current = node
        breakpoints = self._debug.before.get(node)
        if breakpoints:
            self._hit(node, breakpoints, Position.BEFORE)

    def _hit(self, node: Behaviour, breakpoints: list[Breakpoint], position: Position) -> None:
        """Evaluate the breakpoints on a node; stop if any of them says so. Nothing is
        allocated unless an expression needs its names or something stops."""
        stopping: list[int] = []
        notes: list[str] = []
        context: Mapping[str, Any] | None = None
        for breakpoint in breakpoints:
            if breakpoint.condition is not None:
                context = context or self.context(node)
                try:
                    if not breakpoint.condition.truthy(context):
                        continue
                except ExpressionError as error:
                    stopping.append(breakpoint.id)
                    notes.append(f"condition {breakpoint.spec.condition!r} failed: {error}")
                    continue
            breakpoint.hits += 1
            if breakpoint.hit_condition and not breakpoint.hit_condition.matches(breakpoint.hits):
                continue
            if breakpoint.log_message is not None:
                context = context or self.context(node)
                self._output(breakpoint.log_message.render(context) + "\n")
                continue
            stopping.append(breakpoint.id)
        if stopping:
            self._stop(
                StopInfo(
                    "breakpoint",
                    self.node_id(node),
                    position.value,
                    self.tick_count,
                    tuple(stopping),
                    "; ".join(notes),
                )
            )

    def _raised(self, exc: BaseException, verbose: bool) -> None:
        """A behaviour raised: record it, maybe stop, fail the node and reset the tree."""
        nodes = self._tree.nodes
        node = _raising_node(exc.__traceback__, nodes) or self._current or self.root
        state = nodes[node]
        exception = f"{type(exc).__module__}.{type(exc).__qualname__}"
        info = {
            "execution_id": self.id,
            "tick": self.tick_count,
            "node_id": state.id,
            "exception": exception,
            "message": str(exc),
            "traceback": _frames(exc.__traceback__),
            "user_frames": raised_frames(exc.__traceback__),
        }
        self._announce_tick()
        self.recorder.record("BehaviourRaised", info)
        # Told as it happens, stop or no stop (right after the stop when there is one): with no
        # exception filter set, this is the only word a user gets of it before the end.
        spec = self.definition.node(state.id)
        report = raised_report(info, node.name, spec.source if spec else None)
        self._failure = failure_summary(exception, node.name)
        if ExceptionFilter.RAISED in self._filters:
            self._current = node
            stop = StopInfo(
                "exception",
                state.id,
                "after",
                self.tick_count,
                description=f"{info['exception']}: {exc}",
                exception=info,
            )
            self._stop(stop, report=report)
        else:
            self._output(report, "stderr")
        node.status = Status.FAILURE
        self._changed(node, state, Status.FAILURE, verbose)
        self._reset_tree(Status.FAILURE, verbose)

    def _reset_tree(self, root_status: Status, verbose: bool) -> None:
        """Stop every node (INVALID) and leave the root at ``root_status``."""
        root = self.root
        try:
            root.stop(root_status)
        except RUNTIME_CONTROL_FLOW:
            raise
        except BaseException:  # a terminate() that raises or exits must not end the engine
            log.exception("resetting the tree of execution %s", self.id)
        root.status = root_status
        state = self._tree.nodes[root]
        if state.status is not root_status:
            self._changed(root, state, root_status, verbose)

    def _stop(self, info: StopInfo, *, report: str | None = None) -> None:
        """Wait, as the debugger asked, until a client resumes or terminates. The time spent
        here is the tick's paused time, not the tree's: ``TickCompleted`` tells them apart.

        ``report`` (on stderr) follows the stop rather than preceding it: VS Code, given
        output between a continue and the stop, fetches the stack twice and then shows no
        exception widget."""
        stopped_at = time.perf_counter()
        with self._cond:
            self._step = None
            self._step_target = None
            self.stopped = info
            self.state = RunState.STOPPED
            self._resume = None
            self._cond.notify_all()
            # Tell the client first: recording wakes the flusher, which must not delay the stop.
            self._notify(Notification("stopped", self.id, stop=info))
        if report is not None:
            self._output(report, "stderr")
        self._announce_tick()
        self.recorder.record(
            "DebuggerStopped",
            {
                "execution_id": self.id,
                "tick": info.tick,
                "reason": info.reason,
                "node_id": info.node_id,
                "position": info.position,
                "breakpoint_ids": list(info.breakpoint_ids),
                **({"description": info.description} if info.description else {}),
            },
        )
        try:
            action = self._await_resume(info)
        finally:  # a reload or terminate unwinding the tick was paused all the same
            self._paused += time.perf_counter() - stopped_at
        self._notify(Notification("continued", self.id))
        self._begin_step(action)

    def _await_resume(self, info: StopInfo) -> StepKind:
        """Wait at a stop for a client's resume action, applying reloads meanwhile: one between
        ticks is applied here, one in the middle of a tick unwinds it (``_Reload``)."""
        with self._cond, self._installation.suspended():
            while True:
                if self._terminate:
                    raise _Terminate
                if self._resume is not None:
                    return self._resume
                if self._reload is not None:
                    if info.position != "tick":
                        self.stopped = None
                        self.state = RunState.RUNNING
                        raise _Reload
                    self._apply_reload()
                    continue
                self._cond.wait()

    def _begin_step(self, action: StepKind) -> None:
        if action is StepKind.CONTINUE:
            self._step = None
        else:
            self._step = action
            current = self._current or self.root
            self._step_target = current.parent if action is StepKind.OUT else None
            if action is StepKind.OUT and self._step_target is None:
                self._step = StepKind.OVER
        self._rebind()

    def _on_write(self, key: str, old: Any, new: Any) -> None:
        """Every blackboard write of this execution, from a behaviour or from a client."""
        verbose = self.capture is CaptureLevel.VERBOSE
        watches = self._debug.watches.get(key)
        watched = bool(watches) and self.state is RunState.RUNNING
        writer = self._writer(sys._getframe(2)) if verbose or watched else None
        if verbose:
            self._announce_tick()
            payload: dict[str, Any] = {
                "execution_id": self.id,
                "tick": self.tick_count,
                "key": key,
                "writer": self._tree.nodes[writer].id if writer is not None else "client",
            }
            if old is not MISSING:
                payload["old"] = jsonable(old)
            if new is not MISSING:
                payload["new"] = jsonable(new)
            self.recorder.record("BlackboardChanged", payload)
        if watches and watched:
            for watch in watches:
                if self._watch_fires(watch, writer):
                    shown = "unset" if new is MISSING else repr(jsonable(new))
                    self._pending_data_stop = (watch, f"{key} changed to {shown}")
                    break

    def _writer(self, frame: FrameType | None) -> Behaviour | None:
        """The behaviour of the running tree whose code wrote to the blackboard, found on the
        stack; None for a client."""
        nodes = self._tree.nodes
        depth = 0
        while frame is not None and depth < 12:
            candidate = frame.f_locals.get("self")
            # isinstance first: py_trees' blackboard clients answer getattr by raising.
            if isinstance(candidate, Behaviour) and candidate in nodes:
                return candidate
            frame = frame.f_back
            depth += 1
        return None

    def _watch_fires(self, watch: Watch, writer: Behaviour | None) -> bool:
        """Whether a watch's condition holds, at the node that wrote (an agent's condition
        names the call that answered), else at the current node."""
        if watch.condition is None:
            return True
        try:
            return watch.condition.truthy(self.context(writer))
        except ExpressionError as error:
            self._output(f"watch {watch.spec.key}: {error}\n", "stderr")
            return False

    def _output(self, text: str, category: str = "console") -> None:
        self._notify(Notification("output", self.id, text=text, category=category))

    # -- tree set-up -------------------------------------------------------------------------

    def _build(self, definition: TreeDefinition, *, keep_blackboard: bool = False) -> _LiveTree:
        built = build_tree(definition)
        for behaviour in built.behaviours.values():
            if isinstance(behaviour, Agent):
                behaviour.bind(self.agents)
        nodes = {
            node: _NodeState(node_id, node.status) for node_id, node in built.behaviours.items()
        }
        for node, state in nodes.items():
            self._hook_stop(node, state)
        if not keep_blackboard:
            self.storage.on_write = None
            self.storage.clear()
            self.storage.update({absolute(k): v for k, v in self._initial_blackboard.items()})
        self.storage.on_write = self._on_write
        return _LiveTree(built, nodes)

    def _apply_reload(self) -> None:
        """Swap in a requested tree (tick thread, between ticks)."""
        if self._reload is None:
            return
        definition, keep, done = self._reload
        self._reload = None
        try:
            tree = self._build(definition, keep_blackboard=keep)
        except Exception as exc:  # a bad definition leaves the running tree untouched
            done.set_exception(exc)
            return
        self.agents.cancel_all("reloaded")  # the old tree's calls answer no one now
        self.agents.tree_path = definition.path
        self.definition = definition
        self._current = None  # first: no reader may look up an old node in the new tree
        self._tree = tree
        specs = [b.spec for b in self._breakpoints]
        self._breakpoints = [
            resolve_breakpoint(b.id, b.spec, definition) for b in self._breakpoints
        ]
        unbound = sorted(
            {
                s.node
                for s, b in zip(specs, self._breakpoints, strict=True)
                if s.node and not b.verified
            }
        )
        self._rebind()
        self.recorder.record(
            "TreeReloaded",
            {
                "execution_id": self.id,
                "tick": self.tick_count,
                "tree": tree_model(definition),
                "kept_blackboard": keep,
                "unbound_breakpoints": unbound,
            },
        )
        done.set_result(unbound)
        self._notify(Notification("invalidated", self.id))

    def _hook_stop(self, node: Behaviour, state: _NodeState) -> None:
        """INVALID transitions happen in ``stop()`` and are never yielded: watch them there.
        ``state.stopping`` tells the before-breakpoint wrapper that the ``tick()`` call it sees
        is py_trees resetting the node's iterator inside ``stop()``, not the node running."""
        original = node.stop

        def stop(new_status: Status = Status.INVALID) -> None:
            state.stopping = True
            try:
                original(new_status)
            finally:
                state.stopping = False
            if new_status is Status.INVALID and state.status is not Status.INVALID:
                self._changed(node, state, Status.INVALID, self.capture is CaptureLevel.VERBOSE)

        # An instance attribute shadowing the method is the hook: py_trees calls ``self.stop``.
        node.stop = stop  # type: ignore[method-assign]

    def _rebind(self) -> None:
        """Rebuild the hot-path tables from the breakpoints, watches, filters and step."""
        with self._rebind_lock:
            self._rebind_locked()

    def _rebind_locked(self) -> None:
        debug = _Debug()
        tree = self._tree
        by_id = tree.built.behaviours
        for breakpoint in self._breakpoints:
            if not breakpoint.verified:
                continue
            for node_id in breakpoint.node_ids:
                node = by_id.get(node_id)
                if node is not None:
                    table = debug.after if _stops_after(breakpoint, node) else debug.before
                    table.setdefault(node, []).append(breakpoint)
        for watch in self._watches:
            if watch.verified:
                debug.watches.setdefault(watch.key, []).append(watch)
        for node, state in tree.nodes.items():
            self._wrap_before(node, state, node in debug.before)
        self._debug = debug
        self._watching = bool(
            debug.watches
            or self._step is not None
            or self._pause_requested
            or ExceptionFilter.FAILED in self._filters
        )

    def _wrap_before(self, node: Behaviour, state: _NodeState, wanted: bool) -> None:
        """Install (or remove) the check that stops before a node's update. A plain function
        that hands back the node's own generator: wrapping the generator instead would put the
        check in the path of every yield of the node's whole subtree."""
        wrapped = "tick" in vars(node)
        if wanted and not wrapped:
            original = node.tick

            def tick() -> Iterator[Behaviour]:
                if not state.stopping:
                    self._before_node(node)
                return original()

            # As in _hook_stop: an instance attribute shadowing the method, removed by ``del``.
            node.tick = tick  # type: ignore[method-assign]
        elif not wanted and wrapped:
            del node.tick

    # -- records -----------------------------------------------------------------------------

    def _record_start(self) -> None:
        definition = self.definition
        payload: dict[str, Any] = {
            "execution_id": self.id,
            "tree": tree_model(definition),
            "mode": self._mode.value,
            "capture": self.capture.value,
            "blackboard": self.blackboard(),
        }
        if self._mode is Mode.INTERVAL:
            payload["interval_ms"] = self._interval * 1000
        if self.max_ticks is not None:
            payload["max_ticks"] = self.max_ticks
        if self.keep_ticking:
            payload["keep_ticking"] = True
        if self.forked_from is not None:
            source, tick = self.forked_from
            payload["forked_from"] = {"execution_id": source, "tick": tick}
            recorded = self.agents.recorded
            if recorded is not None:
                payload["forked_from"]["edited"] = sorted(recorded.pinned)
                payload["forked_from"]["live"] = sorted(recorded.live)
        self.recorder.record("ExecutionStarted", payload)

    def _snapshot(self) -> None:
        self.recorder.record(
            "StateSnapshot",
            {
                "execution_id": self.id,
                "tick": self.tick_count,
                "statuses": {self.node_id(n): n.status.value for n in self.nodes()},
                "blackboard": self.blackboard(),
            },
        )

    def _end(self, reason: str, detail: str) -> None:
        self.agents.close()
        payload: dict[str, Any] = {
            "execution_id": self.id,
            "reason": reason,
            "ticks": self.tick_count,
            "root_status": self.root.status.value,
        }
        if detail:
            payload["detail"] = detail
        self.recorder.record("ExecutionEnded", payload)
        with self._cond:
            self.state = RunState.ENDED
            self.end_reason = reason
            self.end_detail = detail or None
            self._cond.notify_all()
        self._notify(
            Notification(
                "ended", self.id, reason=reason, text=detail, status=self.root.status.value
            )
        )


class _NodeContext(Mapping[str, Any]):
    """A node's state (``status``, ``name``, ``id``, ``tick``, ``visits``, ``feedback``) over
    the blackboard, each name looked up only when an expression reads it: conditions are
    evaluated on every hit and most read one or two names. At an agent, its last call's fields
    (:data:`~.agent_summary.AGENT_NAMES`) come before the blackboard too; elsewhere, such a name
    not on the blackboard is an error that says why."""

    __slots__ = ("_board", "_execution", "_node", "_state")
    NAMES: Final = ("status", "name", "id", "tick", "visits", "feedback")

    def __init__(self, execution: Execution, node: Behaviour, state: _NodeState) -> None:
        self._execution = execution
        self._node = node
        self._state = state
        self._board: BlackboardView | None = None

    def __getitem__(self, name: str) -> Any:
        node = self._node
        if name == "status":
            return node.status.value
        if name == "tick":
            return self._execution.tick_count
        if name == "name":
            return node.name
        if name == "id":
            return self._state.id
        if name == "visits":
            return self._state.visits
        if name == "feedback":
            return node.feedback_message
        if name in AGENT_NAMES:
            return self._agent_field(name)
        return self._blackboard()[name]

    def _agent_field(self, name: str) -> Any:
        node = self._node
        if isinstance(node, Agent):
            return agent_fields(node.summary())[name]
        board = self._blackboard()
        if name in board:
            return board[name]
        raise EvalError(
            f"{name!r} is a field of an agent's call, and node {node.name!r} is not an agent"
        )

    def _blackboard(self) -> BlackboardView:
        if self._board is None:
            self._board = BlackboardView(self._execution.storage)
        return self._board

    def __iter__(self) -> Iterator[str]:
        yield from self.NAMES
        agent = isinstance(self._node, Agent)
        if agent:
            yield from AGENT_NAMES
        yield from (
            name
            for name in self._blackboard()
            if name not in self.NAMES and not (agent and name in AGENT_NAMES)
        )

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Reload(Exception):
    """Unwinds a tick abandoned for a hot reload."""


def tree_model(definition: TreeDefinition) -> dict[str, Any]:
    """The tree as recorded in ``ExecutionStarted`` and ``TreeReloaded``: nodes in pre-order
    with their parent and source."""
    nodes: list[dict[str, Any]] = []

    def visit(spec: Any, parent: str | None) -> None:
        entry: dict[str, Any] = {"id": spec.id, "name": spec.name, "kind": spec.kind}
        entry["parent"] = parent
        if spec.source.path:
            entry.update(path=spec.source.path, line=spec.source.line, column=spec.source.column)
        nodes.append(entry)
        for child in spec.children:
            visit(child, spec.id)

    visit(definition.root, None)
    model = {
        "name": definition.name,
        "program": str(definition.path),
        "format": definition.format,
        "nodes": nodes,
    }
    if definition.factory is not None:
        model["factory"] = definition.factory
    return model


def _stops_after(breakpoint: Breakpoint, node: Behaviour) -> bool:
    """Whether a breakpoint is checked after the node's update. A condition over an agent's
    call (``tokens > 2000``, ``"refund" in response``) is about what the call answered, which
    is there only after the update that took the answer: at an agent, such a breakpoint stops
    after its update (while the call is in flight its fields read 0 and the text streamed so
    far)."""
    if breakpoint.spec.position is Position.AFTER:
        return True
    condition = breakpoint.condition
    return (
        isinstance(node, Agent)
        and condition is not None
        and not condition.names.isdisjoint(AGENT_NAMES)
    )


def _preorder(node: Behaviour) -> Iterator[Behaviour]:
    yield node
    for child in node.children:
        yield from _preorder(child)


def _raising_node(
    tb: TracebackType | None, nodes: Mapping[Behaviour, _NodeState]
) -> Behaviour | None:
    """The innermost behaviour of the tree (``nodes``) on the traceback: the one whose code
    raised."""
    found = None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, Behaviour) and candidate in nodes:
            found = candidate
        tb = tb.tb_next
    return found


def _frames(tb: TracebackType | None) -> list[dict[str, Any]]:
    return [
        {
            "path": frame.filename,
            "line": frame.lineno or 0,
            "function": frame.name,
            "code": frame.line or "",
        }
        for frame in traceback.extract_tb(tb)
    ]
