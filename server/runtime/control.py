"""The ``ExecutionControl`` contract: every debug action on executions, as one async interface.

The DAP adapter, the HTTP API and the CLI speak only this interface. It has an in-process
implementation (:mod:`server.runtime.inprocess`) and a remote one that carries the same calls to
a debug pod; one test suite runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from canopy.bridge import CanopyError, RecordedEvent

from .breakpoints import BreakpointSpec, ExceptionFilter, WatchSpec
from .diff import ExecutionDiff, StateDiff
from .engine import CaptureLevel, Mode, Notification, RunState, StepKind, StopInfo
from .history import ExecutionState, HistoryError
from .python_debug import PythonMethod, PythonTarget
from .recorded import RecordedCall
from .stats import ExecutionStats

__all__ = [
    "BreakpointView",
    "ControlError",
    "ExecutionControl",
    "ExecutionInfo",
    "ExecutionView",
    "ForkSpec",
    "FrameView",
    "InvalidRequest",
    "LaunchSpec",
    "UnknownExecution",
    "WatchView",
    "as_control_errors",
]


class ControlError(CanopyError):
    """Base of the errors a control call reports to its client."""


class UnknownExecution(ControlError):
    """No execution with that id (for this user)."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        super().__init__(f"no execution {execution_id!r}")

    def details(self) -> dict[str, Any]:
        return {"execution_id": self.execution_id}

    @classmethod
    def rebuild(cls, message: str, details: Mapping[str, Any]) -> UnknownExecution:
        return cls(str(details.get("execution_id", "")))


class InvalidRequest(ControlError):
    """The request does not fit the execution's state (e.g. stepping while running)."""


@contextmanager
def as_control_errors() -> Iterator[None]:
    """History's errors, as the control contract words them."""
    try:
        yield
    except HistoryError as error:
        message = str(error)
        if message.startswith("no execution"):
            raise UnknownExecution(message.removeprefix("no execution ").strip("'")) from error
        raise InvalidRequest(message) from error


@dataclass(frozen=True, slots=True)
class ForkSpec:
    """Where a fork comes from: execution ``execution_id`` as it was at the end of ``tick``
    (0: as it started). ``edited`` names the blackboard keys the fork changed: a leaf served
    from the source's log never overwrites them. ``live`` names nodes that run live even when
    a recorded answer fits them."""

    execution_id: str
    tick: int
    edited: tuple[str, ...] = ()
    live: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """How to start an execution. ``program`` is a tree file (YAML, JSON, Groot2 XML) or a
    Python factory (``path/to/file.py:function`` or ``module:function``); ``registry`` maps
    Groot2 node tags to Python classes.

    An execution ends when its root returns SUCCESS or FAILURE, whatever the mode and even
    before ``max_ticks``; ``keep_ticking`` keeps ticking a tree whose root finishes every tick
    (as py_trees' ``tick_tock`` and robot control loops do), so that it ends only at
    ``max_ticks`` or when terminated."""

    program: str
    mode: Mode = Mode.MANUAL
    interval_ms: float = 100.0
    max_ticks: int | None = None
    keep_ticking: bool = False
    blackboard: Mapping[str, Any] = field(default_factory=dict)
    capture: CaptureLevel = CaptureLevel.VERBOSE
    stop_on_entry: bool = False
    registry: Mapping[str, str] = field(default_factory=dict)
    base_dir: str | None = None
    fork: ForkSpec | None = None
    """Set when the execution is a fork (or a restart): :meth:`ExecutionControl.fork`."""
    answers: tuple[RecordedCall, ...] | None = None
    """A fork's source answers, when whoever launches it read them (a pod cannot read the
    shared log); None: the runtime reads them from its own log."""


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """An execution at a glance. ``end_reason`` is one of ``ExecutionEnded``'s reasons
    (``completed``, ``failed``, ...); ``end_detail`` says more (``KeyError in check_battery``
    for a ``failed`` one, why a pod died)."""

    id: str
    program: str
    tree: str
    mode: Mode
    state: RunState
    tick: int
    stopped: StopInfo | None = None
    end_reason: str | None = None
    end_detail: str | None = None


@dataclass(frozen=True, slots=True)
class FrameView:
    """One node on the path from the current node to the root (a DAP stack frame)."""

    node_id: str
    name: str
    kind: str
    status: str
    path: str | None
    line: int | None
    column: int | None


