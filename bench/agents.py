"""Benchmark of what workflow agents cost, against baselines measured in the same run.

Every model call goes through the real ``anthropic`` SDK to one local server speaking the
Messages API (``tests/server/llm/messages_server.py``: scripted replies, a simulated latency per
reply, every request counted). Executions run through the in-process control into a real SQLite
log, with ``CANOPY_LLM_PROVIDER=anthropic`` pointed at that server. Agents tick under two
paces: ``auto`` (ticks back to back: the DAP adapter's default launch mode) and
``interval_5ms`` (a tick every 5 ms, the pace of the agent tests).

1. **An agent step against a direct SDK call.** A ``Sequence`` of llm agents, each asking a
   different question answered at once (no simulated latency). A step is what the tree sees:
   from the agent's ``AgentCallStarted`` to its ``AgentCallCompleted``, both stamped by the
   recorder when the tick thread records them (``time_us``), so it holds putting the call on
   the loop, the call, and waiting for the tick that notices it is done. Its baseline is the
   same request streamed to the same server by a bare ``anthropic.AsyncAnthropic`` client
   (``messages.stream`` to the final message), and beside it the same calls through
   :class:`AnthropicModel` alone (Canopy's model layer, no execution); both run before and
   after every execution. Reported: p50/p95 of each and the added p50/p95 (step minus direct,
   differences of percentiles); per agent, exactly, the call as the loop ran it
   (``latency_ms`` of ``AgentCallCompleted``) and the hand-off (step minus ``latency_ms``:
   starting the call and noticing its end); ticks and log events per agent (every tick records
   a ``TickCompleted``). Target: <= 0.5 ms added at p50.
2. **A 50-agent workflow with 10-way fan-out**: 5 stages in a ``Sequence``, each a
   ``Parallel`` of 10 llm agents; agent ``i`` of a stage reads its stage's topic and what agent
   ``i`` of the stage before wrote. Every reply has its own latency (seeded, uniform in
   ``latency_ms``). The critical path is the sum over stages of the slowest latency in each:
   what the workflow would take if only the model took time. Wall time is from the launch call
   to ``wait_for_end`` (every event in the log); the same run's ``ExecutionStarted`` to
   ``ExecutionEnded`` is reported beside it, and so is the same 50 calls made by a bare SDK
   client, stage after stage with ``asyncio.gather`` (what the client itself costs over the
   critical path on this machine). Target: wall <= 1.1x the critical path.
3. **A fork at agent 40 of 50 against a full re-run.** From an ``interval_5ms`` run of the
   workflow, a fork at the tick where the 40th agent (the last of stage 4) completed, with stage
   5's topic edited: the 40 agents whose inputs are unchanged are answered from the log, the 10
   of stage 5 run live. The baseline is the same workflow with the same edit launched from
   scratch (50 live calls). The model server's requests are counted during the fork. Reported:
   the whole of each, its setup (from the call to its ``ExecutionStarted``) and when its first
   stage-5 call starts, from the call and from its start. Targets: no request for an unchanged
   leaf; the fork reaches stage 5 (from the call) >= 10x sooner than the re-run; the whole
   fork <= 1.1x the critical path of its live stage. The whole fork cannot be 10x faster than
   the re-run: its 10 live agents take one stage's critical path of the re-run's five
   (``speedup_bound`` in the JSON is that ratio).
4. **Span export per model call**: ``bench/tracing_overhead.py``'s measurement, imported and
   run here (a ``chat`` span around the offline model, tracing off and on, exported over
   OTLP/HTTP to a collector process that counts the spans). Agents themselves make no spans
   yet (the runtime does not wrap its model in ``TracedModel``), so this is the model-level
   figure, with no target of its own but that every traced call's span reaches the collector.

5. **Silent capture against verbose** on the triage example (``examples/triage``, offline
   model): the same execution run under each capture level, and the bytes of its events'
   payloads (their JSON, as the log stores them) summed, over all events and over agent events.
   Target: silent stores >= 80% fewer bytes than verbose, over all events and in agent events.

Run it from the repository root::

    .venv/bin/python bench/agents.py --quick      # < 30 s
    .venv/bin/python bench/agents.py              # full mode, a minute or two

A readable table goes to stderr; the last line of stdout is one JSON object with every figure,
its baseline, the targets and ``all_targets_pass``. The machine is often shared: the JSON says
how many cores other processes kept busy during the run (``other_cores_busy``); an agent's
step is a few milliseconds, so a busy machine moves the figures: read medians, and several
runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anthropic
import orjson
import yaml
from measure import emit_report, machine_busy_seconds, percentile
from rich.console import Console
from rich.table import Table

from canopy.bridge import EventFilter, EventStore, RecordedEvent, open_store
from canopy.server.llm import ModelRequest
from canopy.server.llm.anthropic_model import AnthropicModel
from canopy.server.runtime.control import ExecutionInfo, LaunchSpec
from canopy.server.runtime.engine import CaptureLevel, Mode
from canopy.server.runtime.inprocess import InProcessControl

REPO: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests' Messages API server is the model here too

import tracing_overhead  # noqa: E402  (bench/, beside this script)

from tests.server.llm.messages_server import MessagesServer, reply, serve_messages  # noqa: E402

MODEL: Final = "claude-haiku-4-5"
API_KEY: Final = "sk-bench"
TENANT: Final = "bench"
SEED: Final = 20_261_207
STAGES: Final = 5
WIDTH: Final = 10
FORK_STAGE: Final = 4
"""The fork starts where the last agent of this stage completed (agent 40 of 50)."""
STEP_TARGET_MS: Final = 0.5
FANOUT_TARGET: Final = 1.1
FORK_SPEEDUP_TARGET: Final = 10.0
CAPTURE_SAVING_TARGET: Final = 80.0
"""Percent fewer bytes silent capture stores than verbose."""
TRIAGE: Final = REPO / "examples" / "triage" / "triage.yaml"
_PAGE: Final = 10_000

console = Console(
    stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 160
)


@dataclass(frozen=True)
class Pace:
    """How an execution ticks."""

    name: str
    mode: Mode
    interval_ms: float = 100.0


PACES: Final = (Pace("auto", Mode.AUTO), Pace("interval_5ms", Mode.INTERVAL, 5.0))
FORK_PACE: Final = PACES[1]


@dataclass(frozen=True)
class Plan:
    """How much of each measurement a mode does."""

    mode: str
    step_agents: int
    step_rounds: int
    workflow_runs: int
    fork_runs: int
    latency_ms: tuple[float, float]
    span_calls: int
    span_rounds: int


QUICK: Final = Plan("quick", 12, 2, 1, 2, (20.0, 100.0), 200, 3)
FULL: Final = Plan("full", 60, 6, 4, 5, (20.0, 100.0), 2000, 15)


# -- trees and scripts -----------------------------------------------------------------------


def request(prompt: str) -> ModelRequest:
    """The request an llm agent of these trees makes for ``prompt`` (its defaults)."""
    return ModelRequest(model=MODEL, messages=({"role": "user", "content": prompt},))


def llm_leaf(name: str, prompt: str, inputs: Sequence[str], output: str) -> dict[str, Any]:
    return {
        "type": "llm",
        "name": name,
        "params": {"model": MODEL, "prompt": prompt, "inputs": list(inputs), "output": output},
    }


def write_tree(path: Path, root: Mapping[str, Any], blackboard: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"blackboard": dict(blackboard), "root": dict(root)}))
    return path


def step_prompt(index: int, topic: str) -> str:
    return f"Step {index}: {topic}"


def step_tree(folder: Path, agents: int) -> Path:
    """A Sequence of ``agents`` llm agents, each asking its own question."""
    leaves = [
        llm_leaf(f"a{i}", step_prompt(i, "{{ topic }}"), ["topic"], f"out_{i}")
        for i in range(agents)
    ]
    root = {"type": "Sequence", "name": "steps", "children": leaves}
    return write_tree(folder / "steps.yaml", root, {"topic": "refunds"})


@dataclass(frozen=True)
class Workflow:
    """The fan-out workflow: its file, topics, and each reply's latency by (stage, part)."""

    path: Path
    topics: Mapping[int, str]
    latency_s: Mapping[tuple[int, int], float]

    def critical_path_s(self, stages: Sequence[int] = tuple(range(1, STAGES + 1))) -> float:
        """What the stages take if only the model takes time: their slowest replies."""
        return sum(max(self.latency_s[stage, part] for part in range(WIDTH)) for stage in stages)

    def script(self, server: MessagesServer, topics: Mapping[int, str]) -> None:
        """Answer every agent's request for these topics, each after its latency."""
        for (stage, part), latency in self.latency_s.items():
            prompt = stage_prompt(stage, part, topics[stage], answer(stage - 1, part))
            server.script(request(prompt), reply(answer(stage, part), latency=latency))


