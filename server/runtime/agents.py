"""Workflow agents: tree leaves whose work is a call to a language model or a Python function.

An agent never blocks the tick. On its first tick it reads its inputs from the blackboard,
starts its call as a coroutine on the execution's event loop and returns RUNNING; later ticks
return RUNNING until the call is done, then write its outputs to the blackboard (from the tick
thread, so the writes are recorded like any other) and return SUCCESS, or FAILURE with the
reason. A Parallel of agents therefore runs their calls at the same time. When py_trees stops a
RUNNING agent (a higher-priority branch took over, the execution ends or its tree is
replaced), the call is cancelled.

Every call is in the log: ``AgentCallStarted`` (what was asked), ``AgentRetried`` and
``AgentToolCalled`` as they happen, then ``AgentCallCompleted``, ``AgentCallFailed`` or
``AgentCallCancelled``. Under silent capture their content is kept as digests
(:mod:`.agent_capture`).

What agents of one execution share — the loop, the recorder, the model — is an
:class:`AgentHost` the engine binds onto each agent after building the tree.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import statistics
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

from opentelemetry import trace
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import Span, StatusCode
from opentelemetry.trace import Status as SpanStatus
from py_trees.behaviour import Behaviour
from py_trees.common import Access, Status

from canopy.bridge import CanopyError

from ..llm import LanguageModel, ModelError, ModelRequest, ToolCall, configured_model
from ..llm.costs import CostTable
from ..llm.retry import RetryPolicy
from ..telemetry import TracedModel, agent_span, open_workflow_span, tracing_enabled
from .agent_calls import (
    AgentFailure,
    CallFailed,
    CallOutcome,
    CallSucceeded,
    EffectGate,
    call_function,
    converse,
    response_outputs,
    timed,
    tool_spec,
)
from .agent_capture import content_fields, fingerprint_of
from .agent_config import Tool, key_name, llm_problems, python_problems, raise_problems
from .agent_summary import CallState, fold
from .agent_templates import AgentTemplate, TemplateError
from .blackboard import absolute
from .recorded import RecordedCall, RecordedCalls, tool_key
from .values import jsonable

__all__ = [
    "FIXTURES_SUFFIX",
    "Agent",
    "AgentHost",
    "LlmAgent",
    "PythonAgent",
    "Tool",
]

log = logging.getLogger(__name__)

FIXTURES_SUFFIX: Final = ".fixtures.yaml"
"""A tree's offline answers are beside it: ``triage.yaml`` -> ``triage.fixtures.yaml``."""

Record = Callable[[str, dict[str, Any]], None]
Output = Callable[[str, str], None]

_SERVED_FIELDS: Final = (
    "model",
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "rounds",
    "text",
    "tool_calls",
    "outputs",
)
"""What an answer served from the log repeats of the recorded completion."""
_CONTENT: Final = ("text", "tool_calls", "outputs")
SLOW_SHARE_OF_TIMEOUT: Final = 0.8
"""A call past this share of its ``timeout_s`` is slow."""
SLOW_TIMES_MEDIAN: Final = 3.0
"""A call past this many times the agent's median latency is slow..."""
SLOW_MEDIAN_OF: Final = 3
"""...once the agent has completed at least this many calls in the execution."""


