"""Where a behaviour's exception was raised in the user's own code, with the locals there.

A traceback of a behaviour's exception starts in Canopy's engine and goes through py_trees'
composites and decorators before it reaches the line a user wrote; what a user looks for is that
line and the values it saw. So the engine records, with the exception, the user's frames
(innermost first, as a debugger's Call Stack shows them) and their locals. They are recorded
because the objects are gone once the tree moves on: a stop revisited by stepping back, or seen
from another session, has only the log.

Locals are rendered as the log keeps values (:func:`~.values.jsonable`: 64-bit integers, finite
floats, bounded containers), only smaller: a frame may hold many of them. An object with
attributes (``self``, first of all) is shown as its attributes, one level deep, rather than its
``repr``; a ``repr`` that raises is told as such (:func:`~.values.safe_repr`). A ``repr`` that
is merely slow is waited for: the engine's thread cannot interrupt it.
"""

from __future__ import annotations

import enum
import json
import linecache
import types
from collections.abc import Mapping
from typing import Any, Final

import py_trees
from py_trees.blackboard import Blackboard, Client

from .failures import in_user_code
from .user_faults import RUNTIME_CONTROL_FLOW
from .values import Bounds, jsonable

__all__ = ["LOCALS", "MAX_FRAMES", "MAX_LOCALS", "raised_frames"]

MAX_FRAMES: Final = 4
"""User frames recorded, innermost first (a recursion would otherwise record them all)."""
MAX_LOCALS: Final = 32
"""Locals recorded per frame; the rest are counted."""
LOCALS: Final = Bounds(depth=3, items=16, string=200)
"""How much of each local is kept."""
MAX_RENDERED: Final = 2000
"""Characters of JSON one local may take; a larger one is kept shallower (:data:`SHALLOW`)."""
SHALLOW: Final = Bounds(depth=1, items=8, string=80)
MAX_TOTAL: Final = 64 * 1024
"""Characters of JSON all the locals of one exception may take, so that the event stays well
within the log's payload limit (256 KiB); the locals past it are shown as ``"…"``."""

_NOT_ATTRIBUTES: Final = (type, types.ModuleType, types.FunctionType, types.MethodType, enum.Enum)
_BEHAVIOUR_INTERNALS: Final = frozenset(
    {
        *("id", "name", "status", "qualified_name", "blackbox_level", "logger", "blackboards"),
        *("parent", "children", "iterator", "current_child"),
        "canopy_id",  # the engine's stable id of the node
    }
)
"""py_trees' and Canopy's own attributes of a behaviour, shown first (name, status) or left out
(links to other nodes and machinery, not state a user set)."""


def raised_frames(tb: types.TracebackType | None) -> list[dict[str, Any]]:
    """The user's frames of a traceback, innermost first, each with its locals:
    ``{"path", "line", "function" (qualified: ``Scan.update``), "code", "locals"}`` where
    ``locals`` is a list of ``{"name", "type", "value"}``."""
    frames: list[tuple[types.FrameType, int]] = []
    while tb is not None:
        if in_user_code(tb.tb_frame.f_code.co_filename):
            frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    budget = [MAX_TOTAL]  # shared by the frames, innermost first
    return [_frame(frame, line, budget) for frame, line in reversed(frames[-MAX_FRAMES:])]


def _frame(frame: types.FrameType, line: int, budget: list[int]) -> dict[str, Any]:
    path = frame.f_code.co_filename
    return {
        "path": path,
        "line": line,
        "function": frame.f_code.co_qualname,
        "code": linecache.getline(path, line).strip(),
        "locals": _locals(frame.f_locals, budget),
    }


def _locals(names: Mapping[str, Any], budget: list[int]) -> list[dict[str, Any]]:
    shown = []
    for name, value in list(names.items())[:MAX_LOCALS]:
        rendered = _render(value) if budget[0] > 0 else "…"
        budget[0] -= len(json.dumps(rendered, ensure_ascii=False))
        shown.append({"name": name, "type": type(value).__qualname__, "value": rendered})
    if len(names) > MAX_LOCALS:
        shown.append({"name": "…", "type": "", "value": f"{len(names) - MAX_LOCALS} more"})
    return shown


def _render(value: Any) -> Any:
    """One local as JSON; whatever the user's objects do, never an exception."""
    try:
        return _rendered(value)
    except RUNTIME_CONTROL_FLOW:
        raise
    except BaseException as error:  # e.g. a container whose iteration raises
        return f"<{type(value).__qualname__} object: not shown ({type(error).__name__})>"


def _rendered(value: Any) -> Any:
    if isinstance(value, py_trees.behaviour.Behaviour):
        rendered = _behaviour(value)
    else:
        attributes = _attributes(value)
        rendered = (
            {name: _attribute(item) for name, item in attributes.items()}
            if attributes
            else jsonable(value, 0, LOCALS)
        )
    if len(json.dumps(rendered, ensure_ascii=False)) > MAX_RENDERED:
        rendered = jsonable(rendered, 0, SHALLOW)
    return rendered


def _behaviour(behaviour: py_trees.behaviour.Behaviour) -> dict[str, Any]:
    """A behaviour as a user thinks of it: its name and status, the attributes its class set
    (a blackboard client as the keys it may touch, with their values)."""
    shown: dict[str, Any] = {"name": behaviour.name, "status": behaviour.status.value}
    for name, item in _attributes(behaviour).items():
        # A function set on the instance is a hook (the engine's on ``stop``), not state.
        if name not in _BEHAVIOUR_INTERNALS and not isinstance(item, types.FunctionType):
            shown[name] = _attribute(item)
    return shown


def _attribute(value: Any) -> Any:
    if isinstance(value, Client):
        return _client(value)
    return jsonable(value, 1, LOCALS)


def _client(client: Client) -> dict[str, Any]:
    """A blackboard client as its keys and their current values (``<unset>`` for a key nobody
    wrote yet)."""
    keys = sorted(client.read | client.write | client.exclusive)
    return {
        key: jsonable(Blackboard.storage.get(key, "<unset>"), 2, LOCALS)
        for key in keys[: LOCALS.items]
    }


def _attributes(value: Any) -> dict[str, Any]:
    """An object's own attributes (not read through ``__getattr__`` or properties, which run
    the user's code), or nothing for values that are better shown whole."""
    if isinstance(value, _NOT_ATTRIBUTES):
        return {}
    try:
        attributes = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return {}
    if not isinstance(attributes, dict):
        return {}
    return {str(name): item for name, item in list(attributes.items())[: LOCALS.items]}
