"""One DAP session: requests mapped onto :class:`~server.runtime.control.ExecutionControl`.

The session holds only protocol state — thread ids, frame ids, variable references
(:mod:`dap.values`), the client's breakpoints and their ids (:mod:`dap.breakpoints`), the
live-tree streams (:mod:`dap.live`) — and never looks inside a tree: every question goes to the
control contract, so the same session debugs a tree in this process or in a debug pod. Which control
that is, the ``launch`` (``pod``) or ``attach`` request decides: the session is given a
:class:`~dap.controls.ControlChooser` and keeps the one control it picks for its lifetime.

Handlers are named ``on_<command>`` (``/`` in custom commands becomes ``_``); each returns the
response body or raises a :class:`~bridge.errors.CanopyError` with a message for the user
(:mod:`dap.transport` words the answer); any other exception is a bug.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from canopy.bridge import CanopyError, InvalidArgument
from canopy.bridge.jsondata import refuse_wide_integers
from canopy.server.remote.wire import encode
from canopy.server.runtime.breakpoints import ExceptionFilter, WatchSpec
from canopy.server.runtime.control import (
    ExecutionControl,
    ExecutionView,
    InvalidRequest,
    LaunchSpec,
)
from canopy.server.runtime.engine import (
    CaptureLevel,
    Mode,
    Notification,
    RunState,
    StepKind,
    end_text,
)

from .arguments import arg, function_breakpoint, item, source_breakpoint, validate
from .breakpoints import BreakpointLedger, source_of
from .controls import ControlChooser
from .live import LAST_BATCH_WAIT, MAX_BATCH_MS, MIN_BATCH_MS, stream_batches, stream_statuses
from .values import Variables, exception_trace, format_value

__all__ = ["CAPABILITIES", "DebugSession"]

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

EXCEPTION_FILTERS: Final = [
    {
        "filter": "raised",
        "label": "Behaviour raised",
        "default": True,
        "description": "Stop where a behaviour raises an exception.",
    },
    {
        "filter": "failed",
        "label": "Node failed",
        "default": False,
        "description": "Stop when any node returns FAILURE.",
    },
]
CAPABILITIES: Final = {
    "supportsConfigurationDoneRequest": True,
    "supportsFunctionBreakpoints": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsLogPoints": True,
    "supportsDataBreakpoints": True,
    "supportsBreakpointLocationsRequest": True,
    "supportsEvaluateForHovers": True,
    "supportsSetVariable": True,
    "supportsSetExpression": True,
    "supportsStepBack": True,
    "supportsStepInTargetsRequest": True,
    "supportsExceptionInfoRequest": True,
    "supportsCompletionsRequest": True,
    "completionTriggerCharacters": ["."],
    "supportsTerminateRequest": True,
    "supportsClipboardContext": True,
    "supportsValueFormattingOptions": False,
    "supportSuspendDebuggee": False,
    "exceptionBreakpointFilters": EXCEPTION_FILTERS,
}
STOP_REASONS: Final = {
    "breakpoint": "breakpoint",
    "step": "step",
    "pause": "pause",
    "entry": "entry",
    "data breakpoint": "data breakpoint",
    "exception": "exception",
    "failure": "exception",
}
MODES: Final = {"manual": Mode.MANUAL, "auto": Mode.AUTO, "interval": Mode.INTERVAL}
START_DEBUGGING_TIMEOUT: Final = 60.0
"""Seconds the client has to start the Python session of a step into a node's code (it
attaches to debugpy and places the stops before it answers ``startDebugging``)."""
PLAIN_STEP: Final = "next status change"
"""The label of the step-in target that is the tree's own step into."""
ORDINARY_ENDS: Final = frozenset({"completed", "max_ticks", "stopped"})
"""End reasons that are the tree's or the user's doing (anything else is a failure, e.g. a
debug pod that died)."""


@dataclass(slots=True)
class _Thread:
    id: int
    execution_id: str
    mode: Mode
    stop_on_entry: bool
    name: str
    launched: bool = True  # False when attached: the execution belongs to someone else
    ended: bool = False


