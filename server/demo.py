"""``canopy demo``: the whole product on the demo workspace, with nothing configured.

It starts a server on a free local port, switches debug mode on (a local debug pod), runs the
patrol tree of ``examples/`` in it with a breakpoint and a data breakpoint, steps over, steps
back through history, runs on to the deliberate bug, reports it and lets the execution end
``failed`` by it. Then the triage workflow of ``examples/``: a breakpoint after ``classify``
shows the model's answer, whose urgency (``critical``) the policy agent's table does not know
(that example's deliberate bug); the demo edits it to ``high`` on the blackboard and the run
goes through to the reply. It forks the run from that tick with the model's own answer put
back: the agents whose inputs did not change are answered from the log (no model is called),
the policy agent runs live and fails on ``critical``, and the two runs are compared. The
models answer from the offline fixtures beside the tree (unless ``CANOPY_LLM_PROVIDER`` says
otherwise). Every step goes through the same HTTP API and pod link the editor uses; the events
land in ``<workspace>/.canopy``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from canopy.bridge.client import CanopyClient

from .api.keys import LOCAL_TOKEN
from .app import create_app, stop_pods
from .config import Settings
from .connections import listen, make_runner
from .remote.client import HttpExecutionControl
from .runtime.breakpoints import BreakpointSpec, ExceptionFilter, Position, WatchSpec
from .runtime.control import LaunchSpec
from .runtime.diff import Change, Divergence
from .runtime.engine import Mode, StepKind, StopInfo, end_text

__all__ = ["DEMO_PROGRAM", "WORKFLOW_PROGRAM", "DemoReport", "WorkflowReport", "run_demo"]

DEMO_PROGRAM: Final = "patrol/patrol.yaml"
INITIAL: Final = {"battery": 45, "waypoint": 0, "scans": 0}


@dataclass
class DemoReport:
    """What the demo saw, step by step (printed by the CLI, checked by the tests)."""

    pod_ready_ms: float = 0.0
    execution_id: str = ""
    steps: list[str] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    failed_at_tick: int = 0
    told: str = ""
    """How the exception was told as it happened (the stderr output of a debug console)."""
    ended: str = ""
    """How the execution ended, e.g. ``failed: ZeroDivisionError in scan``."""
    picture: Path | None = None
    statistics: dict[str, int] = field(default_factory=dict)
    workflow: WorkflowReport | None = None


def _stop_line(stop: StopInfo) -> str:
    if stop.position in ("before", "after"):
        where = f"at {stop.node_id} ({stop.position} its update)"
    else:
        where = "at the end of the tick"
    return f"tick {stop.tick}: stopped on {stop.reason} {where}"


async def run_demo(
    workspace: Path,
    say: Callable[[str], None],
    tree_done: Callable[[DemoReport], None] = lambda report: None,
) -> DemoReport:
    """Run the demo on ``workspace`` (the folder holding ``patrol/patrol.yaml`` and
    ``triage/triage.yaml``); ``tree_done`` is told the tree part's report before the workflow
    part starts, so that a summary of the tree's bug reads where it belongs."""
    settings = Settings(
        port=0, data_dir=workspace / ".canopy", log_level="WARNING", pod_spare=False
    )
    app = create_app(settings, workspace=workspace)
    runner = make_runner(app, settings)
    await runner.setup()
    try:
        url = await listen(runner, "127.0.0.1", 0)
        say(f"server on {url}, event log {settings.database_url}")
        async with CanopyClient(url, app[LOCAL_TOKEN]) as client:
            control = HttpExecutionControl(client)
            await control.connect()
            try:
                report = await _debug(client, control, workspace, say)
                tree_done(report)
                report.workflow = await _debug_workflow(client, control, say)
                return report
            finally:
                await control.close()
    finally:
        await stop_pods(app)
        await runner.cleanup()