class AgentHost:
    """What the agents of one execution share: its event loop, its recorder and the models
    they call (each opened on first use, once per execution and fixture file)."""

    def __init__(
        self,
        *,
        execution_id: str,
        loop: asyncio.AbstractEventLoop,
        record: Record,
        tick: Callable[[], int],
        silent: bool,
        tree_path: str,
        environ: Mapping[str, str] | None = None,
        costs: CostTable | None = None,
        recorded: RecordedCalls | None = None,
        wake: Callable[[], None] = lambda: None,
        output: Output | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.loop = loop
        self.record = record
        self.output: Output = output or (lambda text, category: None)
        """Tells the execution's clients a line (text, category), as its debugger output."""
        self.tick = tick
        self.silent = silent
        self.tree_path = tree_path
        """The tree file (or factory module) whose folder relative paths start from."""
        self.environ = os.environ if environ is None else environ
        """Where the model is chosen (``CANOPY_LLM_PROVIDER`` and the provider's variables)."""
        self.costs = costs or CostTable()
        self.recorded = recorded
        """A fork's source answers (see :mod:`.recorded`), None for an ordinary execution."""
        self.wake = wake
        """Told (on the loop) each time a call finishes, so a tree waiting on it ticks."""
        self._models: dict[Path, LanguageModel] = {}
        self._in_flight: set[Agent] = set()  # touched by the tick thread only
        self._workflow: Span | None = None  # the execution's invoke_workflow span, once traced

    def answer(self, node_id: str, fingerprint: str) -> RecordedCall | None:
        """The source's recorded call a fork's agent may take instead of calling, if any."""
        return self.recorded.answer(node_id, fingerprint) if self.recorded is not None else None

    def effects_gate(self, node_id: str) -> EffectGate | None:
        """In a fork, what answers this node's effectful tool calls instead of running them
        (None: they run, as in any execution, or because the user named the node ``live``)."""
        recorded = self.recorded
        if recorded is None or node_id in recorded.live:
            return None

        def gate(call: ToolCall) -> RecordedCall:
            found = recorded.tool_result(node_id, call.name, call.input)
            if found is None:
                raise AgentFailure(
                    "EffectsRefused",
                    f"tool {call.name!r} has effects, and execution {recorded.source} never "
                    f"ran it with input {tool_key(call.input)}; a fork runs it only for a node "
                    "named live",
                )
            return found

        return gate

    def fixtures_for(self, given: Path | None) -> Path:
        """The fixture file of an agent: its own (relative to the tree's folder), else the
        tree's ``<stem>.fixtures.yaml``."""
        tree = Path(self.tree_path)
        if given is None:
            return tree.with_name(tree.stem + FIXTURES_SUFFIX)
        return given if given.is_absolute() else tree.parent / given

    def model(self, fixtures: Path) -> LanguageModel:
        """The model answering calls with ``fixtures`` (on the loop); a failure to open it is
        not remembered, so a fixture file added later is found by the next call."""
        model = self._models.get(fixtures)
        if model is None:
            model = configured_model(self.environ, fixtures)
            if tracing_enabled():
                model = TracedModel(model, costs=self.costs)
            self._models[fixtures] = model
        return model

    def start(self, agent: Agent, work: Coroutine[Any, Any, CallOutcome]) -> Future[CallOutcome]:
        """Run an agent's call on the loop."""
        self._in_flight.add(agent)
        if tracing_enabled():
            work = self._traced(agent, work)
        future = asyncio.run_coroutine_threadsafe(work, self.loop)
        future.add_done_callback(lambda _: self.wake())
        return future

    @property
    def in_flight(self) -> bool:
        """Whether any agent's call is running (read on the tick thread)."""
        return bool(self._in_flight)

    def next_slow(self) -> float | None:
        """The soonest moment a call in flight turns slow (read on the tick thread)."""
        moments = [at for agent in self._in_flight if (at := agent.slow_at()) is not None]
        return min(moments, default=None)

    async def _traced(self, agent: Agent, work: Coroutine[Any, Any, CallOutcome]) -> CallOutcome:
        """``work`` in an ``invoke_agent`` span, child of the execution's workflow span."""
        if self._workflow is None:
            self._workflow = open_workflow_span(Path(self.tree_path).stem)
        model = getattr(agent, "model", None)
        with (
            trace.use_span(self._workflow, end_on_exit=False),
            agent_span(agent.name, agent_id=agent.node_id, model=model) as span,
        ):
            outcome = await work
            if isinstance(outcome, CallFailed):
                span.set_status(SpanStatus(StatusCode.ERROR, outcome.error.error_type))
                span.set_attribute(ERROR_TYPE, outcome.error.error_type)
            return outcome

    def close(self) -> None:
        """The execution ended: cancel what is in flight, end the workflow's span, and close
        the models (on the loop, where their connections were opened)."""
        self.cancel_all("ended")
        if self._workflow is not None:
            self._workflow.end()
            self._workflow = None
        models, self._models = list(self._models.values()), {}
        if models and not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(_close_models(models), self.loop)

    def finished(self, agent: Agent) -> None:
        """An agent's call is over (done or cancelled)."""
        self._in_flight.discard(agent)

    def cancel_all(self, reason: str) -> None:
        """Cancel every call in flight (the execution ends, or its tree is replaced)."""
        for agent in list(self._in_flight):
            agent.cancel(reason)


async def _close_models(models: Sequence[LanguageModel]) -> None:
    """Close each model; one that fails to close is logged, and the others still close."""
    for model in models:
        try:
            await model.close()
        except Exception:
            log.exception("closing the %s model", model.provider)


@dataclass
class _Progress:
    """How far a call got, as it runs (written on the loop)."""

    call_id: str
    retries: int = 0


@dataclass(frozen=True)
class _Call:
    """An agent's call in flight."""

    id: str
    fingerprint: str
    future: Future[CallOutcome]
    started: float


@dataclass(frozen=True)
class _Prepared:
    """A call ready to start: what ``AgentCallStarted`` tells, and the work itself."""

    fields: dict[str, Any]
    content: dict[str, Any]
    work: Callable[[_Progress], Awaitable[CallSucceeded]]


@dataclass
class _Reporter:
    """Tells the log (and ``agent.partial``) what a call does while it runs, from the loop."""

    agent: Agent
    progress: _Progress
    partial: list[str] = field(default_factory=list)

    def text(self, piece: str) -> None:
        if self.agent.call_id == self.progress.call_id:
            self.partial.append(piece)
            self.agent.partial = "".join(self.partial)

    def retried(self, attempt: int, delay_s: float, error: ModelError) -> None:
        self.agent.tell(
            "AgentRetried",
            self.agent.event(
                self.progress.call_id,
                attempt=attempt,
                delay_s=round(delay_s, 3),
                reason=str(error),
                status=error.status,
            ),
        )

    def tool_called(
        self,
        round_: int,
        call: ToolCall,
        tool: Tool | None,
        output: Any,
        error: str | None,
        served: RecordedCall | None = None,
    ) -> None:
        content: dict[str, Any] = {"input": jsonable(dict(call.input))}
        if error is None:
            content["output"] = jsonable(output)
        payload = self.agent.event(
            self.progress.call_id,
            round=round_,
            tool=call.name,
            tool_use_id=call.id,
            effects=tool.effects if tool is not None else False,
        )
        if error is not None:
            payload["error"] = error
        if served is not None:
            payload["served_from"] = {
                "execution_id": served.execution_id,
                "offset": served.offset,
                "call_id": served.payload["call_id"],
            }
        self.agent.tell("AgentToolCalled", payload, content)


class Agent(Behaviour, ABC):
    """A leaf that runs one call per activation without blocking the tick.

    ``partial`` holds the text streamed so far by the call in flight (a debugger shows it);
    ``call_id`` names that call in the events. Subclasses say what a call is
    (:meth:`_prepare`). :meth:`summary` is the last call as a debugger shows it, folded from
    the events the agent records (:mod:`.agent_summary`).
    """

    agent_kind: ClassVar[str]

    def __init__(
        self,
        name: str,
        *,
        inputs: Sequence[str],
        outputs: Sequence[str],
        timeout_s: float | None,
    ) -> None:
        super().__init__(name)
        self.inputs = tuple(inputs)
        self.output_keys = tuple(outputs)
        self.timeout_s = timeout_s
        self.host: AgentHost | None = None
        self.partial = ""
        self.call_id: str | None = None
        self._call: _Call | None = None
        self._last: dict[str, Any] = {"kind": self.agent_kind, "state": CallState.IDLE}
        self._last_lock = threading.Lock()  # folded from the tick thread and from the loop
        self._latencies: list[float] = []  # of this execution's completed calls, in ms
        self._median_ms: float | None = None
        self._slow_call: str | None = None  # the call AgentSlow was told of
        self._untold: tuple[str, Mapping[str, Any] | None] | None = None
        """The last failed call's message and raising frame, until the engine tells it."""
        self._board = self.attach_blackboard_client(name=name)
        for key in self.inputs:
            self._board.register_key(key=key, access=Access.READ)
        for key in self.output_keys:
            self._board.register_key(key=key, access=Access.WRITE)

    def bind(self, host: AgentHost) -> None:
        """Join an execution: its loop runs this agent's calls, its recorder their events."""
        self.host = host
        with self._last_lock:
            self._last = {**self._last, **self._settings()}

    def _settings(self) -> dict[str, Any]:
        """What the summary shows of the agent itself (its model or function, its keys)."""
        return {}

    def summary(self) -> dict[str, Any]:
        """The last call as a debugger shows it: while in flight, the text streamed so far
        and the time taken so far."""
        with self._last_lock:
            summary = dict(self._last)
        call = self._call
        if summary["state"] == CallState.IN_FLIGHT and call is not None:
            summary["response"] = self.partial
            summary["latency_ms"] = round((time.perf_counter() - call.started) * 1000, 3)
        return summary

    def tell(
        self,
        event_type: str,
        payload: dict[str, Any],
        content: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one of this agent's events, its ``content`` kept or digested as the capture
        says, and fold it (content and all) into the summary."""
        host = self._host()
        content = content or {}
        with self._last_lock:
            self._last = fold(self._last, event_type, {**payload, **content})
        if host.silent and "fingerprint" in payload:  # a hash of the call: in the digest
            payload = dict(payload)
            content = {**content, "fingerprint": payload.pop("fingerprint")}
        host.record(event_type, {**payload, **content_fields(content, silent=host.silent)})

    def edited(self, key: str, old: Any, new: Any) -> None:
        """The client wrote ``key`` (absolute): when it is an output of this agent's answered
        call, record ``AgentOutputEdited`` (the answer downstream reads is not the model's)."""
        with self._last_lock:
            last = self._last
        if last["state"] != CallState.DONE or key not in {absolute(k) for k in self.output_keys}:
            return
        self.tell(
            "AgentOutputEdited",
            self.event(str(last.get("call_id")), key=key),
            {"old": jsonable(old), "new": jsonable(new)},
        )

    @property
    def node_id(self) -> str:
        """The stable id the tree gave this agent (its name before it is built)."""
        node_id = getattr(self, "canopy_id", None)
        return node_id if isinstance(node_id, str) else self.name

    def event(self, call_id: str, **fields: Any) -> dict[str, Any]:
        """A payload of one of this agent's events."""
        host = self._host()
        return {
            "execution_id": host.execution_id,
            "tick": host.tick(),
            "node_id": self.node_id,
            "call_id": call_id,
            **fields,
        }

    # -- py_trees ----------------------------------------------------------------------------

    def update(self) -> Status:
        call = self._call
        if call is None:
            return self._start()
        if not call.future.done():
            if self._slow_call != call.id:
                self._check_slow(call)
            return Status.RUNNING
        return self._finish(call)

    def slow_at(self) -> float | None:
        """When (``time.perf_counter``) the call in flight turns slow, if it has not been told
        so yet and anything is expected of it: the engine ticks then, to tell it."""
        call = self._call
        if call is None or self._slow_call == call.id:
            return None
        limits = []
        if self.timeout_s is not None:
            limits.append(self.timeout_s * SLOW_SHARE_OF_TIMEOUT)
        if self._median_ms is not None:
            limits.append(self._median_ms * SLOW_TIMES_MEDIAN / 1000)
        return call.started + min(limits) if limits else None

    def _check_slow(self, call: _Call) -> None:
        """Tell, once per call, that it runs past what was expected of it: 80% of its
        ``timeout_s``, or three times its median latency over at least 3 earlier calls."""
        elapsed_ms = (time.perf_counter() - call.started) * 1000
        expectations = []  # (limit in ms, basis, why)
        if self.timeout_s is not None:
            limit = self.timeout_s * 1000 * SLOW_SHARE_OF_TIMEOUT
            expectations.append((limit, "timeout", f"80% of its timeout of {self.timeout_s:g} s"))
        if self._median_ms is not None:
            expectations.append(
                (
                    self._median_ms * SLOW_TIMES_MEDIAN,
                    "median",
                    f"3 times its median latency of {self._median_ms:.0f} ms"
                    f" over {len(self._latencies)} calls",
                )
            )
        passed = [expectation for expectation in expectations if elapsed_ms > expectation[0]]
        if not passed:
            return
        expected_ms, basis, why = min(passed)
        self._slow_call = call.id
        self.tell(
            "AgentSlow",
            self.event(
                call.id,
                agent=self.agent_kind,
                elapsed_ms=round(elapsed_ms, 3),
                expected_ms=round(expected_ms, 3),
                basis=basis,
            ),
        )
        self._host().output(
            f"agent {self.name} ({self.node_id}) is slow: {elapsed_ms:.0f} ms and still"
            f" running, over {expected_ms:.0f} ms ({why})\n",
            "important",
        )

    def terminate(self, new_status: Status) -> None:
        """Pre-empted while RUNNING (INVALID): the call is cancelled."""
        if new_status is Status.INVALID and self._call is not None:
            self.cancel("preempted")

    def cancel(self, reason: str) -> None:
        """Cancel the call in flight, if any, and record why: ``preempted``, ``ended``,
        ``reloaded``."""
        call, self._call = self._call, None
        if call is None:
            return
        call.future.cancel()
        host = self._host()
        host.finished(self)
        self.call_id = None
        latency = round((time.perf_counter() - call.started) * 1000, 3)
        self.tell(
            "AgentCallCancelled",
            self.event(call.id, agent=self.agent_kind, reason=reason, latency_ms=latency),
        )

    # -- a call ------------------------------------------------------------------------------

    def _host(self) -> AgentHost:
        if self.host is None:
            raise RuntimeError(f"agent {self.name!r} runs only inside an execution")
        return self.host

    def _start(self) -> Status:
        host = self._host()
        call_id = uuid.uuid4().hex[:16]
        self.partial = ""
        try:
            prepared = self._prepare(self._read_inputs())
        except AgentFailure as failure:
            return self._failed(call_id, CallFailed(failure))
        self.tell(
            "AgentCallStarted",
            self.event(call_id, agent=self.agent_kind, **prepared.fields),
            prepared.content,
        )
        answer = host.answer(self.node_id, prepared.fields["fingerprint"])
        if answer is not None:
            return self._served(call_id, prepared.fields["fingerprint"], answer)
        progress = _Progress(call_id)
        self.call_id = call_id
        work = timed(lambda: prepared.work(progress), self.timeout_s, lambda: progress.retries)
        self._call = _Call(
            call_id, prepared.fields["fingerprint"], host.start(self, work), time.perf_counter()
        )
        self.feedback_message = "waiting for the call"
        return Status.RUNNING

    def _finish(self, call: _Call) -> Status:
        self._call = None
        self.call_id = None
        host = self._host()
        host.finished(self)
        outcome = call.future.result()
        if isinstance(outcome, CallFailed):
            return self._failed(call.id, outcome)
        fields, content = self._completed(call.id, outcome)
        self.tell("AgentCallCompleted", {**fields, "fingerprint": call.fingerprint}, content)
        self._latencies.append(outcome.latency_ms)
        if len(self._latencies) >= SLOW_MEDIAN_OF:
            self._median_ms = statistics.median(self._latencies)
        for key, value in outcome.outputs.items():
            self._board.set(key, value)
        self.feedback_message = ""
        return Status.SUCCESS

    def _served(self, call_id: str, fingerprint: str, answer: RecordedCall) -> Status:
        """Answer from the log: the recorded call's outputs, written where the fork did not
        edit, and its completion recorded again, saying where it was served from."""
        host = self._host()
        recorded = answer.payload
        outputs: Mapping[str, Any] = recorded["outputs"]
        payload = {
            **{name: recorded[name] for name in _SERVED_FIELDS if name in recorded},
            **self.event(call_id, agent=self.agent_kind, latency_ms=0.0, retries=0),
            "fingerprint": fingerprint,
            "served_from": {
                "execution_id": answer.execution_id,
                "offset": answer.offset,
                "call_id": recorded["call_id"],
            },
        }
        if "cost_usd" in payload:
            payload["cost_usd"] = 0.0  # nothing was spent on this answer
        if host.silent:
            payload = {k: v for k, v in payload.items() if k not in _CONTENT}
            content = {k: recorded[k] for k in _CONTENT if k in recorded}
        else:
            content = {}
        self.tell("AgentCallCompleted", payload, content)
        pinned = host.recorded.pinned if host.recorded is not None else frozenset()
        for key in self.output_keys:
            if absolute(key) in outputs and absolute(key) not in pinned:
                self._board.set(key, outputs[absolute(key)])
        self.feedback_message = "answered from the log"
        return Status.SUCCESS

    def _failed(self, call_id: str, outcome: CallFailed) -> Status:
        error = outcome.error
        host = self._host()
        told = error.without_content if host.silent and error.without_content else str(error)
        message = f"node '{self.node_id}': {told}"
        payload = self.event(
            call_id,
            agent=self.agent_kind,
            error_type=error.error_type,
            message=message,
            retries=outcome.retries,
            latency_ms=outcome.latency_ms,
        )
        if error.status is not None:
            payload["status"] = error.status
        self.tell("AgentCallFailed", payload)
        self.feedback_message = message
        self._untold = (told, error.frame)
        return Status.FAILURE

    def take_failure(self) -> tuple[str, Mapping[str, Any] | None] | None:
        """Why the call that just failed this node failed (its message, and where the user's
        code raised it), once: the engine tells it as the node turns FAILURE."""
        untold, self._untold = self._untold, None
        return untold

    def _completed(
        self, call_id: str, outcome: CallSucceeded
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``AgentCallCompleted``'s fields, and its content (kept or digested)."""
        outputs = {absolute(key): jsonable(value) for key, value in outcome.outputs.items()}
        fields = self.event(
            call_id,
            agent=self.agent_kind,
            latency_ms=outcome.latency_ms,
            retries=outcome.retries,
            **self._completed_fields(outcome),
        )
        return fields, {**self._completed_content(outcome), "outputs": outputs}

    def _completed_fields(self, outcome: CallSucceeded) -> dict[str, Any]:
        """What ``AgentCallCompleted`` tells beyond the common fields (never content)."""
        return {}

    def _completed_content(self, outcome: CallSucceeded) -> dict[str, Any]:
        """The content ``AgentCallCompleted`` keeps (or digests) beyond the outputs."""
        return {}

    def _read_inputs(self) -> dict[str, Any]:
        """Input name -> value, for the input keys that are on the blackboard."""
        values = {}
        for key in self.inputs:
            try:
                values[key_name(key)] = self._board.get(key)
            except KeyError:
                continue
        return values

    @abstractmethod
    def _prepare(self, values: Mapping[str, Any]) -> _Prepared:
        """The call for these input values; AgentFailure when it cannot be made."""


class LlmAgent(Agent):
    """Asks a language model: ``prompt`` and ``system`` are Jinja2 templates over the ``inputs``
    keys; the answer's text goes to ``output`` and/or, parsed as JSON and checked against
    ``schema``, its properties named in ``outputs`` go to those keys. The model may call
    ``tools`` for up to ``max_tool_rounds`` rounds; a retryable model error is retried up to
    ``retries`` times; ``timeout_s`` bounds the whole call. ``fixtures`` is the offline model's
    answer file (default: the tree file's ``<stem>.fixtures.yaml``)."""

    agent_kind = "llm"

    def __init__(
        self,
        name: str,
        *,
        model: str,
        prompt: str,
        system: str | None = None,
        inputs: Sequence[str] = (),
        output: str | None = None,
        schema: Mapping[str, Any] | None = None,
        outputs: Sequence[str] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
        stop_sequences: Sequence[str] = (),
        tools: Sequence[Tool] = (),
        max_tool_rounds: int = 5,
        timeout_s: float | None = None,
        retries: int = 3,
        fixtures: str | Path | None = None,
    ) -> None:
        problems = llm_problems(
            prompt=prompt,
            system=system,
            inputs=inputs,
            output=output,
            schema=schema,
            outputs=outputs,
            tools=tools,
            max_tokens=max_tokens,
            temperature=temperature,
            max_tool_rounds=max_tool_rounds,
            retries=retries,
            timeout_s=timeout_s,
        )
        raise_problems(f"llm agent {name!r}", problems)
        written = [output] if output else []
        super().__init__(name, inputs=inputs, outputs=[*written, *outputs], timeout_s=timeout_s)
        self.model = model
        self.prompt = AgentTemplate("prompt", prompt)
        self.system = AgentTemplate("system", system) if system is not None else None
        self.output = output
        self.schema = copy.deepcopy(dict(schema)) if schema is not None else None
        self.schema_outputs = tuple(outputs)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.stop_sequences = tuple(stop_sequences)
        self.tools = tuple(tools)
        self.max_tool_rounds = max_tool_rounds
        self.retry_policy = RetryPolicy(max_retries=retries)
        self.fixtures = Path(fixtures) if fixtures is not None else None

    def _prepare(self, values: Mapping[str, Any]) -> _Prepared:
        try:
            system = self.system.render(values) if self.system is not None else None
            prompt = self.prompt.render(values)
        except TemplateError as error:
            raise AgentFailure("TemplateError", str(error)) from None
        request = ModelRequest(
            model=self.model,
            messages=({"role": "user", "content": prompt},),
            system=system,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stop_sequences=self.stop_sequences,
            tools=tuple(tool_spec(tool) for tool in self.tools),
        )
        host = self._host()
        fixtures = host.fixtures_for(self.fixtures)

        async def work(progress: _Progress) -> CallSucceeded:
            try:
                model = host.model(fixtures)
            except ModelError:
                raise
            except CanopyError as error:  # an unknown provider, a provider without its key
                raise AgentFailure(type(error).__name__, str(error)) from None

            def count_retry() -> None:
                progress.retries += 1

            response, tally = await converse(
                model,
                request,
                tools=self.tools,
                policy=self.retry_policy,
                max_tool_rounds=self.max_tool_rounds,
                reporter=_Reporter(self, progress),
                costs=host.costs,
                count_retry=count_retry,
                effects=host.effects_gate(self.node_id),
            )
            outputs = response_outputs(
                response.text, output=self.output, schema=self.schema, outputs=self.schema_outputs
            )
            return CallSucceeded(
                outputs=outputs,
                text=response.text,
                model=response.model,
                stop_reason=response.stop_reason,
                tool_calls=tally.tool_calls,
                input_tokens=tally.input_tokens,
                output_tokens=tally.output_tokens,
                cost_usd=tally.cost,
                rounds=tally.rounds,
            )

        content: dict[str, Any] = {"prompt": prompt}
        if system is not None:
            content["system"] = system
        content["messages"] = [dict(message) for message in request.messages]
        content["inputs"] = {name: jsonable(value) for name, value in values.items()}
        return _Prepared(
            fields={"model": self.model, "fingerprint": request.fingerprint()},
            content=content,
            work=work,
        )

    def _settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"model": self.model}
        if self.output:
            settings["output"] = absolute(self.output)
        return settings

    def _completed_fields(self, outcome: CallSucceeded) -> dict[str, Any]:
        return {
            "model": outcome.model,
            "stop_reason": outcome.stop_reason,
            "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens,
            "cost_usd": outcome.cost_usd,
            "rounds": outcome.rounds,
        }

    def _completed_content(self, outcome: CallSucceeded) -> dict[str, Any]:
        return {"text": outcome.text, "tool_calls": outcome.tool_calls}


class PythonAgent(Agent):
    """Calls a Python function (sync, in a worker thread; or async, on the loop) with the
    ``inputs`` keys as keyword arguments (by name); its result goes to the one ``outputs`` key,
    or, for several, is a mapping with exactly their names. ``timeout_s`` bounds the call (a
    sync function that overruns is abandoned, not stopped: a thread cannot be killed)."""

    agent_kind = "python"

    def __init__(
        self,
        name: str,
        *,
        function: Callable[..., Any],
        inputs: Sequence[str] = (),
        outputs: Sequence[str] = (),
        timeout_s: float | None = None,
    ) -> None:
        problems = python_problems(inputs=inputs, outputs=outputs, timeout_s=timeout_s)
        raise_problems(f"python agent {name!r}", problems)
        super().__init__(name, inputs=inputs, outputs=outputs, timeout_s=timeout_s)
        self.function = function
        self.reference = function_reference(function)

    def _settings(self) -> dict[str, Any]:
        return {"function": self.reference}

    def _prepare(self, values: Mapping[str, Any]) -> _Prepared:
        missing = [key for key in self.inputs if key_name(key) not in values]
        if missing:
            raise AgentFailure("MissingInput", f"input {missing[0]!r} is not on the blackboard")
        # The function runs beside the tree: it gets its own copies of the values.
        kwargs = {name: _copy(value) for name, value in values.items()}

        async def work(progress: _Progress) -> CallSucceeded:
            return await call_function(self.function, kwargs, self.output_keys)

        return _Prepared(
            fields={
                "function": self.reference,
                "fingerprint": fingerprint_of({"function": self.reference, "inputs": values}),
            },
            content={"inputs": {name: jsonable(value) for name, value in values.items()}},
            work=work,
        )


def function_reference(function: Callable[..., Any]) -> str:
    """``module:qualified.name`` of a function, as events name it."""
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}:{name}"


def _copy(value: Any) -> Any:
    """A deep copy, or the value itself when it cannot be copied (a lock, a connection)."""
    try:
        return copy.deepcopy(value)
    except Exception:
        return value