def answer(stage: int, part: int) -> str:
    """What agent ``part`` of ``stage`` answers (stage 0: nothing before the first)."""
    return f"s{stage}a{part}"


def stage_prompt(stage: int, part: int, topic: str, before: str) -> str:
    """The prompt of agent ``part`` of ``stage``: its topic, and what the same part of the
    stage before answered (``before``; the first stage has none)."""
    text = f"Stage {stage}, part {part}: {topic}"
    return text if stage == 1 else f"{text} after {before}"


def fanout_workflow(folder: Path, latency_ms: tuple[float, float]) -> Workflow:
    """5 stages in a Sequence, each a Parallel of 10 llm agents reading their stage's topic and
    what the same part of the stage before wrote."""
    rng = random.Random(SEED)
    latency = {
        (stage, part): round(rng.uniform(*latency_ms) / 1000, 4)
        for stage in range(1, STAGES + 1)
        for part in range(WIDTH)
    }
    topics = {stage: f"topic {stage}" for stage in range(1, STAGES + 1)}
    workflow = Workflow(folder / "fanout.yaml", topics, latency)
    stages = []
    for stage in range(1, STAGES + 1):
        leaves = []
        for part in range(WIDTH):
            before = f"s{stage - 1}_a{part}"
            inputs = [f"topic_{stage}"] + ([before] if stage > 1 else [])
            template = stage_prompt(stage, part, f"{{{{ topic_{stage} }}}}", f"{{{{ {before} }}}}")
            leaves.append(llm_leaf(f"s{stage}_a{part}", template, inputs, f"s{stage}_a{part}"))
        stages.append({"type": "Parallel", "name": f"stage_{stage}", "children": leaves})
    root = {"type": "Sequence", "name": "fanout", "children": stages}
    write_tree(workflow.path, root, {f"topic_{stage}": t for stage, t in topics.items()})
    return workflow