class DebugSession:
    """Serves one client over ``send``; owns no transport."""

    def __init__(self, controls: ControlChooser, send: Send, *, cwd: Path | None = None) -> None:
        self._controls = controls
        self._control: ExecutionControl | None = None
        self._where: str | None = None  # "embedded", a pod kind, or "attached"
        self._send = send
        self._cwd = cwd or Path.cwd()
        self._client: dict[str, Any] = {}
        self._lines_from_1 = True
        self._columns_from_1 = True
        self._threads: dict[int, _Thread] = {}
        self._by_execution: dict[str, _Thread] = {}
        self._breakpoints = BreakpointLedger()
        self._variables = Variables()
        self._frames: dict[int, tuple[str, str]] = {}
        self._step_targets: dict[int, tuple[str, str, str | None]] = {}  # id -> node, method
        self._client_requests: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self._locals: dict[int, tuple[str, list[dict[str, Any]]]] = {}  # user frames' locals
        self._views: dict[str, ExecutionView] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._batch_streams: dict[int, asyncio.Task[None]] = {}
        self._configured = asyncio.Event()
        self._answering: dict[str, asyncio.Event] = {}
        self._disconnected = False
        self._closing = False
        self.finished = asyncio.Event()

    @property
    def control(self) -> ExecutionControl:
        """The control this session's executions run on (chosen by launch or attach)."""
        if self._control is None:
            raise InvalidRequest("nothing is being debugged yet: launch or attach first")
        return self._control

    # -- plumbing ----------------------------------------------------------------------------

    async def handle(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Carry out one request; returns the response body (None for an empty body)."""
        command = request.get("command")
        if not isinstance(command, str) or not command:
            raise InvalidRequest("the request has no command")
        handler = getattr(self, "on_" + command.replace("/", "_"), None)
        if handler is None:
            raise InvalidRequest(f"unknown request {command!r}")
        arguments = request.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise InvalidArgument("arguments must be an object")
        # No DAP argument holds an integer beyond 64 bits, and neither the runtime, the log nor
        # the pod link could keep one: refused here, by name, before any handler sees it.
        refuse_wide_integers(arguments)
        body: dict[str, Any] | None = await handler(arguments)
        return body

    @property
    def client_arguments(self) -> dict[str, Any]:
        """What the client said of itself in ``initialize``."""
        return self._client

    async def request_client(
        self, command: str, arguments: dict[str, Any], within: float
    ) -> dict[str, Any]:
        """A reverse request (adapter to client); the client's answer, or InvalidRequest
        when it refuses or does not answer ``within`` seconds."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        message: dict[str, Any] = {"type": "request", "command": command, "arguments": arguments}
        # The answer is matched to the message's seq, which sending gives it.
        self._client_requests.append((message, future))
        try:
            await self._send(message)
            response = await asyncio.wait_for(future, within)
        except TimeoutError:
            raise InvalidRequest(
                f"the editor did not answer {command!r} within {within:g} s"
            ) from None
        finally:
            self._client_requests.remove((message, future))
        if not response.get("success"):
            raise InvalidRequest(
                f"the editor refused {command!r}: {response.get('message') or 'no reason given'}"
            )
        return response

    def client_answered(self, response: dict[str, Any]) -> None:
        """The client's response to a reverse request (any other is ignored)."""
        for message, future in self._client_requests:
            if message.get("seq") == response.get("request_seq") and not future.done():
                future.set_result(response)

    def responded(self) -> None:
        """The response to the current request is written: the events held back for it
        (see :meth:`_hold_events`) may go now."""
        for gate in self._answering.values():
            gate.set()
        self._answering.clear()

    def _hold_events(self, execution_id: str) -> None:
        """Hold ``execution_id``'s events until the current request is answered. DAP wants a
        step's response before the stop it causes, and a step's answer can wait on the log (its
        audit record) while the tree, running on, already stops again."""
        self._answering.setdefault(execution_id, asyncio.Event())

    async def event(self, name: str, body: dict[str, Any] | None = None) -> None:
        """Send an event to the client."""
        message: dict[str, Any] = {"type": "event", "event": name}
        if body is not None:
            message["body"] = body
        await self._send(message)

    async def close(self) -> None:
        """Stop background work, end this session's executions, and close what its control
        chooser opened for it."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            if not self._disconnected:  # else the disconnect request said what to end
                await self._end_launched()
        finally:
            await self._controls.close()

    async def _end_launched(self) -> None:
        for thread in list(self._threads.values()):
            if not thread.launched:
                continue  # an attached execution outlives this session
            try:
                info = await self.control.info(thread.execution_id)
                if info.state is not RunState.ENDED:
                    await self.control.terminate(thread.execution_id)
            except CanopyError as error:
                log.info("could not end execution %s: %s", thread.execution_id, error)

    def _spawn(self, work: Awaitable[None], name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_initialize(self, args: dict[str, Any]) -> dict[str, Any]:
        self._client = args
        self._lines_from_1 = arg(args, "linesStartAt1", bool, True)
        self._columns_from_1 = arg(args, "columnsStartAt1", bool, True)
        return CAPABILITIES

    async def on_launch(self, args: dict[str, Any]) -> None:
        validate("launch", args)
        pod = args.get("pod", "embedded")
        if self._where not in (None, pod):
            raise InvalidRequest(
                f"this session already debugs {self._where} executions; start another debug"
                f" session for pod: {pod}"
            )
        cwd = Path(args.get("cwd") or self._cwd)
        program = args["program"]
        spec = LaunchSpec(
            program=program,
            mode=Mode.PAUSED,
            interval_ms=float(args.get("intervalMs", 100)),
            max_ticks=args.get("maxTicks"),
            keep_ticking=args.get("keepTicking", False),
            blackboard=args.get("blackboard", {}),
            capture=CaptureLevel(args.get("captureLevel", "verbose")),
            registry=args.get("nodes", {}),
            base_dir=str(cwd),
        )
        where = "" if pod == "embedded" else f" in a {pod} debug pod"
        progress = await self._progress_start(f"Loading {program}{where}")
        try:
            if pod == "embedded":
                control = await self._controls.embedded()
            else:
                control = await self._controls.remote(
                    pod,
                    workspace=cwd,
                    progress=lambda text: self._progress_update(progress, text),
                    say=lambda text: self.event("output", {"category": "console", "output": text}),
                )
            self._control, self._where = control, pod
            fork = args.get("forkOf")
            if fork is None:
                info = await control.launch(spec)
            else:  # the source's program, from its recorded state; unchanged agents answered
                info = await control.fork(
                    fork["executionId"],
                    tick=fork.get("tick"),
                    blackboard=fork.get("blackboard", {}),
                    live=fork.get("live", []),
                    mode=Mode.PAUSED,
                )
        finally:
            await self._progress_end(progress)
        mode = MODES[args.get("mode", "auto")]
        thread = self._adopt(info.id, info.tree, mode, bool(args.get("stopOnEntry", False)))
        await self._configure(thread)
        self._spawn(self._configure_then_run(info.id), "dap-configure")
        await self.event("initialized")

    async def on_attach(self, args: dict[str, Any]) -> None:
        validate("attach", args)
        control, info = await self._controls.holding(arg(args, "executionId", str))
        if self._control not in (None, control):
            raise InvalidRequest(
                f"execution {info.id} runs elsewhere than this session's others; attach to it"
                " from another debug session"
            )
        if info.state is RunState.ENDED:
            ended = end_text(info.end_reason or "", info.end_detail)
            raise InvalidRequest(f"execution {info.id} has ended ({ended})")
        self._control, self._where = control, self._where or "attached"
        thread = self._adopt(info.id, info.tree, info.mode, stop_on_entry=False, launched=False)
        await self._configure(thread)
        await self.event("initialized")
        if info.stopped is not None:
            self._configured.set()
            await self._stopped(info.id, info.stopped)

    async def on_configurationDone(self, args: dict[str, Any]) -> None:
        self._configured.set()

    async def on_disconnect(self, args: dict[str, Any]) -> None:
        # Launched executions end with the session unless the client says otherwise; attached
        # ones belong to someone else and end only when asked to.
        terminate = arg(args, "terminateDebuggee", bool, None)
        try:
            await self._terminate_all(attached=bool(terminate), launched=terminate is not False)
        finally:
            # The session ends even when that failed (say, the server is gone): the response
            # tells the client why, and nothing else would ever end it.
            self._disconnected = True
            self.finished.set()

    async def on_terminate(self, args: dict[str, Any]) -> None:
        await self._terminate_all()

    async def _terminate_all(self, *, attached: bool = True, launched: bool = True) -> None:
        for thread in list(self._threads.values()):
            if not (launched if thread.launched else attached):
                continue
            info = await self.control.info(thread.execution_id)
            if info.state is not RunState.ENDED:
                await self.control.terminate(thread.execution_id)

    def _adopt(
        self, execution_id: str, tree: str, mode: Mode, stop_on_entry: bool, launched: bool = True
    ) -> _Thread:
        thread = _Thread(len(self._threads) + 1, execution_id, mode, stop_on_entry, tree, launched)
        self._threads[thread.id] = thread
        self._by_execution[execution_id] = thread
        self._spawn(self._forward_notifications(execution_id), f"dap-notifications-{thread.id}")
        return thread

    async def _configure(self, thread: _Thread) -> None:
        """Give a new execution everything the client set so far (it may have set breakpoints
        before launching), and tell the client where its breakpoints landed."""
        if self._breakpoints.has_data:
            await self._apply_watches(thread)
        filters = self._breakpoints.exception_filters
        if filters is not None:
            await self.control.set_exception_filters(thread.execution_id, filters)
        if self._breakpoints.has_nodes:
            await self._report_breakpoints(await self._apply_breakpoints())

    async def _configure_then_run(self, execution_id: str) -> None:
        await self._configured.wait()
        thread = self._by_execution[execution_id]
        if thread.stop_on_entry or thread.mode is Mode.MANUAL:
            # In manual mode the user drives every tick: wait for them at the start.
            await self.control.pause(execution_id, reason="entry")
        await self.control.set_mode(execution_id, thread.mode)

    # -- breakpoints -------------------------------------------------------------------------

    async def on_setBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        source = arg(args, "source", dict)
        path = arg(source, "path", str, "")
        if not path:
            raise InvalidArgument("breakpoints need a source with a path")
        wanted = [source_breakpoint(bp) for bp in arg(args, "breakpoints", list, [])]
        path = self._breakpoints.set_source(path, wanted)
        placed = await self._apply_breakpoints()
        return {"breakpoints": placed.get(path, [])}

    async def on_setFunctionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        wanted = [function_breakpoint(bp) for bp in arg(args, "breakpoints", list)]
        self._breakpoints.set_functions(wanted)
        placed = await self._apply_breakpoints()
        return {"breakpoints": placed.get("", [])}

    async def on_breakpointLocations(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread()
        path = arg(arg(args, "source", dict), "path", str)
        line = arg(args, "line", int)
        first = self._line_in(line)
        last = self._line_in(arg(args, "endLine", int, line))
        lines = await self.control.breakpoint_lines(thread.execution_id, path, first, last)
        return {"breakpoints": [{"line": self._line_out(n)} for n in lines]}

    async def on_setExceptionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        """Apply the filters Canopy offers; any other (say debugpy's ``uncaught``, which
        generic clients send) is answered unverified, so that such a client still launches."""
        names = [item(name, "filters", str) for name in arg(args, "filters", list)]
        known = {str(offered["filter"]) for offered in EXCEPTION_FILTERS}
        filters = [ExceptionFilter(name) for name in names if name in known]
        self._breakpoints.exception_filters = filters
        for thread in self._threads.values():
            await self.control.set_exception_filters(thread.execution_id, filters)
        return {
            "breakpoints": [
                {"verified": True}
                if name in known
                else {
                    "verified": False,
                    "message": f"Canopy has no exception filter {name!r}"
                    f" (its filters are {', '.join(sorted(known))})",
                }
                for name in names
            ]
        }

    async def on_dataBreakpointInfo(self, args: dict[str, Any]) -> dict[str, Any]:
        reference = arg(args, "variablesReference", int, 0)
        name = arg(args, "name", str)
        key = self._variables.key_of(reference, name)
        if key is None:
            return {"dataId": None, "description": "only blackboard keys can be watched"}
        return {
            "dataId": key,
            "description": f"blackboard {key}",
            "accessTypes": ["write"],
            "canPersist": True,
        }

    async def on_setDataBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        specs = []
        for bp in arg(args, "breakpoints", list):
            bp = item(bp, "breakpoints", dict)
            condition = arg(bp, "condition", str, "") or None
            specs.append(WatchSpec(arg(bp, "dataId", str), condition))
        self._breakpoints.set_data(specs)
        placed = self._breakpoints.watches_placed(None, None)
        for thread in self._threads.values():
            placed = await self._apply_watches(thread)
        return {"breakpoints": placed}

    async def _apply_watches(self, thread: _Thread) -> list[dict[str, Any]]:
        specs = self._breakpoints.watch_specs()
        watches = await self.control.set_watches(thread.execution_id, specs)
        return self._breakpoints.watches_placed(thread.execution_id, watches)

    async def _apply_breakpoints(self) -> dict[str, list[dict[str, Any]]]:
        """Send every node breakpoint of the session to each execution; return them per source
        path ("" for those by name) as DAP breakpoints, with the ids the client was given."""
        specs = self._breakpoints.node_specs(self._line_in)
        views = None
        for thread in self._threads.values():
            views = await self.control.set_breakpoints(thread.execution_id, specs)
            self._breakpoints.bound(thread.execution_id, views)
        return self._breakpoints.placed(views, self._line_out)

    async def _report_breakpoints(self, placed: dict[str, list[dict[str, Any]]]) -> None:
        """Tell the client where breakpoints landed now (after a launch or a hot reload)."""
        for breakpoints in placed.values():
            for breakpoint in breakpoints:
                await self.event("breakpoint", {"reason": "changed", "breakpoint": breakpoint})

    # -- running -----------------------------------------------------------------------------

    async def on_continue(self, args: dict[str, Any]) -> dict[str, Any]:
        await self._resume(args, StepKind.CONTINUE)
        return {"allThreadsContinued": False}

    async def on_next(self, args: dict[str, Any]) -> None:
        await self._resume(args, StepKind.OVER)

    async def on_stepIn(self, args: dict[str, Any]) -> None:
        """Step into: to the next status change; with the ``targetId`` of a node's method
        (from ``stepInTargets``), through that method's Python code on the way, in a child
        session the client starts (``startDebugging``) unless one is attached already."""
        target_id = arg(args, "targetId", int, None)
        if target_id is not None:
            thread = self._thread(args)
            target = self._step_targets.get(target_id)
            if target is None or target[0] != thread.execution_id:
                raise InvalidRequest(
                    f"unknown step-in target {target_id} for thread {thread.id} (targets last"
                    " only while the tree is stopped: ask stepInTargets again)"
                )
            _, node_id, method = target
            if method is not None:
                await self._into_python(thread, node_id, method)
        await self._resume(args, StepKind.INTO)

    async def on_stepInTargets(self, args: dict[str, Any]) -> dict[str, Any]:
        """What a step into a frame's node can go through: its own Python methods (then
        the tree's plain step into is a target too); nothing for a node without code of its
        own, or in a recorded (past) view."""
        frame_id = arg(args, "frameId", int)
        execution_id, node_id = self._frame(frame_id)
        view = self._views.get(execution_id)
        if view is not None and view.past:
            return {"targets": []}
        methods = await self.control.python_methods(execution_id, node_id)
        if not methods:
            return {"targets": []}
        targets = [self._step_target(execution_id, node_id, None, PLAIN_STEP)]
        for method in methods:
            label = f"into {method.qualname}() ({Path(method.path).name})"
            targets.append(self._step_target(execution_id, node_id, method.method, label))
        return {"targets": targets}

    def _step_target(
        self, execution_id: str, node_id: str, method: str | None, label: str
    ) -> dict[str, Any]:
        target_id = self._variables.new_id()
        self._step_targets[target_id] = (execution_id, node_id, method)
        return {"id": target_id, "label": label}

    async def _into_python(self, thread: _Thread, node_id: str, method: str) -> None:
        """Arm ``node_id``'s ``method`` to stop in the debugpy session attached to the process
        that runs the tree, starting that session first when there is none."""
        if self._where == "kubernetes":
            raise InvalidRequest(
                "stepping into a node's Python code is not available in a kubernetes debug pod:"
                " debugpy would listen inside the pod, out of the editor's reach (use pod:"
                " local, or the embedded runtime)"
            )
        target = await self.control.python_debug(thread.execution_id, node_id)
        if not target.attached:
            if not self._client.get("supportsStartDebuggingRequest"):
                raise InvalidRequest(
                    "this editor cannot start a child debug session (no startDebugging"
                    " support): attach a debugpy session where canopy/debugPython says"
                )
            stops = [
                {"path": stop.path, "line": self._line_out(stop.line), "condition": stop.condition}
                for stop in target.stops
            ]
            configuration = {
                "type": "canopy",
                "request": "attach",
                "name": f"Python of {thread.name}",
                "pythonOf": {"host": target.host, "port": target.port, "stops": stops},
            }
            await self.request_client(
                "startDebugging",
                {"request": "attach", "configuration": configuration},
                START_DEBUGGING_TIMEOUT,
            )
        await self.control.python_debug(thread.execution_id, node_id, stop_in=method)

    async def on_stepOut(self, args: dict[str, Any]) -> None:
        await self._resume(args, StepKind.OUT)

    async def on_pause(self, args: dict[str, Any]) -> None:
        thread = self._thread(args)
        self._spawn(self._pause(thread.execution_id), "dap-pause")

    async def _pause(self, execution_id: str) -> None:
        try:
            await self.control.pause(execution_id)
        except CanopyError as error:
            await self.event("output", {"category": "stderr", "output": f"pause: {error}\n"})

    async def _resume(self, args: dict[str, Any], action: StepKind) -> None:
        thread = self._thread(args)
        self._hold_events(thread.execution_id)
        info = await self.control.info(thread.execution_id)
        self._forget_stop(thread.execution_id)
        at_boundary = info.state is RunState.IDLE or (
            info.stopped is not None and info.stopped.position == "tick"
        )
        if thread.mode is Mode.MANUAL and action is StepKind.CONTINUE:
            action = StepKind.OVER  # one tick, then wait for the user again
        if info.state is RunState.STOPPED:
            await self.control.resume(thread.execution_id, action)
        elif info.state is not RunState.IDLE or thread.mode is not Mode.MANUAL:
            # Idle between ticks only means "waiting for the user" in manual mode; otherwise
            # nothing would ever stop and the request would be silently lost.
            raise InvalidRequest(f"the tree is {info.state.value}, not stopped")
        if thread.mode is Mode.MANUAL and at_boundary:
            try:
                await self.control.tick(thread.execution_id)
            except InvalidRequest:
                # The tree let go at its last stop may end before the tick is asked for: then
                # the continue has done all there was to do.
                if (await self.control.info(thread.execution_id)).state is not RunState.ENDED:
                    raise

    async def on_stepBack(self, args: dict[str, Any]) -> None:
        thread = self._thread(args)
        view = await self.control.step_back(thread.execution_id)
        await self._travelled(thread, view)

    async def on_reverseContinue(self, args: dict[str, Any]) -> None:
        thread = self._thread(args)
        view = await self.control.reverse_continue(thread.execution_id)
        await self._travelled(thread, view)

    async def _travelled(self, thread: _Thread, view: ExecutionView) -> None:
        self._forget_stop(thread.execution_id)
        self._views[thread.execution_id] = view
        # DAP: the response first, then the stop. The response is written as soon as this
        # handler returns, before the spawned task gets to run.
        self._spawn(self._announce_travel(thread, view), "dap-travel")

    async def _announce_travel(self, thread: _Thread, view: ExecutionView) -> None:
        await self.event(
            "stopped",
            {
                "reason": "step",
                "threadId": thread.id,
                "description": f"tick {view.tick} (recorded; continue to return to the live tree)",
                "allThreadsStopped": False,
            },
        )

    # -- inspecting --------------------------------------------------------------------------

    async def on_threads(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "threads": [
                {"id": t.id, "name": f"{t.name} ({t.execution_id})"} for t in self._threads.values()
            ]
        }

    async def on_stackTrace(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._thread(args)
        view = await self._view(thread.execution_id)
        frames = []
        raised = view.raised or {}
        for user in raised.get("user_frames", ()):
            # The lines of the user's code that raised, innermost first, above the node frames:
            # one click opens the line a user looks for first.
            frame_id = self._variables.new_id()
            self._frames[frame_id] = (thread.execution_id, raised["node_id"])
            self._locals[frame_id] = (thread.execution_id, user["locals"])
            frames.append(
                {
                    "id": frame_id,
                    "name": user["function"],
                    "line": self._line_out(user["line"] or 1),
                    "column": self._column_out(1),
                    "source": source_of(user["path"]),
                    **({"presentationHint": "subtle"} if view.past else {}),
                }
            )
        for frame in view.frames:
            frame_id = self._variables.new_id()
            self._frames[frame_id] = (thread.execution_id, frame.node_id)
            kind = frame.kind.rpartition(":")[2].rpartition(".")[2]
            entry: dict[str, Any] = {
                "id": frame_id,
                "name": f"{frame.name} [{kind}] {frame.status}",
                "line": self._line_out(frame.line or 1) if frame.path else 0,
                "column": self._column_out(frame.column or 1) if frame.path else 0,
            }
            if frame.path:
                entry["source"] = source_of(frame.path)
            if view.past:
                entry["presentationHint"] = "subtle"
            frames.append(entry)
        start = arg(args, "startFrame", int, 0)
        levels = arg(args, "levels", int, 0) or len(frames)
        return {"stackFrames": frames[start : start + levels], "totalFrames": len(frames)}

    async def on_scopes(self, args: dict[str, Any]) -> dict[str, Any]:
        execution_id, node_id = self._frame(arg(args, "frameId", int))
        view = await self._view(execution_id)
        node: dict[str, Any] = next((n for n in view.nodes if n["id"] == node_id), {"id": node_id})
        state = {k: v for k, v in node.items() if k != "params"}
        frame_locals = self._locals.get(arg(args, "frameId", int))
        scopes = (
            [self._variables.locals_scope(execution_id, frame_locals[1])] if frame_locals else []
        )
        summary = state.pop("agent", None)
        scopes.append(self._variables.scope("Node", execution_id, state, params=node.get("params")))
        if summary is not None:
            scopes.append(self._variables.agent_scope(execution_id, summary))
        scopes += [
            self._variables.blackboard_scope(execution_id, view.blackboard),
            self._variables.scope(
                "Tick",
                execution_id,
                {"tick": view.tick, "state": view.state.value, "past": view.past},
            ),
        ]
        return {"scopes": scopes}

    async def on_variables(self, args: dict[str, Any]) -> dict[str, Any]:
        variables = self._variables.children(
            arg(args, "variablesReference", int),
            arg(args, "start", int, 0),
            arg(args, "count", int, 0),
        )
        return {"variables": variables}

    async def on_setVariable(self, args: dict[str, Any]) -> dict[str, Any]:
        reference = arg(args, "variablesReference", int)
        name = arg(args, "name", str)
        text = arg(args, "value", str)
        execution_id = self._variables.execution_of(reference)
        key = self._variables.key_of(reference, name)
        if key is None:
            raise InvalidRequest(self._variables.refusal(reference, name))
        value = await self._value_of(execution_id, text)
        await self._write(execution_id, key, value)
        return {"value": format_value(value)}

    async def on_setExpression(self, args: dict[str, Any]) -> dict[str, Any]:
        expression = arg(args, "expression", str).strip()
        text = arg(args, "value", str)
        execution_id = self._execution_of_frame(arg(args, "frameId", int, None))
        if not expression:
            raise InvalidArgument("the expression is empty")
        value = await self._value_of(execution_id, text)
        await self._write(execution_id, expression, value)
        return {"value": format_value(value)}

    async def _value_of(self, execution_id: str, text: str) -> Any:
        """What the user typed, read as a safe expression (``42``, ``"dock"``, ``battery - 5``)."""
        return await self.control.evaluate(execution_id, text)

    async def _write(self, execution_id: str, key: str, value: Any) -> None:
        stored = await self.control.set_blackboard(execution_id, key, value)
        self._views.pop(execution_id, None)
        self._variables.written(execution_id, stored, value)
        if self._client.get("supportsInvalidatedEvent"):
            thread = self._by_execution[execution_id]
            await self.event("invalidated", {"areas": ["variables"], "threadId": thread.id})

    async def on_evaluate(self, args: dict[str, Any]) -> dict[str, Any]:
        execution_id, node_id = self._frame_or_thread(arg(args, "frameId", int, None))
        expression = arg(args, "expression", str)
        result = await self.control.evaluate(execution_id, expression, node_id=node_id)
        if args.get("context") == "clipboard":
            return {
                "result": json.dumps(result, indent=2, ensure_ascii=False),
                "variablesReference": 0,
            }
        return {
            "result": format_value(result),
            "variablesReference": self._variables.value(execution_id, result, None),
        }

    async def on_completions(self, args: dict[str, Any]) -> dict[str, Any]:
        execution_id, _ = self._frame_or_thread(arg(args, "frameId", int, None))
        text = arg(args, "text", str)
        column = arg(args, "column", int, len(text) + 1) - (1 if self._columns_from_1 else 0)
        before = text[:column]
        start = len(before)
        while start > 0 and (before[start - 1].isalnum() or before[start - 1] in "_."):
            start -= 1
        prefix = before[start:]
        names = await self.control.expression_names(execution_id)
        return {
            "targets": [
                {
                    "label": name,
                    "text": name,
                    "start": start,
                    "length": len(prefix),
                    "type": "variable",
                }
                for name in names
                if name.startswith(prefix)
            ]
        }

    async def on_exceptionInfo(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._thread(args)
        info = await self.control.info(thread.execution_id)
        stop = info.stopped
        if stop is None or stop.reason not in ("exception", "failure"):
            raise InvalidRequest("the tree is not stopped on an exception")
        if stop.exception is None:
            return {
                "exceptionId": "NodeFailed",
                "description": stop.description,
                "breakMode": "always",
            }
        raised = stop.exception
        return {
            "exceptionId": raised["exception"],
            "description": raised["message"],
            "breakMode": "always",
            "details": {
                "message": raised["message"],
                "typeName": raised["exception"],
                "fullTypeName": raised["exception"],
                "stackTrace": exception_trace(raised),
            },
        }

    # -- custom requests ---------------------------------------------------------------------

    async def on_canopy_reload(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        unbound = await self.control.reload(
            thread.execution_id,
            arg(args, "program", str, None),
            keep_blackboard=arg(args, "keepBlackboard", bool, True),
        )
        self._forget_stop(thread.execution_id)
        # The runtime rebinds breakpoints by node id; set them again so that line breakpoints
        # land on the new tree too, and tell the client which ones no longer bind.
        if self._breakpoints.has_nodes:
            await self._report_breakpoints(await self._apply_breakpoints())
        if self._client.get("supportsInvalidatedEvent"):
            await self.event("invalidated", {"areas": ["all"], "threadId": thread.id})
        return {"unboundBreakpoints": unbound}

    async def on_canopy_statistics(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        statistics: dict[str, Any] = encode(await self.control.statistics(thread.execution_id))
        return statistics

    async def on_canopy_timeline(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        stats = await self.control.statistics(thread.execution_id)
        info = await self.control.info(thread.execution_id)
        return {"executionId": info.id, "ticks": info.tick, "statistics": encode(stats.ticks)}

    async def on_canopy_stateAt(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        state = await self.control.state_at(thread.execution_id, arg(args, "tick", int, None))
        return state.to_json()

    async def on_canopy_diff(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        other = arg(args, "otherExecutionId", str)
        diff: dict[str, Any] = encode(
            await self.control.diff_executions(thread.execution_id, other)
        )
        return diff

    async def on_canopy_fork(self, args: dict[str, Any]) -> dict[str, Any]:
        """Fork the thread's execution from its blackboard at ``tick`` (the last completed
        one when absent) with the ``blackboard`` edits; agent leaves whose inputs are unchanged
        are answered from the log, except the nodes in ``live``. The fork joins this session as
        a new thread, with the session's breakpoints, in the source thread's mode."""
        source = self._only_thread(args)
        live = arg(args, "live", list, [])
        if not all(isinstance(node, str) for node in live):
            raise InvalidArgument("argument 'live' must be a list of node ids")
        return await self._fork(
            source,
            tick=arg(args, "tick", int, None),
            blackboard=arg(args, "blackboard", dict, {}),
            live=live,
            stop_on_entry=arg(args, "stopOnEntry", bool, False),
        )

    async def on_canopy_restart(self, args: dict[str, Any]) -> dict[str, Any]:
        """Run the thread's execution again from its start as a new thread: every agent leaf
        that succeeded is answered from the log, so the run goes straight to where it failed."""
        return await self._fork(
            self._only_thread(args),
            tick=0,
            blackboard={},
            live=[],
            stop_on_entry=arg(args, "stopOnEntry", bool, False),
        )

    async def _fork(
        self,
        source: _Thread,
        *,
        tick: int | None,
        blackboard: dict[str, Any],
        live: list[str],
        stop_on_entry: bool,
    ) -> dict[str, Any]:
        info = await self.control.fork(
            source.execution_id, tick=tick, blackboard=blackboard, live=live, mode=Mode.PAUSED
        )
        thread = self._adopt(info.id, info.tree, source.mode, stop_on_entry)
        await self._configure(thread)
        await self.event("thread", {"reason": "started", "threadId": thread.id})
        self._spawn(self._configure_then_run(info.id), "dap-configure")
        return {"executionId": info.id, "threadId": thread.id}

    async def on_canopy_picture(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        kind = arg(args, "format", str, "dot")
        picture = await self.control.picture(
            thread.execution_id, tick=arg(args, "tick", int, None), format=kind
        )
        return {"format": kind, "content": picture}

    async def on_canopy_debugPython(self, args: dict[str, Any]) -> dict[str, Any]:
        """Where to attach a ``debugpy`` session that stops in a node's ``update()``: the
        client attaches to ``host``:``port`` and sets the breakpoint at ``path``:``line`` with
        ``condition`` (true for this node only)."""
        thread = self._only_thread(args)
        node_id = args.get("nodeId")
        if node_id is None and "frameId" in args:
            node_id = self._frame(args["frameId"])[1]
        if not isinstance(node_id, str):
            raise InvalidArgument("give nodeId or frameId")
        target = await self.control.python_debug(thread.execution_id, node_id)
        return {
            "nodeId": target.node_id,
            "connect": {"host": target.host, "port": target.port},
            "breakpoint": {
                "source": {"path": target.path},
                "line": self._line_out(target.line),
                "condition": target.condition,
            },
        }

    async def on_canopy_liveTree(self, args: dict[str, Any]) -> dict[str, Any]:
        """Start the live tree's event stream: one ``canopy/nodeStatus`` event per status
        change, tick end and reload; or, with ``batchMs``, one ``canopy/nodeStatuses`` event
        per that many milliseconds holding each changed node's latest status; both carry the
        agents' calls (``canopy/agentCall`` events, or each batch's ``agents``). ``after`` (a log
        offset, e.g. a picture's) skips what the client already has; ``agentsAfter`` sends the
        agent calls from an earlier offset, for a timeline of the whole run."""
        thread = self._only_thread(args)
        batch_ms = arg(args, "batchMs", int, None)
        after = arg(args, "after", int, 0)
        agents_after = arg(args, "agentsAfter", int, after)
        for name, offset in (("after", after), ("agentsAfter", agents_after)):
            if offset < 0:
                raise InvalidArgument(f"{name} is a log offset, not {offset}")

        async def emit(name: str, body: dict[str, Any]) -> None:
            await self.event(name, {"threadId": thread.id, **body})

        if batch_ms is None:
            statuses = stream_statuses(self.control, thread.execution_id, after, emit, agents_after)
            self._spawn(statuses, f"dap-live-tree-{thread.id}")
        elif not MIN_BATCH_MS <= batch_ms <= MAX_BATCH_MS:
            raise InvalidArgument(
                f"batchMs must be {MIN_BATCH_MS} to {MAX_BATCH_MS}, not {batch_ms}"
            )
        else:
            batches = stream_batches(
                self.control, thread.execution_id, batch_ms, after, emit, agents_after
            )
            self._batch_streams[thread.id] = self._spawn(batches, f"dap-live-tree-{thread.id}")
        return {"executionId": thread.execution_id}

    # -- notifications -----------------------------------------------------------------------

    async def _forward_notifications(self, execution_id: str) -> None:
        async for note in self.control.notifications(execution_id):
            if (held := self._answering.get(execution_id)) is not None:
                await held.wait()
            thread = self._by_execution[execution_id]
            if note.kind == "stopped" and note.stop is not None:
                await self._stopped(execution_id, note.stop)
            elif note.kind == "continued":
                await self.event("continued", {"threadId": thread.id, "allThreadsContinued": False})
            elif note.kind == "output":
                await self.event("output", {"category": note.category, "output": note.text})
            elif note.kind == "invalidated":
                # e.g. a reload by another session: the next look is at the new tree (frames
                # already handed out stay valid, as the client may be reading them right now)
                self._views.pop(execution_id, None)
                if self._client.get("supportsInvalidatedEvent"):
                    await self.event("invalidated", {"areas": ["all"], "threadId": thread.id})
            elif note.kind == "ended":
                await self._ended(thread, note)
                return
        if not self._closing:
            await self._lost(self._by_execution[execution_id])

    async def _stopped(self, execution_id: str, stop: Any) -> None:
        await self._configured.wait()
        self._forget_stop(execution_id)
        thread = self._by_execution[execution_id]
        body: dict[str, Any] = {
            "reason": STOP_REASONS.get(stop.reason, "pause"),
            "threadId": thread.id,
            "allThreadsStopped": False,
            "preserveFocusHint": False,
        }
        hit = self._breakpoints.client_ids(execution_id, stop.breakpoint_ids)
        if hit:
            body["hitBreakpointIds"] = hit
        if stop.description:
            body["description"] = stop.description
            body["text"] = stop.description
        elif stop.reason == "failure":
            body["description"] = "node failed"
        await self.event("stopped", body)

    async def _ended(self, thread: _Thread, note: Notification) -> None:
        live = self._batch_streams.pop(thread.id, None)
        if live is not None:
            # The live tree's last batch (the tree's final statuses) goes before the end.
            await asyncio.wait([live], timeout=LAST_BATCH_WAIT)
        reason = note.reason or "completed"
        ended = end_text(reason, note.text)
        await self.event(
            "output",
            {
                # An end nobody asked for (a failure, a dead pod) must stand out in the console.
                "category": "console" if reason in ORDINARY_ENDS else "stderr",
                "output": f"execution {thread.execution_id} ended: {ended}\n",
            },
        )
        # The same end in a form for the extension's views (the live tree says how it ended).
        await self.event(
            "canopy/executionEnded",
            {
                "threadId": thread.id,
                "executionId": thread.execution_id,
                "reason": reason,
                "detail": note.text,
                "rootStatus": note.status,
                "text": ended,
            },
        )
        thread.ended = True
        if any(not other.ended for other in self._threads.values()):
            # Another execution of this session (a fork) still runs: only this thread ends.
            await self.event("thread", {"reason": "exited", "threadId": thread.id})
            return
        await self.event("exited", {"exitCode": _exit_code(reason, note.status)})
        await self.event("terminated", {})

    async def _lost(self, thread: _Thread) -> None:
        """The notification stream ended without an end: the server went away (or the
        connection to it did). The session can no longer follow the execution, so it ends,
        saying why, instead of leaving the editor waiting for a stop that never comes."""
        await self.event(
            "output",
            {
                "category": "stderr",
                "output": f"lost the connection to the Canopy server running execution"
                f" {thread.execution_id}: the session ends\n",
            },
        )
        await self.event("terminated", {})

    # -- helpers -----------------------------------------------------------------------------

    async def _view(self, execution_id: str) -> ExecutionView:
        view = self._views.get(execution_id)
        if view is None:
            view = await self.control.view(execution_id)
            self._views[execution_id] = view
        return view

    def _forget_stop(self, execution_id: str) -> None:
        """Frames and variables belong to one stop: drop them when the tree moves."""
        self._views.pop(execution_id, None)
        self._frames = {k: v for k, v in self._frames.items() if v[0] != execution_id}
        self._step_targets = {k: v for k, v in self._step_targets.items() if v[0] != execution_id}
        self._locals = {k: v for k, v in self._locals.items() if v[0] != execution_id}
        self._variables.forget(execution_id)

    def _thread(self, args: dict[str, Any]) -> _Thread:
        if not self._threads:
            raise InvalidRequest("nothing is being debugged yet: launch or attach first")
        thread_id = args.get("threadId")
        thread = self._threads.get(thread_id) if isinstance(thread_id, int) else None
        if thread is None:
            if thread_id is None and len(self._threads) == 1:
                return next(iter(self._threads.values()))
            raise InvalidRequest(f"unknown thread {thread_id!r}")
        return thread

    def _only_thread(self, args: dict[str, Any] | None = None) -> _Thread:
        if args and "threadId" in args:
            return self._thread(args)
        if not self._threads:
            raise InvalidRequest("nothing is being debugged yet: launch or attach first")
        return next(iter(self._threads.values()))

    def _frame(self, frame_id: Any) -> tuple[str, str]:
        found = self._frames.get(frame_id) if isinstance(frame_id, int) else None
        if found is None:
            raise InvalidRequest(
                f"unknown frame {frame_id!r} (frames last only while the tree is stopped)"
            )
        return found

    def _frame_or_thread(self, frame_id: Any) -> tuple[str, str | None]:
        if frame_id is not None:
            return self._frame(frame_id)
        return self._only_thread().execution_id, None

    def _execution_of_frame(self, frame_id: Any) -> str:
        return self._frame_or_thread(frame_id)[0]

    def _line_in(self, line: int) -> int:
        return line if self._lines_from_1 else line + 1

    def _line_out(self, line: int) -> int:
        return line if self._lines_from_1 else line - 1

    def _column_out(self, column: int) -> int:
        return column if self._columns_from_1 else column - 1

    async def _progress_start(self, title: str) -> str | None:
        if not self._client.get("supportsProgressReporting"):
            return None
        progress_id = f"canopy-{id(self)}-{len(self._threads)}"
        await self.event("progressStart", {"progressId": progress_id, "title": title})
        return progress_id

    async def _progress_update(self, progress_id: str | None, message: str) -> None:
        if progress_id is not None:
            await self.event("progressUpdate", {"progressId": progress_id, "message": message})

    async def _progress_end(self, progress_id: str | None) -> None:
        if progress_id is not None:
            await self.event("progressEnd", {"progressId": progress_id})


def _exit_code(reason: str, root_status: str) -> int:
    """0 when the tree succeeded or was ended on purpose; 1 when it failed or broke."""
    if reason == "completed":
        return 0 if root_status == "SUCCESS" else 1
    return 0 if reason in ("max_ticks", "stopped") else 1
