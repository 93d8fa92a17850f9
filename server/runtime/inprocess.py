"""``ExecutionControl`` with the runtime in this process: for tests, and for the pod worker,
which runs it next to the tree so a tick never waits on the network unless it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import orjson
from py_trees.behaviour import Behaviour

from canopy.bridge import CanopyError, EventFilter, EventStore, Producer, RecordedEvent
from canopy.bridge.jsondata import refuse_wide_integers

from .agent_summary import AGENT_NAMES, CallState, agent_fields
from .blackboard import BlackboardView, absolute_key
from .breakpoints import BreakpointSpec, ExceptionFilter, WatchSpec
from .code_reload import CodeVersions, code_versions, reload_changed
from .control import (
    BreakpointView,
    ExecutionControl,
    ExecutionInfo,
    ExecutionView,
    FrameView,
    InvalidRequest,
    LaunchSpec,
    UnknownExecution,
    WatchView,
    as_control_errors,
)
from .definition import TREE_FILE_SUFFIXES, TreeDefinition, load_tree
from .definition.agent_kinds import AGENT_KINDS
from .diff import ExecutionDiff, StateDiff, diff_executions, diff_ticks
from .engine import (
    Execution,
    Mode,
    Notification,
    RunState,
    StepKind,
    StopInfo,
    end_text,
    tree_model,
)
from .expressions import Expression
from .forks import fork_spec, fork_spec_from_log
from .history import ExecutionHistory, ExecutionState
from .pictures import to_dot, to_json_model, to_svg
from .project import read_project
from .python_debug import (
    PythonDebugError,
    PythonMethod,
    PythonTarget,
    arm,
    own_methods,
    python_target,
    release,
)
from .recorded import RecordedCalls, read_recorded_calls
from .recorder import EventRecorder
from .stats import ExecutionStats, execution_statistics
from .values import jsonable

__all__ = ["InProcessControl", "NotificationStream", "SubscriberOverflow"]

log = logging.getLogger(__name__)

PRODUCER = Producer("canopy-runtime", "0.1.0")
NODE_NAMES: Final = ("status", "tick", "visits", "name", "id")
"""What an expression can name besides the blackboard: the node's own state (and, where the
tree has agents, their last call's fields: ``AGENT_NAMES``)."""
SUBSCRIBER_QUEUE = 1024
MAX_INTERVAL_MS: Final = 24 * 3600 * 1000.0
"""The longest time between ticks in interval mode: a day (a longer wait than the platform's
clock can express would end the execution with an error at its first tick)."""


class SubscriberOverflow(CanopyError):
    """A notifications consumer fell more than ``SUBSCRIBER_QUEUE`` behind and was dropped."""


@dataclass(slots=True)
class _Entry:
    execution: Execution
    recorder: EventRecorder
    spec: LaunchSpec
    history: ExecutionHistory
    program: str  # what runs now: the launch program, or what a reload switched to
    code: CodeVersions  # when the behaviour modules it uses were last written
    past: ExecutionState | None = None
    stops: list[asyncio.Future[StopInfo]] = field(default_factory=list)
    answers: RecordedCalls | None = None  # read once the execution ended: they change no more


def _load(spec: LaunchSpec, program: str, code: CodeVersions) -> TreeDefinition:
    """Load a tree, with fresh code for behaviour modules edited since ``code`` was taken;
    Groot2 tags map through the launch's registry, else the project's ``canopy.toml``
    ``[nodes]`` table, and a tree file's initial blackboard values are its own overridden by
    the project's (a Groot2 file has none of its own)."""
    reload_changed(code)
    base = Path(spec.base_dir) if spec.base_dir else None
    if Path(program).suffix.lower() not in TREE_FILE_SUFFIXES:  # a Python factory
        return load_tree(program, registry=spec.registry, base_dir=base)
    tree = Path(base or ".", program).resolve()
    project = read_project(tree)
    registry = spec.registry or project.nodes
    definition = load_tree(program, registry=registry, base_dir=base)
    values = project.blackboard(tree)
    return (
        replace(definition, blackboard={**definition.blackboard, **values})
        if values
        else definition
    )


