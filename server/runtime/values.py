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
from typing import Any, Final

from canopy.bridge.jsondata import INT_MAX, INT_MIN

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "MAX_STRING", "jsonable"]

MAX_DEPTH: Final = 8
MAX_ITEMS: Final = 200
MAX_STRING: Final = 4096


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: containers copied (bounded), other objects as their repr.

    Non-finite floats and integers outside the signed 64-bit range become strings (JSON has no
    NaN; the log keeps 64-bit integers); truncation is marked with ``"…"``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT_MIN <= value <= INT_MAX else _wide(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…"
    if isinstance(value, enum.Enum):
        return jsonable(value.value if isinstance(value.value, str | int) else value.name, depth)
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        copied = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                copied["…"] = f"{len(value) - MAX_ITEMS} more"
                break
            copied[str(key)] = jsonable(item, depth + 1)
        return copied
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)[: MAX_ITEMS + 1]
        copied_items = [jsonable(item, depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            copied_items.append("…")
        return copied_items
    text = repr(value)
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"


def _wide(value: int) -> str:
    """An integer beyond 64 bits as its decimal text; one past Python's own limit on that
    conversion (4300 digits) is described, since its digits cannot be written."""
    try:
        return str(int(value))
    except ValueError:
        return f"<an integer of {value.bit_length()} bits>"