@dataclass(frozen=True, slots=True)
class ExecutionView:
    """The state a client inspects: live, or (``past`` true) rebuilt from history."""

    execution_id: str
    tick: int
    state: RunState
    stopped: StopInfo | None
    frames: tuple[FrameView, ...]
    nodes: tuple[dict[str, Any], ...]
    blackboard: dict[str, Any]
    past: bool = False
    raised: dict[str, Any] | None = None
    """At an exception: its ``BehaviourRaised`` payload, whose ``user_frames`` (innermost
    first, with their locals) a client shows above the node frames."""


@dataclass(frozen=True, slots=True)
class BreakpointView:
    """A breakpoint as resolved: where it landed, or why it could not."""

    id: int
    verified: bool
    node_ids: tuple[str, ...]
    line: int | None
    message: str | None
    hits: int = 0


@dataclass(frozen=True, slots=True)
class WatchView:
    """A data breakpoint as resolved."""

    id: int
    key: str
    verified: bool
    message: str | None


class ExecutionControl(ABC):
    """Create, run, stop, inspect and travel through executions."""

    @abstractmethod
    async def launch(self, spec: LaunchSpec) -> ExecutionInfo:
        """Load the program, start an execution; ``DefinitionError`` for a bad tree."""

    @abstractmethod
    async def fork(
        self,
        execution_id: str,
        *,
        tick: int | None = None,
        blackboard: Mapping[str, Any] | None = None,
        live: Sequence[str] = (),
        mode: Mode | None = None,
    ) -> ExecutionInfo:
        """Start a new execution of the same program from the blackboard ``execution_id``
        had at the end of ``tick`` (the last completed tick when None; 0 restarts it from its
        start), with ``blackboard`` (keys absolute or dotted names) written on top, in ``mode``
        (the source's launch mode when None). Every agent leaf whose resolved inputs
        match a call recorded in the source's log is answered from the log instead of running
        again, except the nodes named in ``live``; so only what the edits reach runs live."""

    @abstractmethod
    async def executions(self) -> list[ExecutionInfo]:
        """Every execution this control knows, live or ended."""

    @abstractmethod
    async def info(self, execution_id: str) -> ExecutionInfo:
        """One execution at a glance."""

    @abstractmethod
    async def tick(self, execution_id: str, count: int = 1) -> None:
        """Manual mode: tick ``count`` times (returns once they were requested)."""

    @abstractmethod
    async def set_mode(
        self, execution_id: str, mode: Mode, *, interval_ms: float | None = None
    ) -> None:
        """Switch between manual, auto, interval and paused."""

    @abstractmethod
    async def pause(self, execution_id: str, *, reason: str = "pause") -> StopInfo:
        """Stop at the next node boundary; returns where it stopped. ``reason="entry"`` is the
        stop a client asks for before the first tick."""

    @abstractmethod
    async def resume(self, execution_id: str, action: StepKind = StepKind.CONTINUE) -> None:
        """Leave a stop: continue, step over (one tick), step into (next status change) or
        step out (until the parent completes). From a past state, resumes live execution."""

    @abstractmethod
    async def settle(self, execution_id: str) -> ExecutionInfo:
        """Wait until the execution is idle (manual mode, nothing pending), stopped or ended."""

    @abstractmethod
    async def wait_for_stop(self, execution_id: str) -> StopInfo:
        """The current debugger stop, or the next one."""

    @abstractmethod
    async def wait_for_end(self, execution_id: str) -> ExecutionInfo:
        """Wait until the execution has ended and its events are in the log."""

    @abstractmethod
    async def terminate(self, execution_id: str) -> ExecutionInfo:
        """End the execution; returns once it has ended."""

    @abstractmethod
    async def set_breakpoints(
        self, execution_id: str, specs: Sequence[BreakpointSpec]
    ) -> list[BreakpointView]:
        """Replace every node breakpoint of the execution."""

    @abstractmethod
    async def set_watches(self, execution_id: str, specs: Sequence[WatchSpec]) -> list[WatchView]:
        """Replace every data breakpoint of the execution."""

    @abstractmethod
    async def set_exception_filters(
        self, execution_id: str, filters: Sequence[ExceptionFilter]
    ) -> None:
        """Stop when a behaviour raises and/or when a node returns FAILURE."""

    @abstractmethod
    async def view(self, execution_id: str) -> ExecutionView:
        """What the client inspects now (the past, while travelling back)."""

    @abstractmethod
    async def evaluate(
        self, execution_id: str, expression: str, *, node_id: str | None = None
    ) -> Any:
        """Evaluate a safe expression over the blackboard and a node's state, in the state
        the client inspects now (the recorded past, while travelling back)."""

    @abstractmethod
    async def expression_names(self, execution_id: str) -> list[str]:
        """Every name an expression can use in the state the client inspects now (the past,
        while travelling back): blackboard names, node names and the node's own fields, sorted,
        so that every client completes expressions alike."""

    @abstractmethod
    async def set_blackboard(self, execution_id: str, key: str, value: Any) -> str:
        """Write a blackboard value as the client; ``key`` is absolute (``/battery/level``) or
        a name (``battery.level``). Returns the key as stored."""

    @abstractmethod
    async def reload(
        self, execution_id: str, program: str | None = None, *, keep_blackboard: bool = True
    ) -> list[str]:
        """Hot reload the tree; returns node ids of breakpoints that no longer bind."""

    @abstractmethod
    async def step_back(self, execution_id: str) -> ExecutionView:
        """Move the read-only view one tick back in history."""

    @abstractmethod
    async def reverse_continue(self, execution_id: str) -> ExecutionView:
        """Move the read-only view back to the previous debugger stop (or to the start)."""

    @abstractmethod
    async def state_at(self, execution_id: str, tick: int | None = None) -> ExecutionState:
        """The recorded state at the end of ``tick`` (the last completed tick when None),
        without moving the client's view."""

    @abstractmethod
    async def statistics(self, execution_id: str) -> ExecutionStats:
        """Per-node and per-tick statistics rebuilt from the log."""

    @abstractmethod
    async def picture(
        self, execution_id: str, *, tick: int | None = None, format: str = "dot"
    ) -> str | dict[str, Any]:
        """The tree coloured by status at the end of ``tick``, or as it is now when None (in
        the middle of a tick, with the node it is stopped at as the current node): ``dot`` or
        ``svg`` text, or the ``json`` model for user interfaces."""

    @abstractmethod
    async def diff_ticks(self, execution_id: str, first: int, second: int) -> StateDiff:
        """Every node status and blackboard key that differs between two ticks."""

    @abstractmethod
    async def diff_executions(self, first_id: str, second_id: str) -> ExecutionDiff:
        """The first tick where two executions diverge, and what differs there."""

    @abstractmethod
    async def python_debug(
        self, execution_id: str, node_id: str, stop_in: str | None = None
    ) -> PythonTarget:
        """Make the process running the tree debuggable with debugpy; say where to attach,
        which breakpoint stops in that node's ``update()``, whether a debugpy session is
        attached already, and which breakpoints stop in an armed node's methods. With
        ``stop_in`` (a method of :func:`~.python_debug.own_methods`), also arm the node: the
        next run of that method stops in the attached debugpy session."""

    @abstractmethod
    async def python_methods(self, execution_id: str, node_id: str) -> list[PythonMethod]:
        """The methods of a node that run its own Python code (``initialise``, ``update``,
        ``terminate``, where its class defines them): what a client can step into."""

    @abstractmethod
    async def breakpoint_lines(
        self, execution_id: str, path: str, first: int = 1, last: int | None = None
    ) -> list[int]:
        """Lines of a tree file where line breakpoints set on lines ``first`` to ``last`` land
        (all of them without a range): the definition lines of the nodes whose blocks hold
        those lines, so an editor can show where a breakpoint will bind before setting it."""

    @abstractmethod
    def events(
        self, execution_id: str, *, after: int = 0, types: Sequence[str] = ()
    ) -> AsyncIterator[RecordedEvent]:
        """The execution's recorded events after an offset, then live ones (e.g. node status
        changes for a live tree view)."""

    @abstractmethod
    def notifications(self, execution_id: str | None = None) -> AsyncIterator[Notification]:
        """Stops, continues, output and ends, as they happen; subscribed from the call on."""

    @abstractmethod
    async def close(self) -> None:
        """Terminate every execution and flush their events."""