# -- reading the log -------------------------------------------------------------------------


async def read_events(
    store: EventStore, execution_id: str, types: Sequence[str]
) -> list[RecordedEvent]:
    """The execution's events of these types, in log order."""
    wanted = EventFilter.of(TENANT, streams=[f"execution/{execution_id}"], types=types)
    head, after, found = await store.last_offset(), 0, []
    while after < head:
        page = await store.read(wanted, after=after, limit=_PAGE, until=head)
        found += page.events
        after = page.scanned_to
    return found


@dataclass(frozen=True)
class AgentStep:
    """One agent call as the log tells it."""

    node: str
    """The agent's name (the last part of its node id)."""
    started_us: int
    completed_us: int
    tick: int
    latency_ms: float
    served: bool

    @property
    def step_ms(self) -> float:
        return (self.completed_us - self.started_us) / 1000


async def agent_steps(store: EventStore, execution_id: str) -> list[AgentStep]:
    """Every completed call of the execution, its start and completion paired by call id."""
    events = await read_events(store, execution_id, ["AgentCallStarted", "AgentCallCompleted"])
    started = {e.payload["call_id"]: e for e in events if e.type == "AgentCallStarted"}
    return [
        AgentStep(
            node=str(e.payload["node_id"]).rsplit("/", 1)[-1],
            started_us=started[e.payload["call_id"]].time_us,
            completed_us=e.time_us,
            tick=int(e.payload["tick"]),
            latency_ms=float(e.payload["latency_ms"]),
            served="served_from" in e.payload,
        )
        for e in events
        if e.type == "AgentCallCompleted"
    ]


async def log_span_s(store: EventStore, execution_id: str) -> float:
    """Seconds from the execution's ``ExecutionStarted`` to its ``ExecutionEnded``."""
    ends = await read_events(store, execution_id, ["ExecutionStarted", "ExecutionEnded"])
    times: dict[str, int] = {event.type: event.time_us for event in ends}
    return (times["ExecutionEnded"] - times["ExecutionStarted"]) / 1e6


