"""JSON-safe copies of Python values, taken at capture time.

py_trees stores blackboard values by reference: a behaviour that mutates a list after writing it
would rewrite history if the log kept the object. Every captured value is copied into plain JSON
types, bounded in depth and size so that one huge value cannot flood the log. An integer
beyond what the log keeps exactly (signed 64 bits) is shown as its exact decimal text rather
than refused: a behaviour may well count past it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from canopy.bridge.jsondata import INT_MAX, INT_MIN

from .user_faults import RUNTIME_CONTROL_FLOW

__all__ = ["CAPTURE", "MAX_DEPTH", "MAX_ITEMS", "MAX_STRING", "Bounds", "jsonable", "safe_repr"]

MAX_DEPTH: Final = 8
MAX_ITEMS: Final = 200
MAX_STRING: Final = 4096


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much of a value is kept: nesting depth, items per container, characters per text.
    Blackboard values keep a lot (:data:`CAPTURE`); a view of many values at once (the locals
    of a raising frame) keeps less of each."""

    depth: int
    items: int
    string: int


CAPTURE: Final = Bounds(MAX_DEPTH, MAX_ITEMS, MAX_STRING)


def jsonable(value: Any, depth: int = 0, bounds: Bounds = CAPTURE) -> Any:
    """A JSON-safe copy of ``value``: containers copied (bounded), other objects as their repr.

    Non-finite floats and integers outside the signed 64-bit range become strings (JSON has no
    NaN; the log keeps 64-bit integers); truncation is marked with ``"…"``.
    """
    if isinstance(value, enum.Enum):  # before int and str: an IntEnum is an int
        plain = value.value if isinstance(value.value, str | int) else value.name
        return jsonable(plain, depth, bounds)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else _wide(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _cut(value, bounds.string)
    if depth >= bounds.depth:
        return "…"
    if isinstance(value, Mapping):
        copied = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= bounds.items:
                copied["…"] = f"{len(value) - bounds.items} more"
                break
            copied[str(key)] = jsonable(item, depth + 1, bounds)
        return copied
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)[: bounds.items + 1]
        copied_items = [jsonable(item, depth + 1, bounds) for item in items[: bounds.items]]
        if len(items) > bounds.items:
            copied_items.append("…")
        return copied_items
    return safe_repr(value, bounds.string)


def safe_repr(value: Any, limit: int = MAX_STRING) -> str:
    """``repr(value)``, cut at ``limit`` characters; a ``__repr__`` that raises is told, not
    propagated: a user's broken ``__repr__`` must not take the engine down with it."""
    try:
        text = repr(value)
    except RUNTIME_CONTROL_FLOW:
        raise
    except BaseException as error:  # a user's __repr__ may raise anything, sys.exit() included
        text = f"<{type(value).__qualname__} object: repr() raised {type(error).__name__}>"
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _wide(value: int) -> str:
    """An integer beyond 64 bits as its decimal text; one past Python's own limit on that
    conversion (4300 digits) is described, since its digits cannot be written."""
    try:
        return str(int(value))
    except ValueError:
        return f"<an integer of {value.bit_length()} bits>"
