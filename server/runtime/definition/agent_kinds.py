"""The agent leaves a YAML/JSON tree file names as ``type: llm`` and ``type: python``.

Their params are checked when the tree is loaded, each problem at the node's line: unknown or
mistyped params, a template that does not compile (with its line), a ``schema`` that is not a
JSON Schema, a function or tool that cannot be imported (from the tree file's folder, like a
custom class). Building constructs :class:`~canopy.server.runtime.agents.LlmAgent` and
:class:`~canopy.server.runtime.agents.PythonAgent` with the resolved functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from py_trees.behaviour import Behaviour

from ..agent_config import Tool, llm_problems, python_problems
from .builtin_kinds import OPTIONAL, Param, check_params
from .class_kinds import import_object
from .kinds import ResolutionError, Role
from .model import NodeSpec

__all__ = ["AGENT_KINDS", "AgentKind", "agent_kind", "agent_params"]

_TIMEOUT = Param("timeout_s", "number", default=OPTIONAL)
_INPUTS = Param("inputs", "array", default=[])

_PARAMS: Final[Mapping[str, tuple[Param, ...]]] = {
    "llm": (
        Param("model", "string"),
        Param("prompt", "string"),
        Param("system", "string", default=OPTIONAL),
        _INPUTS,
        Param("output", "string", default=OPTIONAL),
        Param("schema", "object", default=OPTIONAL),
        Param("outputs", "array", default=[]),
        Param("max_tokens", "integer", default=1024, minimum=1),
        Param("temperature", "number", default=OPTIONAL, minimum=0),
        Param("stop_sequences", "array", default=[]),
        Param("tools", "any", default=[]),
        Param("max_tool_rounds", "integer", default=5, minimum=1),
        _TIMEOUT,
        Param("retries", "integer", default=3, minimum=0),
        Param("fixtures", "string", default=OPTIONAL),
    ),
    "python": (
        Param("function", "string"),
        _INPUTS,
        Param("outputs", "array", default=[]),
        _TIMEOUT,
    ),
}

AGENT_KINDS: Final = tuple(_PARAMS)
"""The agent kinds a tree file may use as ``type``."""

_TOOL_FIELDS: Final = {
    "function": str,
    "description": str,
    "input_schema": dict,
    "effects": bool,
    "name": str,
}
_TOOL_REQUIRED: Final = ("function", "description", "input_schema")


def agent_kind(name: str, folder: Path | None) -> AgentKind | None:
    """The agent kind called ``name`` (functions imported from ``folder``), or None."""
    params = _PARAMS.get(name)
    return AgentKind(name, params, folder) if params is not None else None


def agent_params(name: str) -> tuple[Param, ...]:
    """The params of an agent kind, for the schema and its tests."""
    return _PARAMS[name]


@dataclass(frozen=True)
class AgentKind:
    """``llm`` or ``python``: a leaf whose params name functions in the tree file's folder."""

    name: str
    params: tuple[Param, ...]
    folder: Path | None

    @property
    def role(self) -> Role:
        return Role.BEHAVIOUR

    def normalize(
        self, params: Mapping[str, Any], children: Sequence[NodeSpec]
    ) -> tuple[dict[str, Any], list[str]]:
        """The params with defaults filled in, and every problem with them."""
        result, errors = check_params(self.name, self.params, params)
        if errors:
            return result, errors
        try:
            arguments = self._arguments(result)
        except ResolutionError as error:
            return result, [f"{self.name}: {error}"]
        return result, [f"{self.name}: {problem}" for problem in _problems(self.name, arguments)]

    def construct(
        self, name: str, params: Mapping[str, Any], children: Sequence[Behaviour]
    ) -> Behaviour:
        """The agent behaviour, its functions imported."""
        # Imported here: the agents import the language models, whose offline fixture files
        # are read with this package's document reader, so this package loads first.
        from .. import agents

        arguments = self._arguments(params)
        if self.name == "llm":
            return agents.LlmAgent(name, **arguments)
        return agents.PythonAgent(name, **arguments)

    def _arguments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The constructor's keyword arguments: functions resolved, the fixture file made
        absolute; ResolutionError names what cannot be imported or is malformed."""
        arguments = dict(params)
        if "function" in arguments:
            arguments["function"] = self._function("function", arguments["function"])
        if "tools" in arguments:
            arguments["tools"] = [
                self._tool(index, entry) for index, entry in enumerate(arguments["tools"] or [])
            ]
        if "fixtures" in arguments and self.folder is not None:
            arguments["fixtures"] = self.folder / arguments["fixtures"]
        return arguments

    def _function(self, where: str, reference: str) -> Callable[..., Any]:
        try:
            found = import_object(reference, self.folder)
        except ResolutionError as error:
            raise ResolutionError(f"`{where}`: {error}") from None
        if not callable(found):
            raise ResolutionError(
                f"`{where}`: '{reference}' is a {type(found).__name__}, not a function"
            )
        return found

    def _tool(self, index: int, entry: Any) -> Tool:
        where = f"tools[{index}]"
        if not isinstance(entry, dict):
            raise ResolutionError(
                f"`{where}` must be a mapping with function, description and input_schema"
            )
        for key, value in entry.items():
            kind = _TOOL_FIELDS.get(key)
            if kind is None:
                raise ResolutionError(
                    f"`{where}`: unknown field `{key}`; it accepts: {', '.join(_TOOL_FIELDS)}"
                )
            if not isinstance(value, kind):
                raise ResolutionError(f"`{where}.{key}` must be a {kind.__name__}")
        missing = [key for key in _TOOL_REQUIRED if key not in entry]
        if missing:
            raise ResolutionError(f"`{where}`: missing `{missing[0]}`")
        return Tool(
            function=self._function(f"{where}.function", entry["function"]),
            description=entry["description"],
            input_schema=entry["input_schema"],
            effects=entry.get("effects", False),
            name=entry.get("name", ""),
        )


def _problems(kind: str, arguments: Mapping[str, Any]) -> list[str]:
    """What the agent's constructor would refuse, found without constructing it."""
    if kind == "python":
        return python_problems(
            inputs=arguments["inputs"],
            outputs=arguments["outputs"],
            timeout_s=arguments.get("timeout_s"),
        )
    return llm_problems(
        prompt=arguments["prompt"],
        system=arguments.get("system"),
        inputs=arguments["inputs"],
        output=arguments.get("output"),
        schema=arguments.get("schema"),
        outputs=arguments["outputs"],
        tools=arguments["tools"],
        max_tokens=arguments["max_tokens"],
        temperature=arguments.get("temperature"),
        max_tool_rounds=arguments["max_tool_rounds"],
        retries=arguments["retries"],
        timeout_s=arguments.get("timeout_s"),
    )