async def _debug(
    client: CanopyClient, control: HttpExecutionControl, workspace: Path, say: Callable[[str], None]
) -> DemoReport:
    report = DemoReport()
    started = time.perf_counter()
    async with client.session.put(client.url_for("api/v1/pods/me")) as answer:
        answer.raise_for_status()
    report.pod_ready_ms = round((time.perf_counter() - started) * 1000, 1)
    say(f"debug mode on: local pod ready in {report.pod_ready_ms:.0f} ms")

    notes = control.notifications()  # subscribed from here on: nothing of the run is missed
    info = await control.launch(LaunchSpec(DEMO_PROGRAM, mode=Mode.MANUAL, blackboard=INITIAL))
    report.execution_id = eid = info.id
    say(f"launched {DEMO_PROGRAM} as execution {eid}")
    await control.set_breakpoints(eid, [BreakpointSpec(node="scan")])
    await control.set_watches(eid, [WatchSpec("battery", condition="battery < 10")])
    await control.set_exception_filters(eid, [ExceptionFilter.RAISED])
    say("breakpoint on scan; data breakpoint on battery < 10; stop when a behaviour raises")

    def step(line: str) -> None:
        report.steps.append(line)
        say(line)

    await control.tick(eid, 10)
    step(_stop_line(await control.wait_for_stop(eid)))
    view = await control.view(eid)
    step(f"  blackboard: {_blackboard(view.blackboard)}")
    await control.resume(eid, StepKind.OVER)
    step(_stop_line(await control.wait_for_stop(eid)))
    past = await control.step_back(eid)
    step(f"stepped back to tick {past.tick}: {_blackboard(past.blackboard)} (read-only past)")
    await control.set_breakpoints(eid, [])
    await control.set_mode(eid, Mode.AUTO)
    while True:
        await control.resume(eid, StepKind.CONTINUE)
        stop = await control.wait_for_stop(eid)
        step(_stop_line(stop))
        if stop.reason == "exception":
            report.failure = stop.exception
            report.failed_at_tick = stop.tick
            break
    view = await control.view(eid)
    step(f"  blackboard: {_blackboard(view.blackboard)}")
    stats = await control.statistics(eid)
    report.statistics = {node_id: node.visits for node_id, node in stats.nodes.items()}
    if shutil.which("dot"):
        svg = await control.picture(eid, format="svg")
        report.picture = workspace / ".canopy" / "demo-tree.svg"
        report.picture.write_text(str(svg), encoding="utf-8")
    async for note in notes:
        if note.execution_id == eid and note.kind == "output" and note.category == "stderr":
            report.told = note.text
            break
    await control.resume(eid, StepKind.CONTINUE)
    ended = await control.wait_for_end(eid)
    report.ended = end_text(ended.end_reason or "", ended.end_detail)
    step(f"continued: the execution ended {report.ended}")
    return report


def _blackboard(values: dict[str, Any]) -> str:
    return ", ".join(f"{key.lstrip('/')}={value!r}" for key, value in sorted(values.items()))


# -- the workflow part ----------------------------------------------------------------------

WORKFLOW_PROGRAM: Final = "triage/triage.yaml"
INTERVAL_MS: Final = 20.0
"""Ticks while the agents' calls run: each tick only looks whether they are done."""
AFTER_CLASSIFY: Final = BreakpointSpec(
    node="classify", position=Position.AFTER, condition="status == 'SUCCESS'"
)
"""Stops once the model has answered (classify is RUNNING on the ticks before)."""
FIXED_URGENCY: Final = "high"
AGENT_EVENTS: Final = ("AgentCallCompleted", "AgentCallFailed", "ExecutionEnded")


@dataclass
class AgentRun:
    """One workflow execution as its events tell it."""

    execution_id: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """The payloads of its ``AgentCallCompleted`` and ``AgentCallFailed`` events, in log
    order."""
    ended: str = ""
    root_status: str = ""

    @property
    def completed(self) -> list[dict[str, Any]]:
        return [payload for payload in self.calls if "error_type" not in payload]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [payload for payload in self.calls if "error_type" in payload]

    @property
    def served(self) -> list[str]:
        """The agents answered from another execution's log."""
        return [_name(p["node_id"]) for p in self.calls if "served_from" in p]

    @property
    def live(self) -> list[str]:
        """The agents that ran (a model or a function called), as their calls ended."""
        return [
            _name(p["node_id"]) + (" (failed)" if "error_type" in p else "")
            for p in self.calls
            if "served_from" not in p
        ]


@dataclass
class WorkflowReport:
    """What the workflow part saw (printed as it goes, checked by the tests)."""

    steps: list[str] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=dict)
    """classify's outputs at the breakpoint: category and urgency."""
    reply: str = ""
    run: AgentRun = field(default_factory=AgentRun)
    fork: AgentRun = field(default_factory=AgentRun)
    forked_from_tick: int = 0
    failure: str = ""
    """How the fork's failing agent told its failure (``AgentCallFailed``'s message)."""
    told: str = ""
    """How the failure was told as it happened (the stderr output of a debug console), with the
    line of ``triage_tools.py`` that raised."""
    diverged: str = ""


