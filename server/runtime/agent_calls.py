"""The calls agents make, as coroutines on the execution's event loop: a conversation with a
language model (with its tool loop), or a user's Python function.

A call never raises for what goes wrong in it: a model error, a tool that raises, a function
that calls ``sys.exit()``, a response that breaks its schema all become an
:class:`AgentFailure` that the agent turns into FAILURE. Only cancellation unwinds it. A
``SystemExit`` must be caught here, inside the coroutine: escaping a task, it would stop the
event loop itself.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

import jsonschema
import orjson
from jsonschema.exceptions import best_match

from canopy.bridge import CanopyError

from ..llm import LanguageModel, ModelError, ModelRequest, ModelResponse, ToolCall, ToolSpec
from ..llm.costs import CostTable
from ..llm.offline import MissingFixture
from ..llm.retry import RetryPolicy, complete_with_retries
from ..telemetry import record_tool_result, tool_span
from .agent_config import Tool, key_name
from .failures import user_frame
from .recorded import RecordedCall
from .user_faults import RUNTIME_CONTROL_FLOW
from .values import jsonable

__all__ = [
    "AgentFailure",
    "CallFailed",
    "CallOutcome",
    "CallReporter",
    "CallSucceeded",
    "call_function",
    "converse",
    "exception_type",
    "invoke",
    "timed",
    "tool_spec",
]


def exception_type(exc: BaseException) -> str:
    """An exception's class as events name it: ``builtins.KeyError``."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


class AgentFailure(CanopyError):
    """Why an agent's call failed; ``error_type`` is the exception's qualified class or the
    agent's own word for it (``SchemaViolation``, ``Timeout``...)."""

    fields: ClassVar[Mapping[str, str]] = {
        "error_type": "error_type",
        "message": "failure",  # ``message`` is the error's text on the wire
        "status": "model_status",  # ``status`` is the HTTP status of a problem document
        "without_content": "without_content",
    }

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        status: int | None = None,
        without_content: str | None = None,
        frame: Mapping[str, Any] | None = None,
    ) -> None:
        self.error_type = error_type
        self.message = message
        self.status = status
        self.without_content = without_content
        """The message without the content it quotes (a prompt), for silent capture."""
        self.frame = frame
        """Where the user's code raised it (a function's or tool's exception), for the report
        told as it happens (:func:`~.failures.user_frame`); not sent anywhere."""
        super().__init__(message)


def tool_spec(tool: Tool) -> ToolSpec:
    """The tool as a model request offers it."""
    return ToolSpec(tool.tool_name, tool.description, tool.input_schema)


class CallReporter(Protocol):
    """What a call tells its agent while it runs (on the event loop)."""

    def text(self, piece: str) -> None:
        """A piece of streamed model text."""

    def retried(self, attempt: int, delay_s: float, error: ModelError) -> None:
        """A model call failed for now and will be tried again after ``delay_s``."""

    def tool_called(
        self,
        round_: int,
        call: ToolCall,
        tool: Tool | None,
        output: Any,
        error: str | None,
        served: RecordedCall | None = None,
    ) -> None:
        """A tool ran (``output``) or failed (``error``), or its recorded result was
        ``served`` from the log instead of running it."""


EffectGate = Callable[[ToolCall], RecordedCall]
"""In a fork: the source's recorded run of an effectful tool call (AgentFailure when it has
none), so that the tool's effect never happens twice."""


@dataclass
class CallSucceeded:
    """What a finished call produced."""

    outputs: dict[str, Any]
    """Blackboard key -> value to write."""
    latency_ms: float = 0.0
    text: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    retries: int = 0
    rounds: int = 0


@dataclass
class CallFailed:
    """A call that failed, and how far it got."""

    error: AgentFailure
    latency_ms: float = 0.0
    retries: int = 0


CallOutcome = CallSucceeded | CallFailed


