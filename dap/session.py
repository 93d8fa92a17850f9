"""One DAP session: requests mapped onto :class:`~server.runtime.control.ExecutionControl`.

The session holds only protocol state — thread ids, frame ids, variable references, the
breakpoints per source file — and never looks inside a tree: every question goes to the control
contract, so the same session debugs a tree in this process or in a debug pod.

Handlers are named ``on_<command>`` (``/`` in custom commands becomes ``_``); each returns the
response body or raises :class:`DapError` with a message for the user.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Final

import jsonschema

import schemas
from server.runtime.breakpoints import BreakpointSpec, ExceptionFilter, Position, WatchSpec
from server.runtime.control import ControlError, ExecutionControl, ExecutionView, LaunchSpec
from server.runtime.definition import DefinitionError
from server.runtime.engine import CaptureLevel, Mode, Notification, RunState, StepKind
from server.runtime.expressions import Expression, ExpressionError

from .values import Variables, format_value

__all__ = ["CAPABILITIES", "DapError", "DebugSession"]

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


class DapError(Exception):
    """A request that cannot be carried out; ``message`` is shown to the user."""


@dataclass(slots=True)
class _Thread:
    id: int
    execution_id: str
    mode: Mode
    stop_on_entry: bool
    name: str


class DebugSession:
    """Serves one client over ``send``; owns no transport."""

    def __init__(self, control: ExecutionControl, send: Send, *, cwd: Path | None = None) -> None:
        self.control = control
        self._send = send
        self._cwd = cwd or Path.cwd()
        self._client: dict[str, Any] = {}
        self._lines_from_1 = True
        self._threads: dict[int, _Thread] = {}
        self._by_execution: dict[str, _Thread] = {}
        self._source_breakpoints: dict[str, list[dict[str, Any]]] = {}
        self._function_breakpoints: list[dict[str, Any]] = []
        self._variables = Variables()
        self._frames: dict[int, tuple[str, str]] = {}
        self._views: dict[str, ExecutionView] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._configured = asyncio.Event()
        self.finished = asyncio.Event()

    # -- plumbing ----------------------------------------------------------------------------

    async def handle(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Carry out one request; returns the response body (None for an empty body)."""
        command = request.get("command")
        if not isinstance(command, str) or not command:
            raise DapError("the request has no command")
        handler = getattr(self, "on_" + command.replace("/", "_"), None)
        if handler is None:
            raise DapError(f"unknown request {command!r}")
        arguments = request.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise DapError(f"{command}: arguments must be an object")
        try:
            return await handler(arguments)
        except DapError:
            raise
        except (ControlError, ExpressionError) as error:
            raise DapError(str(error)) from error
        except DefinitionError as error:
            raise DapError(f"the tree cannot be loaded:\n{error}") from error
        except (KeyError, TypeError, ValueError) as error:
            raise DapError(f"{command}: bad arguments ({error})") from error

    async def event(self, name: str, body: dict[str, Any] | None = None) -> None:
        """Send an event to the client."""
        message: dict[str, Any] = {"type": "event", "event": name}
        if body is not None:
            message["body"] = body
        await self._send(message)

    async def close(self) -> None:
        """Stop background work and end this session's executions."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for thread in list(self._threads.values()):
            try:
                info = await self.control.info(thread.execution_id)
                if info.state is not RunState.ENDED:
                    await self.control.terminate(thread.execution_id)
            except ControlError:
                pass

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle ---------------------------------------------------------------------------

    async def on_initialize(self, args: dict[str, Any]) -> dict[str, Any]:
        self._client = args
        self._lines_from_1 = args.get("linesStartAt1", True)
        return CAPABILITIES

    async def on_launch(self, args: dict[str, Any]) -> None:
        _validate("launch", args)
        if args.get("pod", "embedded") != "embedded":
            raise DapError(
                f"pod {args['pod']!r} needs the Canopy server's debug pods; use pod: embedded"
            )
        cwd = Path(args.get("cwd") or self._cwd)
        program = args["program"]
        spec = LaunchSpec(
            program=program,
            mode=Mode.PAUSED,
            interval_ms=float(args.get("intervalMs", 100)),
            max_ticks=args.get("maxTicks"),
            blackboard=args.get("blackboard", {}),
            capture=CaptureLevel(args.get("captureLevel", "verbose")),
            registry=args.get("nodes", {}),
            base_dir=str(cwd),
        )
        progress = await self._progress_start(f"Loading {program}")
        try:
            info = await self.control.launch(spec)
        finally:
            await self._progress_end(progress)
        mode = MODES[args.get("mode", "auto")]
        self._adopt(info.id, info.tree, mode, bool(args.get("stopOnEntry", False)))
        await self._apply_breakpoints()
        self._spawn(self._configure_then_run(info.id), "dap-configure")
        await self.event("initialized")

    async def on_attach(self, args: dict[str, Any]) -> None:
        _validate("attach", args)
        info = await self.control.info(args["executionId"])
        if info.state is RunState.ENDED:
            raise DapError(f"execution {info.id} has ended ({info.end_reason})")
        self._adopt(info.id, info.tree, info.mode, stop_on_entry=False)
        await self._apply_breakpoints()
        await self.event("initialized")
        if info.stopped is not None:
            self._configured.set()
            await self._stopped(info.id, info.stopped)

    async def on_configurationDone(self, args: dict[str, Any]) -> None:
        self._configured.set()

    async def on_disconnect(self, args: dict[str, Any]) -> None:
        if args.get("terminateDebuggee", True):
            await self._terminate_all()
        self.finished.set()

    async def on_terminate(self, args: dict[str, Any]) -> None:
        await self._terminate_all()

    async def _terminate_all(self) -> None:
        for thread in list(self._threads.values()):
            info = await self.control.info(thread.execution_id)
            if info.state is not RunState.ENDED:
                await self.control.terminate(thread.execution_id)

    def _adopt(self, execution_id: str, tree: str, mode: Mode, stop_on_entry: bool) -> None:
        thread = _Thread(len(self._threads) + 1, execution_id, mode, stop_on_entry, tree)
        self._threads[thread.id] = thread
        self._by_execution[execution_id] = thread
        self._spawn(self._forward_notifications(execution_id), f"dap-notifications-{thread.id}")

    async def _configure_then_run(self, execution_id: str) -> None:
        await self._configured.wait()
        thread = self._by_execution[execution_id]
        if thread.stop_on_entry or thread.mode is Mode.MANUAL:
            # In manual mode the user drives every tick: wait for them at the start.
            await self.control.pause(execution_id, reason="entry")
        await self.control.set_mode(execution_id, thread.mode)

    # -- breakpoints -------------------------------------------------------------------------

    async def on_setBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        source = args["source"]
        path = source.get("path")
        if not path:
            raise DapError("setBreakpoints: breakpoints need a source with a path")
        self._source_breakpoints[path] = list(args.get("breakpoints", []))
        placed = await self._apply_breakpoints()
        return {"breakpoints": placed.get(path, [])}

    async def on_setFunctionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        self._function_breakpoints = list(args.get("breakpoints", []))
        placed = await self._apply_breakpoints()
        return {"breakpoints": placed.get("", [])}

    async def on_breakpointLocations(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread()
        path = args["source"]["path"]
        first = self._line_in(args["line"])
        last = self._line_in(args.get("endLine", args["line"]))
        lines = await self.control.breakpoint_lines(thread.execution_id, path)
        return {"breakpoints": [{"line": self._line_out(n)} for n in lines if first <= n <= last]}

    async def on_setExceptionBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        filters = [ExceptionFilter(name) for name in args.get("filters", [])]
        for thread in self._threads.values():
            await self.control.set_exception_filters(thread.execution_id, filters)
        return {"breakpoints": [{"verified": True} for _ in filters]}

    async def on_dataBreakpointInfo(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._variables.key_of(args.get("variablesReference"), args["name"])
        if key is None:
            return {"dataId": None, "description": "only blackboard keys can be watched"}
        return {
            "dataId": key,
            "description": f"blackboard {key}",
            "accessTypes": ["write"],
            "canPersist": True,
        }

    async def on_setDataBreakpoints(self, args: dict[str, Any]) -> dict[str, Any]:
        specs = [WatchSpec(b["dataId"], b.get("condition")) for b in args.get("breakpoints", [])]
        placed: list[dict[str, Any]] = []
        for thread in self._threads.values():
            watches = await self.control.set_watches(thread.execution_id, specs)
            placed = [
                {
                    "id": w.id,
                    "verified": w.verified,
                    **({"message": w.message} if w.message else {}),
                }
                for w in watches
            ]
        return {"breakpoints": placed or [{"verified": False} for _ in specs]}

    async def _apply_breakpoints(self) -> dict[str, list[dict[str, Any]]]:
        """Send every breakpoint of the session to each execution; return them per source path
        ("" for function breakpoints) as DAP breakpoints."""
        order: list[tuple[str, dict[str, Any]]] = []
        specs: list[BreakpointSpec] = []
        for path, breakpoints in self._source_breakpoints.items():
            for bp in breakpoints:
                order.append((path, bp))
                specs.append(
                    BreakpointSpec(
                        path=path,
                        line=self._line_in(bp["line"]),
                        position=Position.BEFORE,
                        condition=bp.get("condition") or None,
                        hit_condition=bp.get("hitCondition") or None,
                        log_message=bp.get("logMessage") or None,
                    )
                )
        for bp in self._function_breakpoints:
            order.append(("", bp))
            specs.append(
                BreakpointSpec(
                    node=bp["name"],
                    position=Position.BEFORE,
                    condition=bp.get("condition") or None,
                    hit_condition=bp.get("hitCondition") or None,
                )
            )
        placed: dict[str, list[dict[str, Any]]] = {path: [] for path, _ in order}
        if not self._threads:
            for path, bp in order:
                placed[path].append(
                    {
                        "verified": False,
                        "message": "the tree is not loaded yet",
                        "line": bp.get("line"),
                    }
                )
            return placed
        for thread in self._threads.values():
            views = await self.control.set_breakpoints(thread.execution_id, specs)
        for (path, bp), view in zip(order, views, strict=True):
            answer: dict[str, Any] = {"id": view.id, "verified": view.verified}
            if view.message:
                answer["message"] = view.message
            if path:
                answer["line"] = self._line_out(view.line) if view.line else bp["line"]
                answer["source"] = {"path": path, "name": Path(path).name}
            placed[path].append(answer)
        return placed

    # -- running -----------------------------------------------------------------------------

    async def on_continue(self, args: dict[str, Any]) -> dict[str, Any]:
        await self._resume(args, StepKind.CONTINUE)
        return {"allThreadsContinued": False}

    async def on_next(self, args: dict[str, Any]) -> None:
        await self._resume(args, StepKind.OVER)

    async def on_stepIn(self, args: dict[str, Any]) -> None:
        await self._resume(args, StepKind.INTO)

    async def on_stepOut(self, args: dict[str, Any]) -> None:
        await self._resume(args, StepKind.OUT)

    async def on_pause(self, args: dict[str, Any]) -> None:
        thread = self._thread(args)
        self._spawn(self._pause(thread.execution_id), "dap-pause")

    async def _pause(self, execution_id: str) -> None:
        try:
            await self.control.pause(execution_id)
        except ControlError as error:
            await self.event("output", {"category": "stderr", "output": f"pause: {error}\n"})

    async def _resume(self, args: dict[str, Any], action: StepKind) -> None:
        thread = self._thread(args)
        info = await self.control.info(thread.execution_id)
        self._forget_stop(thread.execution_id)
        at_boundary = info.state is RunState.IDLE or (
            info.stopped is not None and info.stopped.position == "tick"
        )
        if thread.mode is Mode.MANUAL and action is StepKind.CONTINUE:
            action = StepKind.OVER  # one tick, then wait for the user again
        if info.state is RunState.STOPPED:
            await self.control.resume(thread.execution_id, action)
        elif info.state is not RunState.IDLE:
            raise DapError(f"the tree is {info.state.value}, not stopped")
        if thread.mode is Mode.MANUAL and at_boundary:
            await self.control.tick(thread.execution_id)

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
        for frame in view.frames:
            frame_id = self._variables.new_id()
            self._frames[frame_id] = (thread.execution_id, frame.node_id)
            kind = frame.kind.rpartition(":")[2].rpartition(".")[2]
            entry: dict[str, Any] = {
                "id": frame_id,
                "name": f"{frame.name} [{kind}] {frame.status}",
                "line": self._line_out(frame.line or 1) if frame.path else 0,
                "column": frame.column or 1 if frame.path else 0,
            }
            if frame.path:
                entry["source"] = {"name": Path(frame.path).name, "path": frame.path}
            if view.past:
                entry["presentationHint"] = "subtle"
            frames.append(entry)
        start = int(args.get("startFrame", 0))
        levels = int(args.get("levels", 0)) or len(frames)
        return {"stackFrames": frames[start : start + levels], "totalFrames": len(frames)}

    async def on_scopes(self, args: dict[str, Any]) -> dict[str, Any]:
        execution_id, node_id = self._frame(args["frameId"])
        view = await self._view(execution_id)
        node = next((n for n in view.nodes if n["id"] == node_id), {"id": node_id})
        state = {k: v for k, v in node.items() if k != "params"}
        scopes = [
            self._variables.scope("Node", execution_id, state, params=node.get("params")),
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
            args["variablesReference"], int(args.get("start", 0)), int(args.get("count", 0))
        )
        return {"variables": variables}

    async def on_setVariable(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._variables.key_of(args["variablesReference"], args["name"])
        if key is None:
            raise DapError(f"{args['name']} is not a blackboard value: only those can be edited")
        execution_id = self._variables.execution_of(args["variablesReference"])
        value = await self._value_of(execution_id, args["value"])
        await self._write(execution_id, key, value)
        return {"value": format_value(value)}

    async def on_setExpression(self, args: dict[str, Any]) -> dict[str, Any]:
        execution_id = self._execution_of_frame(args.get("frameId"))
        key = "/" + args["expression"].strip().replace(".", "/")
        value = await self._value_of(execution_id, args["value"])
        await self._write(execution_id, key, value)
        return {"value": format_value(value)}

    async def _value_of(self, execution_id: str, text: str) -> Any:
        """What the user typed, read as a safe expression (``42``, ``"dock"``, ``battery - 5``)."""
        return await self.control.evaluate(execution_id, text)

    async def _write(self, execution_id: str, key: str, value: Any) -> None:
        await self.control.set_blackboard(execution_id, key, value)
        self._views.pop(execution_id, None)
        if self._client.get("supportsInvalidatedEvent"):
            thread = self._by_execution[execution_id]
            await self.event("invalidated", {"areas": ["variables"], "threadId": thread.id})

    async def on_evaluate(self, args: dict[str, Any]) -> dict[str, Any]:
        execution_id, node_id = self._frame_or_thread(args.get("frameId"))
        view = await self._view(execution_id)
        expression = args["expression"]
        if view.past:
            result = Expression.compile(expression).evaluate(_past_context(view, node_id))
        else:
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
        execution_id, _ = self._frame_or_thread(args.get("frameId"))
        view = await self._view(execution_id)
        text = args["text"]
        column = int(args.get("column", len(text) + 1)) - (1 if self._lines_from_1 else 0)
        before = text[:column]
        start = len(before)
        while start > 0 and (before[start - 1].isalnum() or before[start - 1] in "_."):
            start -= 1
        prefix = before[start:]
        names = sorted(
            {key.strip("/").replace("/", ".") for key in view.blackboard}
            | {node["name"] for node in view.nodes}
            | {"status", "tick", "visits", "name", "id"}
        )
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
            raise DapError("the tree is not stopped on an exception")
        if stop.exception is None:
            return {
                "exceptionId": "NodeFailed",
                "description": stop.description,
                "breakMode": "always",
            }
        raised = stop.exception
        trace = "\n".join(
            f'  File "{f["path"]}", line {f["line"]}, in {f["function"]}\n    {f.get("code", "")}'
            for f in raised["traceback"]
        )
        return {
            "exceptionId": raised["exception"],
            "description": raised["message"],
            "breakMode": "always",
            "details": {
                "message": raised["message"],
                "typeName": raised["exception"],
                "fullTypeName": raised["exception"],
                "stackTrace": trace,
            },
        }

    # -- custom requests ---------------------------------------------------------------------

    async def on_canopy_reload(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        unbound = await self.control.reload(
            thread.execution_id,
            args.get("program"),
            keep_blackboard=args.get("keepBlackboard", True),
        )
        self._forget_stop(thread.execution_id)
        if self._client.get("supportsInvalidatedEvent"):
            await self.event("invalidated", {"areas": ["all"], "threadId": thread.id})
        return {"unboundBreakpoints": unbound}

    async def on_canopy_statistics(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        return _jsonable(await self.control.statistics(thread.execution_id))

    async def on_canopy_timeline(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        stats = await self.control.statistics(thread.execution_id)
        info = await self.control.info(thread.execution_id)
        return {"executionId": info.id, "ticks": info.tick, "statistics": _jsonable(stats.ticks)}

    async def on_canopy_stateAt(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        state = await self.control.state_at(thread.execution_id, args.get("tick"))
        return state.to_json()

    async def on_canopy_diff(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        return _jsonable(
            await self.control.diff_executions(thread.execution_id, args["otherExecutionId"])
        )

    async def on_canopy_picture(self, args: dict[str, Any]) -> dict[str, Any]:
        thread = self._only_thread(args)
        kind = args.get("format", "dot")
        picture = await self.control.picture(
            thread.execution_id, tick=args.get("tick"), format=kind
        )
        return {"format": kind, "content": picture}

    async def on_canopy_liveTree(self, args: dict[str, Any]) -> dict[str, Any]:
        """Start the ``canopy/nodeStatus`` event stream (status changes and tick ends)."""
        thread = self._only_thread(args)
        self._spawn(self._stream_statuses(thread), f"dap-live-tree-{thread.id}")
        return {"executionId": thread.execution_id}

    async def _stream_statuses(self, thread: _Thread) -> None:
        events = self.control.events(
            thread.execution_id, types=("NodeStatusChanged", "TickCompleted", "TreeReloaded")
        )
        async for event in events:
            await self.event(
                "canopy/nodeStatus",
                {
                    "threadId": thread.id,
                    "offset": event.offset,
                    "type": event.type,
                    **event.payload,
                },
            )

    # -- notifications -----------------------------------------------------------------------

    async def _forward_notifications(self, execution_id: str) -> None:
        async for note in self.control.notifications(execution_id):
            thread = self._by_execution[execution_id]
            if note.kind == "stopped" and note.stop is not None:
                await self._stopped(execution_id, note.stop)
            elif note.kind == "continued":
                await self.event("continued", {"threadId": thread.id, "allThreadsContinued": False})
            elif note.kind == "output":
                await self.event("output", {"category": note.category, "output": note.text})
            elif note.kind == "invalidated" and self._client.get("supportsInvalidatedEvent"):
                await self.event("invalidated", {"areas": ["all"], "threadId": thread.id})
            elif note.kind == "ended":
                await self._ended(thread, note)
                return

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
        if stop.breakpoint_ids:
            body["hitBreakpointIds"] = list(stop.breakpoint_ids)
        if stop.description:
            body["description"] = stop.description
            body["text"] = stop.description
        elif stop.reason == "failure":
            body["description"] = "node failed"
        await self.event("stopped", body)

    async def _ended(self, thread: _Thread, note: Notification) -> None:
        reason = note.reason or "completed"
        detail = f" ({note.text})" if note.text else ""
        await self.event(
            "output",
            {
                "category": "console",
                "output": f"execution {thread.execution_id} ended: {reason}{detail}\n",
            },
        )
        await self.event(
            "exited", {"exitCode": 0 if reason in ("completed", "max_ticks", "stopped") else 1}
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
        self._variables.forget(execution_id)

    def _thread(self, args: dict[str, Any]) -> _Thread:
        thread_id = args.get("threadId")
        thread = self._threads.get(thread_id) if isinstance(thread_id, int) else None
        if thread is None:
            if thread_id is None and len(self._threads) == 1:
                return next(iter(self._threads.values()))
            raise DapError(f"unknown thread {thread_id!r}")
        return thread

    def _only_thread(self, args: dict[str, Any] | None = None) -> _Thread:
        if args and "threadId" in args:
            return self._thread(args)
        if not self._threads:
            raise DapError("nothing is being debugged yet: launch or attach first")
        return next(iter(self._threads.values()))

    def _frame(self, frame_id: Any) -> tuple[str, str]:
        found = self._frames.get(frame_id) if isinstance(frame_id, int) else None
        if found is None:
            raise DapError(
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

    async def _progress_start(self, title: str) -> str | None:
        if not self._client.get("supportsProgressReporting"):
            return None
        progress_id = f"canopy-{id(self)}-{len(self._threads)}"
        await self.event("progressStart", {"progressId": progress_id, "title": title})
        return progress_id

    async def _progress_end(self, progress_id: str | None) -> None:
        if progress_id is not None:
            await self.event("progressEnd", {"progressId": progress_id})


def _validate(kind: str, args: dict[str, Any]) -> None:
    """Check launch/attach arguments against ``schemas/launch.schema.json``."""
    schema = schemas.load("launch.schema.json")
    validator = jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(args))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise DapError(f"{kind}: {where + ': ' if where else ''}{error.message}")


def _past_context(view: ExecutionView, node_id: str | None) -> dict[str, Any]:
    """Expression names over a recorded state (the past has no live node objects)."""
    from server.runtime.blackboard import BlackboardView

    node = next((n for n in view.nodes if n["id"] == node_id), None) if node_id else None
    context: dict[str, Any] = dict(BlackboardView(view.blackboard).items())
    context["tick"] = view.tick
    if node is not None:
        context.update(status=node["status"], name=node["name"], id=node["id"])
    return context


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