def spread(values: Sequence[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank) of samples, and how many."""
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "n": len(ordered),
    }


# -- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """An execution launched (or forked) and waited for to its end."""

    info: ExecutionInfo
    called_us: int
    """Wall clock (µs, the events' clock) when the launch or fork was called."""
    wall_s: float
    """From the call to ``wait_for_end`` returning (every event in the log)."""


async def launch(
    control: InProcessControl,
    path: Path,
    pace: Pace,
    blackboard: Mapping[str, Any] | None = None,
) -> Run:
    spec = LaunchSpec(
        str(path), mode=pace.mode, interval_ms=pace.interval_ms, blackboard=dict(blackboard or {})
    )
    called_us, started = time.time_ns() // 1000, time.perf_counter()
    info = await control.launch(spec)
    return await ended(control, info, called_us, started)


async def fork(
    control: InProcessControl, source: str, tick: int, blackboard: Mapping[str, Any]
) -> Run:
    called_us, started = time.time_ns() // 1000, time.perf_counter()
    info = await control.fork(source, tick=tick, blackboard=blackboard)
    return await ended(control, info, called_us, started)


async def ended(
    control: InProcessControl, info: ExecutionInfo, called_us: int, started: float
) -> Run:
    async with asyncio.timeout(120):
        info = await control.wait_for_end(info.id)
    wall = time.perf_counter() - started
    if info.end_reason != "completed":
        raise RuntimeError(f"execution {info.id} ended {info.end_reason}: {info.end_detail}")
    return Run(info, called_us, wall)


def bare_client(url: str) -> anthropic.AsyncAnthropic:
    """An SDK client as Canopy's model makes one (no retries of the SDK's own)."""
    return anthropic.AsyncAnthropic(api_key=API_KEY, base_url=url, max_retries=0)


async def stream_call(client: anthropic.AsyncAnthropic, each: ModelRequest) -> None:
    """Stream ``each`` to its final message, as the direct baseline calls."""
    async with client.messages.stream(**each.to_json()) as stream:
        await stream.get_final_message()


async def direct_calls(url: str, requests: Sequence[ModelRequest]) -> list[float]:
    """Milliseconds of each request streamed by a bare SDK client (one per round, as an
    execution opens one model)."""
    client = bare_client(url)
    found = []
    try:
        for each in requests:
            started = time.perf_counter()
            await stream_call(client, each)
            found.append((time.perf_counter() - started) * 1000)
    finally:
        await client.close()
    return found


async def model_calls(url: str, requests: Sequence[ModelRequest]) -> list[float]:
    """Milliseconds of each request through Canopy's AnthropicModel, outside any execution."""
    model = AnthropicModel(api_key=API_KEY, base_url=url)
    found = []
    try:
        for each in requests:
            started = time.perf_counter()
            await model.complete(each)
            found.append((time.perf_counter() - started) * 1000)
    finally:
        await model.close()
    return found


async def direct_fanout(url: str, workflow: Workflow) -> float:
    """Seconds the workflow's 50 calls take streamed by a bare SDK client, stage after stage,
    the 10 calls of a stage at once (``asyncio.gather``): the same work without Canopy."""
    client = bare_client(url)

    async def call(stage: int, part: int) -> None:
        prompt = stage_prompt(stage, part, workflow.topics[stage], answer(stage - 1, part))
        await stream_call(client, request(prompt))

    started = time.perf_counter()
    try:
        for stage in range(1, STAGES + 1):
            await asyncio.gather(*(call(stage, part) for part in range(WIDTH)))
    finally:
        await client.close()
    return time.perf_counter() - started


async def measure_steps(
    control: InProcessControl, server: MessagesServer, folder: Path, plan: Plan
) -> dict[str, Any]:
    """Measurement 1: agent steps per pace against direct and model-layer calls."""
    tree = step_tree(folder, plan.step_agents)
    requests = [request(step_prompt(i, "refunds")) for i in range(plan.step_agents)]
    for i, each in enumerate(requests):
        server.script(each, reply(f"answer {i}"))
    direct: list[float] = []
    layer: list[float] = []
    steps: dict[str, list[AgentStep]] = {pace.name: [] for pace in PACES}
    ticks: dict[str, list[int]] = {pace.name: [] for pace in PACES}
    events: dict[str, list[int]] = {pace.name: [] for pace in PACES}
    await launch(control, tree, PACES[1])  # warm-up: the SDK's imports, the first connection
    for _ in range(plan.step_rounds):
        for pace in PACES:  # direct and model-layer calls before and after every execution
            direct += await direct_calls(server.url, requests)
            layer += await model_calls(server.url, requests)
            head = await control.store.last_offset()
            run = await launch(control, tree, pace)
            written = await control.store.last_offset() - head  # one execution at a time
            found = await agent_steps(control.store, run.info.id)
            if len(found) != plan.step_agents:
                raise RuntimeError(f"{len(found)} of {plan.step_agents} agents completed")
            steps[pace.name] += found
            ticks[pace.name].append(run.info.tick)
            events[pace.name].append(written)
    direct += await direct_calls(server.url, requests)
    layer += await model_calls(server.url, requests)
    base = spread(direct)
    result: dict[str, Any] = {
        "agents": plan.step_agents,
        "rounds": plan.step_rounds,
        "direct_sdk_ms": base,
        "anthropic_model_ms": spread(layer),
        "paces": {},
    }
    for pace in PACES:
        found = steps[pace.name]
        step = spread([s.step_ms for s in found])
        result["paces"][pace.name] = {
            "step_ms": step,
            "added_ms": {q: round(step[q] - base[q], 3) for q in ("p50", "p95")},
            "call_latency_ms": spread([s.latency_ms for s in found]),
            "hand_off_ms": spread([s.step_ms - s.latency_ms for s in found]),
            "ticks_per_agent": round(statistics.median(ticks[pace.name]) / plan.step_agents, 1),
            "log_events_per_agent": round(
                statistics.median(events[pace.name]) / plan.step_agents, 1
            ),
        }
    return result


async def measure_fanout(
    control: InProcessControl, server: MessagesServer, workflow: Workflow, plan: Plan
) -> tuple[dict[str, Any], Run]:
    """Measurement 2: the fan-out workflow's wall time per pace against its critical path.
    Returns the last run at the fork's pace too, the fork's source."""
    critical = workflow.critical_path_s()
    result: dict[str, Any] = {
        "agents": STAGES * WIDTH,
        "stages": STAGES,
        "width": WIDTH,
        "runs": plan.workflow_runs,
        "latency_ms": list(plan.latency_ms),
        "critical_path_s": round(critical, 4),
        "paces": {},
    }
    source: Run | None = None
    direct: list[float] = []
    runs: dict[str, list[tuple[Run, float]]] = {pace.name: [] for pace in PACES}
    for pace in PACES:
        for _ in range(plan.workflow_runs):
            direct.append(await direct_fanout(server.url, workflow))
            run = await launch(control, workflow.path, pace)
            if len(await agent_steps(control.store, run.info.id)) != STAGES * WIDTH:
                raise RuntimeError(f"workflow {run.info.id}: not every agent completed")
            runs[pace.name].append((run, await log_span_s(control.store, run.info.id)))
            if pace is FORK_PACE:
                source = run
    baseline = statistics.median(direct)
    result["direct_sdk_s"] = round(baseline, 4)
    result["direct_sdk_ratio"] = round(baseline / critical, 3)
    for name, done in runs.items():
        wall = statistics.median(run.wall_s for run, _ in done)
        span = statistics.median(span for _, span in done)
        result["paces"][name] = {
            "wall_s": round(wall, 4),
            "ratio": round(wall / critical, 3),
            "over_direct_sdk": round(wall / baseline, 3),
            "log_span_s": round(span, 4),
            "log_span_ratio": round(span / critical, 3),
            "ticks": statistics.median(run.info.tick for run, _ in done),
        }
    assert source is not None
    return result, source


async def measure_fork(
    control: InProcessControl,
    server: MessagesServer,
    workflow: Workflow,
    source: Run,
    plan: Plan,
) -> dict[str, Any]:
    """Measurement 3: a fork at agent 40 with stage 5's topic edited, against a full re-run of
    the workflow with the same edit."""
    edited_topic = workflow.topics[STAGES] + " (edited)"
    edited = {**workflow.topics, STAGES: edited_topic}
    workflow.script(server, edited)
    edit = {f"topic_{STAGES}": edited_topic}
    steps = await agent_steps(control.store, source.info.id)
    tick = max(s.tick for s in steps if s.node.startswith(f"s{FORK_STAGE}_"))
    last_stage = f"s{STAGES}_"
    stage_prompts = {
        stage_prompt(STAGES, part, edited_topic, answer(STAGES - 1, part)) for part in range(WIDTH)
    }
    figures: dict[str, list[float]] = {
        f"{name}_{figure}": []
        for name in ("fork", "rerun")
        for figure in ("s", "setup_s", "to_edit_s", "in_log_to_edit_s")
    }
    unchanged_calls, live_calls, served, live = 0, 0, 0, 0
    for _ in range(plan.fork_runs):
        before = server.calls
        forked = await fork(control, source.info.id, tick, edit)
        asked = [body["messages"][0]["content"] for body in server.requests[before:]]
        unchanged_calls += sum(1 for prompt in asked if prompt not in stage_prompts)
        live_calls += len(asked)
        found = await agent_steps(control.store, forked.info.id)
        served += sum(1 for s in found if s.served)
        live += sum(1 for s in found if not s.served)
        rerun = await launch(control, workflow.path, FORK_PACE, edit)
        again = await agent_steps(control.store, rerun.info.id)
        for name, run, ran in (("fork", forked, found), ("rerun", rerun, again)):
            first_live = min(s.started_us for s in ran if s.node.startswith(last_stage))
            started = await read_events(control.store, run.info.id, ["ExecutionStarted"])
            figures[f"{name}_s"].append(run.wall_s)
            figures[f"{name}_setup_s"].append((started[0].time_us - run.called_us) / 1e6)
            figures[f"{name}_to_edit_s"].append((first_live - run.called_us) / 1e6)
            figures[f"{name}_in_log_to_edit_s"].append((first_live - started[0].time_us) / 1e6)
    medians = {name: statistics.median(values) for name, values in figures.items()}
    live_path = workflow.critical_path_s([STAGES])
    return {
        "pace": FORK_PACE.name,
        "runs": plan.fork_runs,
        "fork_tick": tick,
        "served_agents_per_fork": served / plan.fork_runs,
        "live_agents_per_fork": live / plan.fork_runs,
        "model_calls_per_fork": live_calls / plan.fork_runs,
        "model_calls_for_unchanged_leaves": unchanged_calls,
        **{name: round(value, 4) for name, value in medians.items()},
        "speedup": round(medians["rerun_s"] / medians["fork_s"], 2),
        "speedup_bound": round(workflow.critical_path_s() / live_path, 2),
        "speedup_to_edit": round(medians["rerun_to_edit_s"] / medians["fork_to_edit_s"], 1),
        "speedup_in_log_to_edit": round(
            medians["rerun_in_log_to_edit_s"] / medians["fork_in_log_to_edit_s"], 1
        ),
        "live_critical_path_s": round(live_path, 4),
        "fork_over_live_critical_path": round(medians["fork_s"] / live_path, 3),
    }


def anthropic_provider(url: str) -> contextlib.AbstractContextManager[None]:
    """Agents of executions started inside call the Messages API at ``url``."""
    return model_environment(
        {
            "CANOPY_LLM_PROVIDER": "anthropic",
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": API_KEY,
        }
    )


@contextmanager
def model_environment(chosen: Mapping[str, str]) -> Iterator[None]:
    """The model variables ``chosen`` set while inside."""
    saved = {name: os.environ.get(name) for name in chosen}
    os.environ.update(chosen)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def measure_agents(plan: Plan) -> dict[str, Any]:
    """Measurements 1 to 3, against one Messages server and one SQLite log."""
    with tempfile.TemporaryDirectory(prefix="canopy-agents-bench-") as name:
        folder = Path(name)
        workflow = fanout_workflow(folder, plan.latency_ms)
        async with (
            serve_messages() as server,
            open_store(f"sqlite:///{folder / 'events.db'}") as store,
        ):
            workflow.script(server, workflow.topics)
            control = InProcessControl(store, tenant_id=TENANT)
            try:
                with anthropic_provider(server.url):
                    began = time.perf_counter()
                    steps = await measure_steps(control, server, folder, plan)
                    steps["duration_s"] = round(time.perf_counter() - began, 1)
                    began = time.perf_counter()
                    fanout, source = await measure_fanout(control, server, workflow, plan)
                    fanout["duration_s"] = round(time.perf_counter() - began, 1)
                    began = time.perf_counter()
                    forked = await measure_fork(control, server, workflow, source, plan)
                    forked["duration_s"] = round(time.perf_counter() - began, 1)
            finally:
                await control.close()
    return {"steps": steps, "fanout": fanout, "fork": forked}


async def payload_bytes(store: EventStore, execution_id: str) -> dict[str, int]:
    """Bytes of the execution's event payloads as JSON: over all events, and agent events."""
    events = await read_events(store, execution_id, [])
    sizes = [(event.type, len(orjson.dumps(event.payload))) for event in events]
    return {
        "events": len(sizes),
        "bytes": sum(size for _, size in sizes),
        "agent_bytes": sum(size for kind, size in sizes if kind.startswith("Agent")),
    }


async def measure_capture() -> dict[str, Any]:
    """Measurement 5: the triage example under verbose and silent capture (offline model)."""
    began = time.perf_counter()
    result: dict[str, Any] = {"tree": str(TRIAGE.relative_to(REPO))}
    with (
        tempfile.TemporaryDirectory(prefix="canopy-capture-bench-") as name,
        model_environment({"CANOPY_LLM_PROVIDER": "offline"}),
    ):
        async with open_store(f"sqlite:///{Path(name) / 'events.db'}") as store:
            control = InProcessControl(store, tenant_id=TENANT)
            try:
                for level in (CaptureLevel.VERBOSE, CaptureLevel.SILENT):
                    spec = LaunchSpec(str(TRIAGE), mode=Mode.AUTO, capture=level)
                    info = await control.launch(spec)
                    async with asyncio.timeout(60):
                        info = await control.wait_for_end(info.id)
                    result[level.value] = {
                        "end_reason": info.end_reason,
                        **await payload_bytes(store, info.id),
                    }
            finally:
                await control.close()
    verbose, silent = result["verbose"], result["silent"]
    for figure in ("bytes", "agent_bytes"):
        saved = 100 * (1 - silent[figure] / verbose[figure])
        result[f"fewer_{figure}_percent"] = round(saved, 1)
    result["duration_s"] = round(time.perf_counter() - began, 1)
    return result


# -- targets and report ----------------------------------------------------------------------


def target(
    name: str, metric: str, op: str, threshold: float, measured: float, baseline: str
) -> dict[str, Any]:
    """A goal, graded from the measurement; ``baseline`` says what it was measured against."""
    passed = measured <= threshold if op == "<=" else measured >= threshold
    return {
        "name": name,
        "metric": metric,
        "op": op,
        "threshold": threshold,
        "measured": measured,
        "baseline": baseline,
        "pass": passed,
    }


def evaluate_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    steps, fanout, forked = results["steps"], results["fanout"], results["fork"]
    found = []
    for pace in PACES:
        found.append(
            target(
                f"agent step, added p50 ms ({pace.name})",
                f"steps.paces.{pace.name}.added_ms.p50",
                "<=",
                STEP_TARGET_MS,
                steps["paces"][pace.name]["added_ms"]["p50"],
                f"direct SDK call p50 {steps['direct_sdk_ms']['p50']} ms",
            )
        )
    for pace in PACES:
        found.append(
            target(
                f"50 agents, 10-way fan-out: wall / critical path ({pace.name})",
                f"fanout.paces.{pace.name}.ratio",
                "<=",
                FANOUT_TARGET,
                fanout["paces"][pace.name]["ratio"],
                f"critical path {fanout['critical_path_s']} s",
            )
        )
    found += [
        target(
            "fork at agent 40: model calls for unchanged leaves",
            "fork.model_calls_for_unchanged_leaves",
            "<=",
            0,
            forked["model_calls_for_unchanged_leaves"],
            f"{forked['served_agents_per_fork']:g} agents served per fork",
        ),
        target(
            "fork at agent 40: speedup to the edited stage",
            "fork.speedup_to_edit",
            ">=",
            FORK_SPEEDUP_TARGET,
            forked["speedup_to_edit"],
            f"full re-run reaches stage {STAGES} in {forked['rerun_to_edit_s']} s",
        ),
        target(
            "fork at agent 40: whole fork / its live critical path",
            "fork.fork_over_live_critical_path",
            "<=",
            FANOUT_TARGET,
            forked["fork_over_live_critical_path"],
            f"stage {STAGES} critical path {forked['live_critical_path_s']} s",
        ),
    ]
    capture = results["capture"]
    for figure, events in (("bytes", "all events"), ("agent_bytes", "agent events")):
        found.append(
            target(
                f"silent capture on the triage example: fewer bytes than verbose ({events}), %",
                f"capture.fewer_{figure}_percent",
                ">=",
                CAPTURE_SAVING_TARGET,
                capture[f"fewer_{figure}_percent"],
                f"verbose {capture['verbose'][figure]} bytes",
            )
        )
    spans = results["spans"]
    found.append(
        target(
            "span export: spans received / traced calls",
            "spans.spans_exported",
            ">=",
            spans["on"]["calls"],
            spans["spans_exported"],
            f"{spans['on']['calls']} traced calls",
        )
    )
    return found


def measure_spans(plan: Plan) -> dict[str, Any]:
    """Measurement 4: bench/tracing_overhead.py's figures (its collector in a subprocess)."""
    began = time.perf_counter()
    report = tracing_overhead.main(plan.span_calls, plan.span_rounds)
    report["duration_s"] = round(time.perf_counter() - began, 1)
    for variant in ("off", "on"):
        report[variant]["calls"] = plan.span_calls * plan.span_rounds
    return report


def print_summary(report: Mapping[str, Any]) -> None:
    steps, fanout, forked, spans = (report[k] for k in ("steps", "fanout", "fork", "spans"))
    table = Table(
        title=f"Workflow agents ({report['mode']} mode; other processes kept "
        f"{report['machine']['other_cores_busy']} cores busy): medians over rounds",
        title_justify="left",
    )
    for column in ("figure", "measured", "baseline (same run)"):
        table.add_column(column)
    direct, layer = steps["direct_sdk_ms"], steps["anthropic_model_ms"]
    table.add_row(
        "model call, AnthropicModel (no execution)",
        f"p50 {layer['p50']} ms, p95 {layer['p95']} ms",
        f"direct SDK: p50 {direct['p50']} ms, p95 {direct['p95']} ms",
    )
    for name, pace in steps["paces"].items():
        step, call, hand_off = pace["step_ms"], pace["call_latency_ms"], pace["hand_off_ms"]
        table.add_row(
            f"agent step ({name})",
            f"p50 {step['p50']} ms (+{pace['added_ms']['p50']}), "
            f"p95 {step['p95']} ms (+{pace['added_ms']['p95']})\n"
            f"call on the loop p50 {call['p50']} ms, hand-off p50 {hand_off['p50']} ms; "
            f"{pace['ticks_per_agent']:g} ticks, {pace['log_events_per_agent']:g} events/agent",
            f"direct SDK: p50 {direct['p50']} ms, p95 {direct['p95']} ms",
        )
    for name, pace in fanout["paces"].items():
        table.add_row(
            f"50 agents, 10-way fan-out ({name})",
            f"{pace['wall_s']} s = {pace['ratio']}x (in the log: {pace['log_span_ratio']}x); "
            f"{pace['over_direct_sdk']}x the direct SDK fan-out",
            f"critical path {fanout['critical_path_s']} s; direct SDK fan-out "
            f"{fanout['direct_sdk_s']} s = {fanout['direct_sdk_ratio']}x",
        )
    table.add_row(
        f"fork at agent 40 ({forked['pace']})",
        f"{forked['fork_s']} s, {forked['model_calls_per_fork']:g} model calls "
        f"({forked['model_calls_for_unchanged_leaves']} for unchanged leaves), "
        f"{forked['served_agents_per_fork']:g} served; started after {forked['fork_setup_s']} s, "
        f"stage {STAGES} after {forked['fork_to_edit_s']} s "
        f"({forked['fork_in_log_to_edit_s']} s after its start)",
        f"full re-run {forked['rerun_s']} s ({forked['speedup']}x, bound "
        f"{forked['speedup_bound']}x); started after {forked['rerun_setup_s']} s, stage "
        f"{STAGES} after {forked['rerun_to_edit_s']} s ({forked['speedup_to_edit']}x; "
        f"{forked['rerun_in_log_to_edit_s']} s after its start: "
        f"{forked['speedup_in_log_to_edit']}x)",
    )
    capture = report["capture"]
    verbose, silent = capture["verbose"], capture["silent"]
    table.add_row(
        f"silent capture, {capture['tree']}",
        f"{silent['bytes']} bytes ({capture['fewer_bytes_percent']}% fewer), agent events "
        f"{silent['agent_bytes']} ({capture['fewer_agent_bytes_percent']}% fewer)",
        f"verbose: {verbose['bytes']} bytes, agent events {verbose['agent_bytes']}",
    )
    for variant in ("off", "on"):
        figures = spans[variant]
        table.add_row(
            f"chat span per model call, tracing {variant}",
            f"+{figures['overhead_wall_us']} µs wall, +{figures['overhead_cpu_us']} µs CPU",
            f"bare offline model call {figures['bare_wall_us']} µs",
        )
    console.print(table)
    marks = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]"}
    for found in report["targets"]:
        console.print(
            f"{marks[found['pass']]} {found['name']}: {found['measured']} {found['op']} "
            f"{found['threshold']} ({found['baseline']})"
        )
    console.print(f"took {report['duration_s']} s")


def run(plan: Plan) -> dict[str, Any]:
    began, cpu, busy = time.perf_counter(), time.process_time(), machine_busy_seconds()
    load = os.getloadavg()[0]
    results = asyncio.run(measure_agents(plan))
    results["capture"] = asyncio.run(measure_capture())
    results["spans"] = measure_spans(plan)  # after: it installs a global tracer provider
    wall, own = time.perf_counter() - began, time.process_time() - cpu
    finished = machine_busy_seconds()
    others = None if busy is None or finished is None else (finished - busy - own) / wall
    targets = evaluate_targets(results)
    return {
        "benchmark": "agents",
        "mode": plan.mode,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "anthropic": anthropic.__version__,
            "load_average_before": round(load, 2),
            "other_cores_busy": None if others is None else round(max(0.0, others), 2),
        },
        **results,
        "targets": targets,
        "all_targets_pass": all(t["pass"] for t in targets),
        "duration_s": round(wall, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, < 30 s in all")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    report = run(QUICK if args.quick else FULL)
    print_summary(report)
    emit_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