async def timed(
    work: Callable[[], Any], timeout_s: float | None, retries: Callable[[], int]
) -> CallOutcome:
    """Run ``work()`` (a coroutine function giving a CallSucceeded) within ``timeout_s``; every
    failure becomes a CallFailed. ``retries()`` tells how many retries were spent so far."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            outcome: CallSucceeded = await work()
    except RUNTIME_CONTROL_FLOW:
        raise
    except BaseException as exc:  # sys.exit() in a function too: see user_faults
        if isinstance(exc, TimeoutError) and deadline.expired():
            error = AgentFailure("Timeout", f"no answer within {timeout_s:g} s (timeout_s)")
            return CallFailed(error, elapsed(), retries())
        return CallFailed(_failure(exc), elapsed(), retries())
    outcome.latency_ms = elapsed()
    outcome.retries = retries()
    return outcome


def _failure(exc: BaseException) -> AgentFailure:
    """What ended a call, as an AgentFailure."""
    if isinstance(exc, AgentFailure):
        return exc
    if isinstance(exc, MissingFixture):
        bare = f"the offline model has no response in {exc.fixtures} for {exc.fingerprint}"
        return AgentFailure(type(exc).__name__, str(exc), without_content=bare)
    if isinstance(exc, ModelError):
        return AgentFailure(type(exc).__name__, str(exc), status=exc.status)
    return AgentFailure(
        exception_type(exc),
        f"{type(exc).__name__}: {exc}",
        frame=user_frame(exc.__traceback__),
    )


async def invoke(function: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call a user's function: a coroutine function on the loop, any other in a worker thread
    (so that it blocks neither the tick nor the loop)."""
    if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an object with an async __call__
    ):
        return await function(**kwargs)
    return await asyncio.to_thread(function, **kwargs)


async def call_function(
    function: Callable[..., Any], kwargs: Mapping[str, Any], outputs: Sequence[str]
) -> CallSucceeded:
    """A Python agent's call: the function's result mapped onto its output keys."""
    result = await invoke(function, kwargs)
    return CallSucceeded(outputs=_map_outputs(result, outputs))


def _map_outputs(result: Any, outputs: Sequence[str]) -> dict[str, Any]:
    """One output takes the result itself; several take the entries of a mapping with exactly
    their names."""
    if not outputs:
        return {}
    if len(outputs) == 1:
        return {outputs[0]: result}
    names = {key_name(key): key for key in outputs}
    if not isinstance(result, Mapping):
        raise AgentFailure(
            "InvalidOutputs",
            f"the function returned {type(result).__name__}, expected a mapping with the "
            f"keys {', '.join(names)}",
        )
    missing = [name for name in names if name not in result]
    extra = [str(name) for name in result if name not in names]
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        raise AgentFailure(
            "InvalidOutputs", f"the function's result does not match outputs: {'; '.join(parts)}"
        )
    return {key: result[name] for name, key in names.items()}