async def _debug_workflow(
    client: CanopyClient, control: HttpExecutionControl, say: Callable[[str], None]
) -> WorkflowReport:
    """Debug the triage workflow in the caller's pod, then fork it (see the module's story)."""
    report = WorkflowReport()

    def step(line: str) -> None:
        report.steps.append(line)
        say(line)

    info = await control.launch(LaunchSpec(WORKFLOW_PROGRAM, mode=Mode.PAUSED))
    eid = report.run.execution_id = info.id
    await control.set_breakpoints(eid, [AFTER_CLASSIFY])
    await control.set_mode(eid, Mode.INTERVAL, interval_ms=INTERVAL_MS)
    step(f"launched {WORKFLOW_PROGRAM} as execution {eid}; breakpoint after classify")
    stop = await control.wait_for_stop(eid)
    report.forked_from_tick = stop.tick
    step(_stop_line(stop))
    board = (await control.view(eid)).blackboard
    report.answer = {key: board.get(f"/{key}") for key in ("category", "urgency")}
    step(f"  classify answered {_values(report.answer)}")
    urgency = report.answer["urgency"]
    step(
        f"  policy's table has no urgency {urgency!r}: "
        f"set urgency={FIXED_URGENCY!r} on the blackboard and continue"
    )
    await control.set_blackboard(eid, "urgency", FIXED_URGENCY)
    await control.set_breakpoints(eid, [])
    await control.resume(eid, StepKind.CONTINUE)
    await _follow(client, report.run)
    report.reply = str((await control.view(eid)).blackboard.get("/reply", ""))
    step(f"the execution ended {report.run.ended} ({len(report.run.completed)} agent calls)")
    for line in report.reply.splitlines():
        step(f"  reply: {line}")

    notes = control.notifications()  # subscribed before the fork runs: nothing is missed
    fork = await control.fork(
        eid, tick=stop.tick, blackboard={"urgency": urgency}, mode=Mode.PAUSED
    )
    report.fork.execution_id = fork.id
    await control.set_exception_filters(fork.id, [ExceptionFilter.FAILED])
    await control.set_mode(fork.id, Mode.INTERVAL, interval_ms=INTERVAL_MS)
    step(
        f"forked it from tick {stop.tick} as {fork.id} with urgency={urgency!r}, "
        "as the model answered; stop when a node fails"
    )
    failed = await control.wait_for_stop(fork.id)
    step(_stop_line(failed))
    async for note in notes:
        if note.execution_id == fork.id and note.kind == "output" and note.category == "stderr":
            report.told = note.text
            break
    notes.close()
    for line in report.told.splitlines():
        step(f"  {line}")
    await control.set_exception_filters(fork.id, [])
    await control.resume(fork.id, StepKind.CONTINUE)
    await _follow(client, report.fork)
    report.failure = report.fork.failed[0]["message"] if report.fork.failed else ""
    step(f"the fork ended {report.fork.ended}")
    step(
        f"  answered from the log: {', '.join(report.fork.served)} (no model called); "
        f"ran live: {', '.join(report.fork.live) or 'none'}"
    )
    diff = await control.diff_executions(eid, fork.id)
    report.diverged = _divergence(diff.diverged_at, diff.diverged_on)
    step(f"diff of the run and its fork: {report.diverged}")
    step(
        f"  the run: {diff.a.ticks} ticks, {diff.a.root_status}; "
        f"the fork (from tick {stop.tick}'s blackboard): {diff.b.ticks} ticks, {diff.b.root_status}"
    )
    return report


async def _follow(client: CanopyClient, run: AgentRun) -> None:
    """Read the execution's agent calls from the log, through its end (the pod ships its
    events on its own: the end in the log is the sign that all of them are there)."""
    subscription = client.subscribe(streams=[f"execution/{run.execution_id}"], types=AGENT_EVENTS)
    try:
        async for event in subscription:
            if event.type != "ExecutionEnded":
                run.calls.append(event.payload)
            else:
                run.ended = end_text(event.payload["reason"], event.payload.get("detail"))
                run.root_status = str(event.payload.get("root_status", ""))
                run.ended += f", the tree {run.root_status}" if run.root_status else ""
                return
    finally:
        await subscription.close()


def _divergence(tick: int | None, on: Divergence | None) -> str:
    """Where the diff says two executions part, in a line."""
    if tick is None:
        return "no tick differs"
    change = (on.a or on.b) if on is not None else None
    if on is None or change is None:
        return f"they part at tick {tick}"
    what = f"node {_name(change.node)}" if change.node else f"key {(change.key or '').lstrip('/')}"
    return (
        f"they part at tick {tick} on {what}: {_side(on.a)} in the run, {_side(on.b)} in the fork"
    )


def _side(change: Change | None) -> str:
    if change is None:
        return "nothing"
    if change.unset:
        return "unset"
    return repr(change.value)


def _name(node_id: str) -> str:
    return node_id.rsplit("/", 1)[-1]


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in values.items())
