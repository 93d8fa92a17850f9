"""DAP variables: the references a client expands, and how values read in the editor.

A reference lives for one stop; the session drops an execution's references when its tree moves.
The blackboard is shown as a tree of namespaces (``/robot/pose/x`` under ``robot`` > ``pose``);
large lists and mappings are paged with ``start``/``count``. At an agent node the Agent scope
shows its last call; its ``response`` and ``outputs`` are edited as the blackboard keys the call
wrote (edit and continue: what runs next reads the edited answer).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from canopy.server.runtime.control import InvalidRequest

__all__ = ["AGENT_SHOWN", "Variables", "exception_trace", "format_value"]

AGENT_SHOWN: Final = (
    "kind",
    "model",
    "function",
    "state",
    "prompt",
    "response",
    "tool_calls",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "retries",
    "error",
    "served_from",
    "outputs",
    "edited",
    "slow",
    "digests",
)
"""The Agent scope's variables, in this order (those the last call has)."""
_ANSWERED: Final = "done"
"""The ``state`` of a call that has answered: only then is there an answer to edit."""

_REPR: Final = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 8
_REPR.maxstring = _REPR.maxother = 120


def format_value(value: Any) -> str:
    """A short, Python-like rendering for the Variables view and hovers."""
    return _REPR.repr(value)


def exception_trace(raised: Mapping[str, Any]) -> str:
    """A ``BehaviourRaised`` traceback as an exception widget shows it: the user's own frames
    first, innermost at the top (where a user looks first, as in the Call Stack), then how
    many frames of Canopy, py_trees and libraries that leaves out, and the whole traceback as
    Python prints it (most recent call last) for when the fault is not in the user's code."""
    whole = [_trace_line(frame) for frame in raised["traceback"]]
    users = raised.get("user_frames")
    if not users:  # no code of the user's on it (or recorded before user frames were)
        return "\n".join(whole)
    lines = [_trace_line(frame) for frame in users]
    hidden = len(whole) - len(users)
    if hidden > 0:
        lines.append(
            f"  … {hidden} frame{'s' if hidden > 1 else ''} of Canopy, py_trees and libraries"
            " hidden; the whole traceback, most recent call last:"
        )
        lines += whole
    return "\n".join(lines)


def _trace_line(frame: Mapping[str, Any]) -> str:
    where = f'  File "{frame["path"]}", line {frame["line"]}, in {frame["function"]}'
    return f"{where}\n    {frame.get('code', '')}"


@dataclass(slots=True)
class _Item:
    """What a reference expands to."""

    execution_id: str
    kind: str  # "mapping" (read-only), "locals", "namespace" (blackboard prefix), "value",
    # "agent" (an agent's last call) or "outputs" (the keys an answered call wrote)
    value: Any = None
    prefix: str = "/"
    key: str | None = None  # the blackboard key a value belongs to
    blackboard: Mapping[str, Any] = field(default_factory=dict)