@dataclass
class _Tally:
    """Tokens, cost and rounds over the responses of one conversation."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0
    rounds: int = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, response: ModelResponse, costs: CostTable) -> None:
        self.rounds += 1
        self.input_tokens += response.usage.input_tokens
        self.output_tokens += response.usage.output_tokens
        cost = costs.cost(response.model, response.usage)
        self.cost = None if cost is None or self.cost is None else self.cost + cost


async def converse(
    model: LanguageModel,
    request: ModelRequest,
    *,
    tools: Sequence[Tool],
    policy: RetryPolicy,
    max_tool_rounds: int,
    reporter: CallReporter,
    costs: CostTable,
    count_retry: Callable[[], None],
    effects: EffectGate | None = None,
) -> tuple[ModelResponse, _Tally]:
    """Ask the model, run the tools it asks for and answer it with their results, until it
    answers without asking for tools; AgentFailure after ``max_tool_rounds`` rounds of tools."""
    by_name = {tool.tool_name: tool for tool in tools}
    tally = _Tally()
    messages = list(request.messages)

    def on_retry(attempt: int, delay_s: float, error: ModelError) -> None:
        count_retry()
        reporter.retried(attempt, delay_s, error)

    while True:
        current = replace(request, messages=tuple(messages))
        response = await complete_with_retries(
            model, current, policy, on_text=reporter.text, on_retry=on_retry
        )
        tally.add(response, costs)
        if not response.tool_calls:
            return response, tally
        if tally.rounds > max_tool_rounds:
            raise AgentFailure(
                "ToolRoundsExceeded",
                f"the model still asked for tools after {max_tool_rounds} rounds (max_tool_rounds)",
            )
        messages.append({"role": "assistant", "content": [dict(b) for b in response.content]})
        results = []
        for call in response.tool_calls:
            tally.tool_calls.append({"id": call.id, "name": call.name, "input": dict(call.input)})
            results.append(await _run_tool(call, by_name, tally.rounds, reporter, effects))
        messages.append({"role": "user", "content": results})


async def _run_tool(
    call: ToolCall,
    tools: Mapping[str, Tool],
    round_: int,
    reporter: CallReporter,
    effects: EffectGate | None,
) -> dict[str, Any]:
    """The ``tool_result`` block answering ``call``; AgentFailure when the tool is unknown, its
    input breaks its schema, or it raises. A tool with effects under an ``effects`` gate (a
    fork) is answered by the gate, never run."""
    tool = tools.get(call.name)
    if tool is None:
        error = f"the model called tool {call.name!r}, which the agent does not offer"
        reporter.tool_called(round_, call, None, None, error)
        offered = ", ".join(tools) or "none"
        raise AgentFailure("UnknownTool", f"{error} (it offers: {offered})")
    validator = jsonschema.Draft202012Validator(tool.input_schema)
    violation = best_match(validator.iter_errors(call.input))
    if violation is not None:
        where = "/".join(str(step) for step in violation.absolute_path) or "(the input)"
        error = f"input violates its schema at {where}: {violation.message}"
        reporter.tool_called(round_, call, tool, None, error)
        raise AgentFailure("InvalidToolInput", f"tool {call.name!r}: {error}")
    if tool.effects and effects is not None:
        served = effects(call)
        output = served.payload["output"]
        reporter.tool_called(round_, call, tool, output, None, served)
        return _tool_result(call, output)
    with tool_span(call.name, call_id=call.id, arguments=call.input) as span:
        try:
            output = await invoke(tool.function, dict(call.input))
        except RUNTIME_CONTROL_FLOW:
            raise
        except BaseException as exc:  # sys.exit() in a tool too: see user_faults
            error = f"{type(exc).__name__}: {exc}"
            reporter.tool_called(round_, call, tool, None, error)
            raise AgentFailure(
                exception_type(exc),
                f"tool {call.name!r} raised {error}",
                frame=user_frame(exc.__traceback__),
            ) from None
        record_tool_result(span, output)
    reporter.tool_called(round_, call, tool, output, None)
    return _tool_result(call, output)


def _tool_result(call: ToolCall, output: Any) -> dict[str, Any]:
    """The block that gives the model a tool's output: text as is, anything else as JSON."""
    content = output if isinstance(output, str) else orjson.dumps(jsonable(output)).decode()
    return {"type": "tool_result", "tool_use_id": call.id, "content": content}


def response_outputs(
    text: str,
    *,
    output: str | None,
    schema: Mapping[str, Any] | None,
    outputs: Sequence[str],
) -> dict[str, Any]:
    """What a model's answer writes: the text to ``output``; with a ``schema``, the answer
    parsed as JSON, checked against it, and its properties named by ``outputs`` to their keys.
    AgentFailure says what is not JSON or which property breaks the schema, and why."""
    written: dict[str, Any] = {output: text} if output else {}
    if schema is None:
        return written
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise AgentFailure("InvalidResponse", f"the response is not JSON: {error}") from None
    violation = best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if violation is not None:
        where = "/".join(str(step) for step in violation.absolute_path)
        place = f"property {where!r}" if where else "the response"
        raise AgentFailure("SchemaViolation", f"{place} violates the schema: {violation.message}")
    for key in outputs:
        name = key_name(key)
        if not isinstance(data, Mapping) or name not in data:
            raise AgentFailure("SchemaViolation", f"the response has no property {name!r}")
        written[key] = data[name]
    return written