def _check_interval(interval_ms: float) -> None:
    if not 0 < interval_ms <= MAX_INTERVAL_MS:
        raise InvalidRequest(
            f"intervalMs must be more than 0 and at most {MAX_INTERVAL_MS:.0f} (a day),"
            f" not {interval_ms:g}"
        )


class NotificationStream:
    """Notifications for one consumer, subscribed from creation (nothing is missed between
    asking for the stream and iterating it). Bounded: a consumer more than
    ``SUBSCRIBER_QUEUE`` behind is told so by :class:`SubscriberOverflow`; :meth:`end` ends
    the iteration once what is queued has been taken."""

    __slots__ = ("_registry", "execution_id", "overflowed", "queue")

    def __init__(self, registry: set[NotificationStream], execution_id: str | None) -> None:
        self._registry = registry
        self.execution_id = execution_id
        self.queue: asyncio.Queue[Notification | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False

    def offer(self, notification: Notification) -> None:
        """Queue ``notification`` if it is about this stream's execution (or any)."""
        if self.execution_id not in (None, notification.execution_id):
            return
        try:
            self.queue.put_nowait(notification)
        except asyncio.QueueFull:
            self.overflowed = True

    def end(self) -> None:
        """Stop the iteration after the notifications already queued."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def __aiter__(self) -> NotificationStream:
        return self

    async def __anext__(self) -> Notification:
        if self.overflowed and self.queue.empty():
            self.close()
            raise SubscriberOverflow("the notifications consumer fell too far behind")
        item = await self.queue.get()
        if item is None:
            self.close()
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop receiving."""
        self._registry.discard(self)


class InProcessControl(ExecutionControl):
    """Executions running in this process, recorded into ``store`` for ``tenant_id``."""

    def __init__(self, store: EventStore, *, tenant_id: str, producer: Producer = PRODUCER) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.producer = producer
        self._entries: dict[str, _Entry] = {}
        self._subscribers: set[NotificationStream] = set()
        self._loop = asyncio.get_running_loop()

    # -- lifecycle ---------------------------------------------------------------------------

    async def launch(self, spec: LaunchSpec) -> ExecutionInfo:
        refuse_wide_integers({"spec": {"blackboard": spec.blackboard}}, "launch")
        _check_interval(spec.interval_ms)
        # A fork runs the code as it is now: modules edited since its source loaded them (a
        # fixed Python agent, say) are imported afresh.
        source = self._entries.get(spec.fork.execution_id) if spec.fork else None
        code = source.code if source is not None else {}
        definition = await asyncio.to_thread(_load, spec, spec.program, code)
        project = await asyncio.to_thread(read_project, Path(definition.path))
        self._check_recordable(definition)
        recorded = await self._recorded(spec)
        execution_id = uuid.uuid4().hex[:12]
        recorder = EventRecorder(
            self.store, tenant_id=self.tenant_id, execution_id=execution_id, producer=self.producer
        )
        await recorder.start()
        execution = Execution(
            execution_id,
            definition,
            recorder,
            mode=spec.mode,
            interval_ms=spec.interval_ms,
            max_ticks=spec.max_ticks,
            keep_ticking=spec.keep_ticking,
            capture=spec.capture,
            blackboard=spec.blackboard,
            stop_on_entry=spec.stop_on_entry,
            notify=self._from_thread,
            forked_from=(spec.fork.execution_id, spec.fork.tick) if spec.fork else None,
            recorded=recorded,
            costs=project.costs,
        )
        entry = _Entry(
            execution,
            recorder,
            spec,
            ExecutionHistory(self.store, self.tenant_id, execution_id),
            spec.program,
            code_versions(definition),
        )
        self._entries[execution_id] = entry
        if spec.stop_on_entry:
            stopped = self._next_stop(entry)
            execution.start()
            await stopped
        else:
            execution.start()
        return self._info(entry)

    async def fork(
        self,
        execution_id: str,
        *,
        tick: int | None = None,
        blackboard: Mapping[str, Any] | None = None,
        live: Sequence[str] = (),
        mode: Mode | None = None,
    ) -> ExecutionInfo:
        entry = self._entries.get(execution_id)
        if entry is None:  # run by another process (an earlier session's): from the log
            spec = await fork_spec_from_log(
                self.store,
                self.tenant_id,
                execution_id,
                tick=tick,
                blackboard=blackboard,
                live=live,
                mode=mode,
            )
        else:
            source = replace(entry.spec, program=entry.program)
            state = await self.state_at(execution_id, tick)
            spec = fork_spec(source, state, blackboard=blackboard, live=live, mode=mode)
        return await self.launch(spec)

    async def _recorded(self, spec: LaunchSpec) -> RecordedCalls | None:
        """The source's answers a fork may serve: those the launch carries, else read from
        this process's log once the source's events are all in it."""
        fork = spec.fork
        if fork is None:
            return None
        if spec.answers is not None:
            return RecordedCalls.of(
                fork.execution_id, spec.answers, pinned=fork.edited, live=fork.live
            )
        source = self._entries.get(fork.execution_id)
        if source is None:
            return await read_recorded_calls(
                self.store, self.tenant_id, fork.execution_id, pinned=fork.edited, live=fork.live
            )
        answers = source.answers
        if answers is None:
            ended = source.execution.state is RunState.ENDED
            await source.recorder.drain()
            answers = await read_recorded_calls(self.store, self.tenant_id, fork.execution_id)
            if ended:  # a later fork of it takes the same answers without reading them again
                source.answers = answers
        return replace(answers, pinned=frozenset(fork.edited), live=frozenset(fork.live))

    async def executions(self) -> list[ExecutionInfo]:
        return [self._info(entry) for entry in self._entries.values()]

    async def info(self, execution_id: str) -> ExecutionInfo:
        return self._info(self._entry(execution_id))

    async def terminate(self, execution_id: str) -> ExecutionInfo:
        entry = self._entry(execution_id)
        entry.execution.terminate()
        await asyncio.to_thread(_join_released, entry.execution, execution_id)
        await entry.recorder.drain()
        return self._info(entry)

    async def close(self) -> None:
        for execution_id in list(self._entries):
            await self.terminate(execution_id)
        for entry in self._entries.values():
            await entry.recorder.close()

    # -- running -----------------------------------------------------------------------------

    async def tick(self, execution_id: str, count: int = 1) -> None:
        entry = self._live(execution_id)
        if entry.execution.mode not in (Mode.MANUAL, Mode.PAUSED):
            raise InvalidRequest(f"ticks are requested in manual mode, not {entry.execution.mode}")
        if count < 1:
            raise InvalidRequest(f"tick count must be >= 1, not {count}")
        entry.execution.request_ticks(count)

    async def set_mode(
        self, execution_id: str, mode: Mode, *, interval_ms: float | None = None
    ) -> None:
        if interval_ms is not None:
            _check_interval(interval_ms)
        self._live(execution_id).execution.set_mode(mode, interval_ms)

    async def pause(self, execution_id: str, *, reason: str = "pause") -> StopInfo:
        entry = self._live(execution_id)
        if entry.execution.stopped is not None:
            return entry.execution.stopped
        stopped = self._next_stop(entry)
        entry.execution.pause(reason)
        return await stopped

    async def resume(self, execution_id: str, action: StepKind = StepKind.CONTINUE) -> None:
        entry = self._live(execution_id)
        entry.past = None
        if entry.execution.state is not RunState.STOPPED:
            raise InvalidRequest(f"execution {execution_id} is {entry.execution.state.value}")
        entry.execution.resume(action)

    async def wait_for_stop(self, execution_id: str) -> StopInfo:
        """The current stop, or the next one (the execution must be able to stop)."""
        entry = self._entry(execution_id)
        if entry.execution.stopped is not None:
            return entry.execution.stopped
        return await self._next_stop(entry)

    async def settle(self, execution_id: str) -> ExecutionInfo:
        entry = self._entry(execution_id)
        await asyncio.to_thread(entry.execution.settle)
        return self._info(entry)

    async def wait_for_end(self, execution_id: str) -> ExecutionInfo:
        """Wait until the execution has ended and its events are in the log."""
        entry = self._entry(execution_id)
        await asyncio.to_thread(entry.execution.join)
        await entry.recorder.drain()
        return self._info(entry)

    # -- breakpoints -------------------------------------------------------------------------

    async def set_breakpoints(
        self, execution_id: str, specs: Sequence[BreakpointSpec]
    ) -> list[BreakpointView]:
        resolved = self._live(execution_id).execution.set_breakpoints(specs)
        return [
            BreakpointView(b.id, b.verified, b.node_ids, b.line, b.message, b.hits)
            for b in resolved
        ]

    async def set_watches(self, execution_id: str, specs: Sequence[WatchSpec]) -> list[WatchView]:
        watches = self._live(execution_id).execution.set_watches(specs)
        return [WatchView(w.id, w.key, w.verified, w.message) for w in watches]

    async def set_exception_filters(
        self, execution_id: str, filters: Sequence[ExceptionFilter]
    ) -> None:
        self._live(execution_id).execution.set_exception_filters(filters)

    # -- inspecting --------------------------------------------------------------------------

    async def view(self, execution_id: str) -> ExecutionView:
        entry = self._entry(execution_id)
        if entry.past is not None:
            return self._past_view(entry, entry.past)
        execution = entry.execution
        frames = tuple(self._frame(execution, node) for node in execution.path())
        nodes = tuple(execution.node_state(node) for node in execution.nodes())
        return ExecutionView(
            execution.id,
            execution.tick_count,
            execution.state,
            execution.stopped,
            frames,
            nodes,
            execution.blackboard(),
            raised=execution.stopped.exception if execution.stopped else None,
        )

    async def evaluate(
        self, execution_id: str, expression: str, *, node_id: str | None = None
    ) -> Any:
        entry = self._entry(execution_id)
        compiled = Expression.compile(expression)
        if entry.past is not None:
            view = self._past_view(entry, entry.past)
            return jsonable(compiled.evaluate(_past_context(view, node_id)))
        execution = entry.execution
        node = execution.node_by_id(node_id) if node_id else None
        if node_id and node is None:
            raise InvalidRequest(f"no node {node_id!r} in execution {execution_id}")
        return jsonable(compiled.evaluate(execution.context(node)))

    async def expression_names(self, execution_id: str) -> list[str]:
        view = await self.view(execution_id)
        agents = any("agent" in node for node in view.nodes)
        return sorted(
            {key.strip("/").replace("/", ".") for key in view.blackboard}
            | {node["name"] for node in view.nodes}
            | set(NODE_NAMES)
            | (set(AGENT_NAMES) if agents else set())
        )

    async def set_blackboard(self, execution_id: str, key: str, value: Any) -> str:
        entry = self._live(execution_id)
        if entry.past is not None:
            raise InvalidRequest("the past is read-only: continue to return to the live execution")
        refuse_wide_integers({"value": value}, "set_blackboard")
        stored = absolute_key(key)
        entry.execution.set_blackboard(stored, value)
        return stored

    async def reload(
        self, execution_id: str, program: str | None = None, *, keep_blackboard: bool = True
    ) -> list[str]:
        entry = self._live(execution_id)
        program = program or entry.program
        definition = await asyncio.to_thread(_load, entry.spec, program, entry.code)
        self._check_recordable(definition)
        entry.program = program
        entry.code = code_versions(definition)
        return await asyncio.wrap_future(
            entry.execution.reload(definition, keep_blackboard=keep_blackboard)
        )

    # -- time travel -------------------------------------------------------------------------

    async def step_back(self, execution_id: str) -> ExecutionView:
        entry = self._entry(execution_id)
        history = await self._history(entry)
        current = entry.past.tick if entry.past is not None else entry.execution.tick_count
        if current <= 0:
            raise InvalidRequest("already at the start of the execution")
        entry.past = await history.state_at_tick(current - 1)
        return self._past_view(entry, entry.past)

    async def reverse_continue(self, execution_id: str) -> ExecutionView:
        entry = self._entry(execution_id)
        history = await self._history(entry)
        here = entry.past.offset if entry.past is not None else None
        stops = [s for s in await history.stops() if here is None or s.offset < here]
        if entry.past is None and stops:
            stops = stops[:-1]  # the live stop we are at is not "the previous" one
        target = stops[-1].offset if stops else None
        entry.past = (
            await history.state_at_offset(target)
            if target is not None
            else await history.state_at_tick(0)
        )
        return self._past_view(entry, entry.past)

    async def _history(self, entry: _Entry) -> ExecutionHistory:
        """The execution's history (one per execution: its index makes repeated jumps cheap),
        once everything recorded so far is in the log."""
        await entry.recorder.drain()
        return entry.history

    def _past_view(self, entry: _Entry, state: ExecutionState) -> ExecutionView:
        """The recorded past, drawn from the tree in force at that point (it may differ from
        today's after a hot reload)."""
        execution = entry.execution
        nodes = {node.id: node for node in state.tree}
        frames = []
        node_id = state.current_node or (state.root.id if state.root else None)
        while node_id is not None and node_id in nodes:
            node = nodes[node_id]
            frames.append(
                FrameView(
                    node.id,
                    node.name,
                    node.kind,
                    state.statuses.get(node.id, "INVALID"),
                    node.path,
                    node.line,
                    node.column,
                )
            )
            node_id = node.parent
        return ExecutionView(
            execution.id,
            state.tick,
            execution.state,
            execution.stopped,
            tuple(frames),
            tuple(
                {
                    "id": n.id,
                    "name": n.name,
                    "kind": n.kind,
                    "status": state.statuses.get(n.id, "INVALID"),
                    **_past_agent(state, n.id, n.kind),
                }
                for n in state.tree
            ),
            dict(state.blackboard),
            past=True,
            raised=state.raised,
        )

    # -- the recorded past, read-only ---------------------------------------------------------

    async def state_at(self, execution_id: str, tick: int | None = None) -> ExecutionState:
        history = await self._history(self._entry(execution_id))
        with as_control_errors():
            return await history.state_at_tick(await history.ticks() if tick is None else tick)

    async def statistics(self, execution_id: str) -> ExecutionStats:
        await self._entry(execution_id).recorder.drain()
        with as_control_errors():
            return await execution_statistics(self.store, self.tenant_id, execution_id)

    async def picture(
        self, execution_id: str, *, tick: int | None = None, format: str = "dot"
    ) -> str | dict[str, Any]:
        if format not in ("dot", "svg", "json"):
            raise InvalidRequest(f"pictures come as dot, svg or json, not {format!r}")
        if tick is None:
            history = await self._history(self._entry(execution_id))
            with as_control_errors():
                state = await history.state_at_offset(await self.store.last_offset())
        else:
            state = await self.state_at(execution_id, tick)
        if format == "json":
            return to_json_model(state)
        return to_dot(state) if format == "dot" else await to_svg(state)

    async def diff_ticks(self, execution_id: str, first: int, second: int) -> StateDiff:
        history = await self._history(self._entry(execution_id))
        with as_control_errors():
            return await diff_ticks(history, first, second)

    async def diff_executions(self, first_id: str, second_id: str) -> ExecutionDiff:
        for execution_id in (first_id, second_id):
            if execution_id in self._entries:
                await self._entries[execution_id].recorder.drain()
        with as_control_errors():
            return await diff_executions(self.store, self.tenant_id, first_id, second_id)

    async def python_debug(
        self, execution_id: str, node_id: str, stop_in: str | None = None
    ) -> PythonTarget:
        execution = self._live(execution_id).execution
        node = self._node(execution_id, node_id)

        def target() -> PythonTarget:
            found = python_target(node, node_id, list(execution.nodes()))
            if stop_in is not None:
                arm(node, node_id, stop_in)
            return found

        try:
            return await asyncio.to_thread(target)
        except PythonDebugError as error:
            raise InvalidRequest(str(error)) from error

    async def python_methods(self, execution_id: str, node_id: str) -> list[PythonMethod]:
        return own_methods(self._node(execution_id, node_id))

    def _node(self, execution_id: str, node_id: str) -> Behaviour:
        node = self._live(execution_id).execution.node_by_id(node_id)
        if node is None:
            raise InvalidRequest(f"no node {node_id!r} in execution {execution_id}")
        return node

    async def breakpoint_lines(
        self, execution_id: str, path: str, first: int = 1, last: int | None = None
    ) -> list[int]:
        definition = self._entry(execution_id).execution.definition
        return list(definition.breakpoint_lines(path, first, last))

    async def events(
        self, execution_id: str, *, after: int = 0, types: Sequence[str] = ()
    ) -> AsyncIterator[RecordedEvent]:
        self._entry(execution_id)
        stream = EventFilter.of(self.tenant_id, streams=[f"execution/{execution_id}"], types=types)
        async for event in self.store.subscribe(stream, after=after):
            yield event

    # -- notifications -----------------------------------------------------------------------

    def notifications(self, execution_id: str | None = None) -> NotificationStream:
        stream = NotificationStream(self._subscribers, execution_id)
        self._subscribers.add(stream)
        return stream

    def _from_thread(self, notification: Notification) -> None:
        self._loop.call_soon_threadsafe(self._dispatch, notification)

    def _dispatch(self, notification: Notification) -> None:
        entry = self._entries.get(notification.execution_id)
        if entry is not None and notification.kind == "stopped" and notification.stop:
            waiting, entry.stops = entry.stops, []
            for future in waiting:
                if not future.done():
                    future.set_result(notification.stop)
        for subscriber in self._subscribers:
            subscriber.offer(notification)

    def _next_stop(self, entry: _Entry) -> asyncio.Future[StopInfo]:
        future: asyncio.Future[StopInfo] = self._loop.create_future()
        entry.stops.append(future)
        return future

    def _check_recordable(self, definition: TreeDefinition) -> None:
        """A tree whose description the log would refuse is refused now: history, pictures
        and statistics all start from that description."""
        size = len(orjson.dumps(tree_model(definition)))
        limit = self.store.validator.payload_limit("ExecutionStarted")
        if size > limit:
            raise InvalidRequest(
                f"tree {definition.name!r} has {len(definition.nodes())} nodes; its description "
                f"is {size} bytes, over the {limit} bytes the event log records for one event"
            )

    # -- helpers -----------------------------------------------------------------------------

    def _entry(self, execution_id: str) -> _Entry:
        entry = self._entries.get(execution_id)
        if entry is None:
            raise UnknownExecution(execution_id)
        return entry

    def _live(self, execution_id: str) -> _Entry:
        entry = self._entry(execution_id)
        if entry.execution.state is RunState.ENDED:
            ended = end_text(entry.execution.end_reason or "", entry.execution.end_detail)
            raise InvalidRequest(f"execution {execution_id} has ended ({ended})")
        return entry

    @staticmethod
    def _info(entry: _Entry) -> ExecutionInfo:
        execution = entry.execution
        return ExecutionInfo(
            execution.id,
            entry.program,
            execution.definition.name,
            execution.mode,
            execution.state,
            execution.tick_count,
            execution.stopped,
            execution.end_reason,
            execution.end_detail,
        )

    @staticmethod
    def _frame(execution: Execution, node: Behaviour) -> FrameView:
        node_id = execution.node_id(node)
        spec = execution.definition.node(node_id)
        return FrameView(
            node_id,
            node.name,
            spec.kind if spec else type(node).__name__,
            node.status.value,
            spec.source.path if spec else None,
            spec.source.line if spec else None,
            spec.source.column if spec else None,
        )


def _past_agent(state: ExecutionState, node_id: str, kind: str) -> dict[str, Any]:
    """An agent node's ``agent`` entry in a past view: its last call recorded by then (idle
    before its first)."""
    if node_id in state.agents:
        return {"agent": state.agents[node_id]}
    if kind in AGENT_KINDS:
        return {"agent": {"kind": kind, "state": CallState.IDLE}}
    return {}


def _past_context(view: ExecutionView, node_id: str | None) -> dict[str, Any]:
    """Expression names over a recorded state (the past has no live node objects)."""
    node = next((n for n in view.nodes if n["id"] == node_id), None) if node_id else None
    context: dict[str, Any] = dict(BlackboardView(view.blackboard).items())
    context["tick"] = view.tick
    if node is not None:
        context.update(status=node["status"], name=node["name"], id=node["id"])
        if "agent" in node:
            context.update(agent_fields(node["agent"]))
    return context


RELEASE_EVERY_S: Final = 0.5
"""How long an ending execution's thread may take before a debugpy stop holding it is let go
(again: stepping on in Python, it may stop at another breakpoint on its way out)."""


def _join_released(execution: Execution, execution_id: str) -> None:
    """Wait for an execution told to end, releasing its thread from debugpy stops."""
    while not execution.join(RELEASE_EVERY_S):
        release(execution_id)
