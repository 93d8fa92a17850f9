"""Checks of an agent's settings, shared by the tree-file kinds (which report them as problems
at the node's line) and the agent classes a Python factory constructs (which raise them).

Blackboard keys are passed to templates, functions and result mappings by their *name*, the
last segment of the key (``/orders/current`` -> ``current``), so names must be Python
identifiers and distinct within one list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jsonschema

from canopy.bridge import InvalidArgument

from .agent_templates import AgentTemplate, TemplateError

__all__ = [
    "AgentConfigError",
    "Tool",
    "key_name",
    "key_problems",
    "llm_problems",
    "output_problems",
    "python_problems",
    "raise_problems",
    "schema_problems",
    "timeout_problems",
    "tool_problems",
]

_TOOL_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What the Messages API accepts as a tool name."""


def key_name(key: str) -> str:
    """The name a blackboard key goes by in templates, keyword arguments and result mappings:
    its last segment (``/orders/current`` -> ``current``)."""
    return key.rstrip("/").rpartition("/")[2]


@dataclass(frozen=True)
class Tool:
    """A Python function a language model may call: it gets the model's input as keyword
    arguments, and its return value (text, or anything JSON can hold) goes back to the model.
    ``effects`` marks a function that changes the world (never re-run on a fork unasked)."""

    function: Callable[..., Any]
    description: str
    input_schema: Mapping[str, Any]
    effects: bool = False
    name: str = ""

    @property
    def tool_name(self) -> str:
        """The name the model calls it by: ``name``, else the function's own."""
        return self.name or getattr(self.function, "__name__", "")


class AgentConfigError(InvalidArgument):
    """An agent was given settings it cannot run with; the message lists each."""


def raise_problems(owner: str, problems: Iterable[str]) -> None:
    """AgentConfigError naming ``owner`` and every problem, if there are any."""
    found = list(problems)
    if found:
        raise AgentConfigError(f"{owner}: {'; '.join(found)}")


def key_problems(param: str, keys: Sequence[str]) -> list[str]:
    """Why blackboard ``keys`` cannot be used by name."""
    problems = []
    seen: dict[str, str] = {}
    for key in keys:
        name = key_name(key)
        if not name.isidentifier():
            problems.append(
                f"`{param}`: key {key!r} must end in a Python identifier (its name in templates "
                "and function arguments)"
            )
        elif name in seen:
            problems.append(f"`{param}`: keys {seen[name]!r} and {key!r} have the same name")
        seen.setdefault(name, key)
    return problems


def schema_problems(param: str, schema: Mapping[str, Any]) -> list[str]:
    """Why ``schema`` is not a valid JSON Schema (draft 2020-12)."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "/".join(str(step) for step in error.absolute_path) or "(top)"
        return [f"`{param}` is not a valid JSON Schema at {where}: {error.message}"]
    return []


def output_problems(
    output: str | None, schema: Mapping[str, Any] | None, outputs: Sequence[str]
) -> list[str]:
    """Where a language-model agent's answer goes: ``output`` and/or ``schema``; ``outputs``
    only with a schema, each naming one of its properties when it declares them."""
    if output is None and schema is None:
        return ["give `output` (a key for the text) or `schema` (to parse it as JSON)"]
    if outputs and schema is None:
        return ["`outputs` needs a `schema`: they are properties of the JSON answer"]
    problems = key_problems("outputs", outputs)
    declared = schema.get("properties") if schema is not None else None
    if isinstance(declared, Mapping):
        problems += [
            f"`outputs`: {key_name(key)!r} is not a property of the schema "
            f"(it has: {', '.join(declared) or 'none'})"
            for key in outputs
            if key_name(key).isidentifier() and key_name(key) not in declared
        ]
    return problems


def tool_problems(tools: Sequence[Tool]) -> list[str]:
    """Why ``tools`` cannot be offered to a model: bad names, duplicates, bad input schemas."""
    problems = []
    names: set[str] = set()
    for index, tool in enumerate(tools):
        where = f"`tools[{index}]`"
        name = tool.tool_name
        if not _TOOL_NAME.match(name):
            problems.append(f"{where}: tool name {name!r} must be 1-64 letters, digits, _ or -")
        elif name in names:
            problems.append(f"{where}: two tools are named {name!r}")
        names.add(name)
        if tool.input_schema.get("type") != "object":
            problems.append(f"{where}: `input_schema` must be a JSON Schema of type object")
        else:
            problems += [
                f"{where}: {problem}"
                for problem in schema_problems("input_schema", tool.input_schema)
            ]
    return problems


def llm_problems(
    *,
    prompt: str,
    system: str | None,
    inputs: Sequence[str],
    output: str | None,
    schema: Mapping[str, Any] | None,
    outputs: Sequence[str],
    tools: Sequence[Tool],
    max_tokens: int,
    temperature: float | None,
    max_tool_rounds: int,
    retries: int,
    timeout_s: float | None,
) -> list[str]:
    """Everything wrong with a language-model agent's settings."""
    problems = [*key_problems("inputs", inputs), *output_problems(output, schema, outputs)]
    problems += schema_problems("schema", schema) if schema is not None else []
    problems += tool_problems(tools)
    for field_name, source in (("prompt", prompt), ("system", system)):
        if source is not None:
            try:
                AgentTemplate(field_name, source)
            except TemplateError as error:
                problems.append(str(error))
    if max_tokens < 1:
        problems.append(f"`max_tokens` must be at least 1, got {max_tokens}")
    if temperature is not None and not 0 <= temperature <= 1:
        problems.append(f"`temperature` must be between 0 and 1, got {temperature}")
    if max_tool_rounds < 1:
        problems.append(f"`max_tool_rounds` must be at least 1, got {max_tool_rounds}")
    if retries < 0:
        problems.append(f"`retries` must be at least 0, got {retries}")
    return problems + timeout_problems(timeout_s)


def python_problems(
    *, inputs: Sequence[str], outputs: Sequence[str], timeout_s: float | None
) -> list[str]:
    """Everything wrong with a Python agent's settings (its function aside)."""
    return [
        *key_problems("inputs", inputs),
        *key_problems("outputs", outputs),
        *timeout_problems(timeout_s),
    ]


def timeout_problems(timeout_s: float | None) -> list[str]:
    """Why ``timeout_s`` is not a deadline."""
    if timeout_s is not None and not timeout_s > 0:
        return [f"`timeout_s` must be more than 0 seconds, got {timeout_s}"]
    return []