class Variables:
    """Variable references of the current stops."""

    def __init__(self) -> None:
        self._next = 1
        self._items: dict[int, _Item] = {}

    def new_id(self) -> int:
        """A fresh id (frames and variables share the counter, so ids never collide)."""
        number = self._next
        self._next += 1
        return number

    def forget(self, execution_id: str) -> None:
        """Drop the references of one execution (its tree moved)."""
        self._items = {k: v for k, v in self._items.items() if v.execution_id != execution_id}

    def written(self, execution_id: str, key: str, value: Any) -> None:
        """A blackboard value was set while stopped: references already handed out read the
        new value (a client may expand them again without asking for scopes)."""
        seen: set[int] = set()
        for item in self._items.values():
            if item.execution_id != execution_id or item.kind != "namespace":
                continue
            if id(item.blackboard) not in seen and isinstance(item.blackboard, dict):
                seen.add(id(item.blackboard))
                item.blackboard[key] = value

    def execution_of(self, reference: int) -> str:
        """The execution a reference belongs to."""
        return self._item(reference).execution_id

    def scope(
        self,
        name: str,
        execution_id: str,
        values: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A read-only scope listing ``values`` (plus a ``params`` group when given)."""
        shown = dict(values)
        if params:
            shown["params"] = dict(params)
        reference = self._add(_Item(execution_id, "mapping", shown))
        return {
            "name": name,
            "variablesReference": reference,
            "namedVariables": len(shown),
            "expensive": False,
        }

    def locals_scope(self, execution_id: str, recorded: list[dict[str, Any]]) -> dict[str, Any]:
        """The recorded locals of a frame of the user's code (read-only: they are the past)."""
        reference = self._add(_Item(execution_id, "locals", recorded))
        return {
            "name": "Locals",
            "variablesReference": reference,
            "namedVariables": len(recorded),
            "expensive": False,
            "presentationHint": "locals",
        }

    def blackboard_scope(self, execution_id: str, blackboard: Mapping[str, Any]) -> dict[str, Any]:
        """The blackboard as a tree of namespaces; its values can be edited and watched."""
        reference = self._add(_Item(execution_id, "namespace", blackboard=blackboard))
        return {
            "name": "Blackboard",
            "variablesReference": reference,
            "namedVariables": len(_names(blackboard, "/")),
            "expensive": False,
            "presentationHint": "locals",
        }

    def agent_scope(self, execution_id: str, summary: Mapping[str, Any]) -> dict[str, Any]:
        """An agent's last call; ``response`` (its text output key) and each of ``outputs``
        can be edited once the call has answered."""
        shown = {name: summary[name] for name in AGENT_SHOWN if name in summary}
        answered = summary.get("state") == _ANSWERED
        output = summary.get("output") if answered else None
        reference = self._add(_Item(execution_id, "agent", shown, key=output))
        return {
            "name": "Agent",
            "variablesReference": reference,
            "namedVariables": len(shown),
            "expensive": False,
        }

    def refusal(self, reference: int, name: str) -> str:
        """Why the variable ``name`` under ``reference`` cannot be edited."""
        item = self._item(reference)
        if item.kind == "agent" and name in ("response", "outputs"):
            state = item.value.get("state")
            if state != _ANSWERED:
                return f"the agent's call is {state}: there is no answer to edit yet"
            return "this agent writes no text output (no 'output' param): edit a key under outputs"
        if item.kind == "agent":
            return f"{name} tells of the agent's call: only response and outputs can be edited"
        return f"{name} is not a blackboard value: only those can be edited"

    def value(self, execution_id: str, value: Any, key: str | None) -> int:
        """A reference for an expandable value (0 for a plain one)."""
        if isinstance(value, Mapping | list | tuple) and value:
            return self._add(_Item(execution_id, "value", value, key=key))
        return 0

    def children(self, reference: int, start: int = 0, count: int = 0) -> list[dict[str, Any]]:
        """The variables under a reference, paged."""
        item = self._item(reference)
        if item.kind == "namespace":
            entries = self._namespace_children(item)
        elif item.kind == "locals":
            entries = [self._local(item, local) for local in item.value]
        elif item.kind == "agent":
            entries = [self._agent_variable(item, str(k), v) for k, v in item.value.items()]
        elif item.kind == "outputs":  # by absolute key, each edited as that key
            entries = [self._variable(item, str(k), v, str(k)) for k, v in item.value.items()]
        elif isinstance(item.value, Mapping):
            entries = [self._variable(item, str(k), v, None) for k, v in item.value.items()]
        else:
            entries = [self._variable(item, f"[{i}]", v, None) for i, v in enumerate(item.value)]
        end = start + count if count else None
        return entries[start:end]

    def key_of(self, reference: int | None, name: str) -> str | None:
        """The blackboard key a variable stands for, or the name the user typed (``battery.level``
        or ``/battery/level``: the runtime reads both)."""
        if not reference:
            return name.strip() or None
        item = self._items.get(reference)
        if item is None:
            return None
        if item.kind == "namespace":
            return item.prefix + name.rstrip("/")
        if item.kind == "agent":
            return item.key if name == "response" else None
        if item.kind == "outputs":
            return name
        return item.key if item.kind == "value" else None

    def _namespace_children(self, item: _Item) -> list[dict[str, Any]]:
        found = []
        for name, is_value, is_namespace in _names(item.blackboard, item.prefix):
            key = item.prefix + name
            if is_value:
                found.append(self._variable(item, name, item.blackboard[key], key))
            if is_namespace:
                nested = _Item(
                    item.execution_id, "namespace", prefix=key + "/", blackboard=item.blackboard
                )
                found.append(
                    {
                        "name": name + "/" if is_value else name,
                        "value": "{…}",
                        "variablesReference": self._add(nested),
                        "evaluateName": key.strip("/").replace("/", "."),
                    }
                )
        return found

    def _variable(self, item: _Item, name: str, value: Any, key: str | None) -> dict[str, Any]:
        owner = key or (item.key if item.kind == "value" else None)
        variable: dict[str, Any] = {
            "name": name,
            "value": format_value(value),
            "type": type(value).__name__,
            "variablesReference": self.value(item.execution_id, value, owner),
        }
        if key is not None:
            variable["evaluateName"] = key.strip("/").replace("/", ".")
        if isinstance(value, list | tuple) and value:
            variable["indexedVariables"] = len(value)
        elif isinstance(value, Mapping) and value:
            variable["namedVariables"] = len(value)
        if item.kind == "mapping":
            variable["presentationHint"] = {"attributes": ["readOnly"]}
        return variable

    def _agent_variable(self, item: _Item, name: str, value: Any) -> dict[str, Any]:
        """A field of an agent's last call: read-only, but for what the call wrote."""
        answered = item.value.get("state") == _ANSWERED
        if name == "outputs" and answered and isinstance(value, Mapping) and value:
            outputs = _Item(item.execution_id, "outputs", dict(value))
            return {
                "name": name,
                "value": format_value(value),
                "type": "dict",
                "variablesReference": self._add(outputs),
                "namedVariables": len(value),
            }
        variable = self._variable(item, name, value, None)
        if name == "response" and item.key is not None:
            variable["evaluateName"] = item.key.strip("/").replace("/", ".")
        else:
            variable["presentationHint"] = {"attributes": ["readOnly"]}
        return variable

    def _local(self, item: _Item, local: Mapping[str, Any]) -> dict[str, Any]:
        """A recorded local, with the class it had; an object recorded as its text reads as
        that text, not as a quoted string."""
        value = local["value"]
        variable = self._variable(item, local["name"], value, None)
        variable["type"] = local["type"]
        variable["presentationHint"] = {"attributes": ["readOnly"]}
        if isinstance(value, str) and local["type"] != "str":
            variable["value"] = value
        return variable

    def _add(self, item: _Item) -> int:
        reference = self.new_id()
        self._items[reference] = item
        return reference

    def _item(self, reference: int) -> _Item:
        item = self._items.get(reference)
        if item is None:
            raise InvalidRequest(
                f"unknown variablesReference {reference} (it lasts only for one stop)"
            )
        return item


def _names(blackboard: Mapping[str, Any], prefix: str) -> list[tuple[str, bool, bool]]:
    """Names directly under ``prefix``: (name, holds a value, is a namespace), sorted."""
    seen: dict[str, list[bool]] = {}
    for key in blackboard:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        name, slash, _ = rest.partition("/")
        flags = seen.setdefault(name, [False, False])
        if slash:
            flags[1] = True
        else:
            flags[0] = True
    return [(name, flags[0], flags[1]) for name, flags in sorted(seen.items()) if name]
