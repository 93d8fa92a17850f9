"""JSON from outside the process, decoded within bounds, and the integer range Canopy keeps.

Every edge that reads JSON someone else wrote (HTTP bodies, DAP messages, pod frames, tree
files) decodes it with :func:`loads`, so that the same bounds hold everywhere:

- **Nesting** of at most :data:`MAX_DEPTH` arrays and objects. What walks decoded values
  (schema validation, the remote wire, the runtime's value copies) recurses, and Python's
  recursion limit is about 1000 frames; orjson alone stops only at 1024 levels.
- **Integers exactly as written.** orjson turns an integer beyond 64 bits into a float without
  a word; a text holding a run of 19 digits or more (the only way to write such an integer) is
  decoded again by the standard library, which keeps every integer exact. The event log then
  refuses the integers outside :data:`INT_MIN` … :data:`INT_MAX` (what PostgreSQL's ``bigint``
  and orjson's encoder hold) with the path to them, and the runtime shows such values as their
  exact decimal text: a value is kept exactly or refused, never changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from .errors import InvalidArgument, InvalidJson

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_DEPTH",
    "has_long_digits",
    "loads",
    "refuse_wide_integers",
    "wide_integer",
]

MAX_DEPTH: Final = 128
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
# Every digit but 9 becomes a 9, so that a run of 19 digits is a run of 19 nines: one C pass
# and a substring search, ten times faster than a regular expression over a digit-heavy text
# (which retries at every digit of every shorter run).
_DIGITS_AS_NINES: Final = bytes.maketrans(b"012345678", b"999999999")
_NINETEEN_NINES: Final = b"9" * 19
_TOKENS: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def loads(data: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value in ``data``; :class:`InvalidJson` (with the line and column) when it is not
    strict JSON (no NaN, valid UTF-8) or nests deeper than ``max_depth``."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if exc.msg != "depth limit exceeded":  # else deeper than orjson goes: said below
            raise InvalidJson(exc.msg, exc.lineno, exc.colno) from None
        raise InvalidJson(*_too_deep(data, max_depth)) from None
    if data.count(b"[") + data.count(b"{") > max_depth and _nests_deeper(value, max_depth):
        raise InvalidJson(*_too_deep(data, max_depth))
    if has_long_digits(data):
        # Strict, no deeper than checked above, and no number longer than orjson's 308 digits
        # (Python refuses to convert over 4300): exact integers.
        value = json.loads(data)
    return value


def has_long_digits(data: bytes) -> bool:
    """Whether ``data`` holds a run of 19 digits or more: the only way JSON can write an
    integer past 64 bits."""
    return _NINETEEN_NINES in data.translate(_DIGITS_AS_NINES)


def wide_integer(value: Any, encoded: bytes | None = None) -> tuple[str, int] | None:
    """The dotted path to (and the value of) the first integer outside INT_MIN … INT_MAX in
    ``value``; None when there is none. ``encoded``, the value's JSON when at hand, spares
    the walk for most values: only one with a run of 19 digits can hold such an integer."""
    if encoded is not None and not has_long_digits(encoded):
        return None
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, dict):
            inner = [(f"{path}.{key}" if path else str(key), v) for key, v in item.items()]
        elif isinstance(item, list | tuple):
            inner = [(f"{path}.{index}" if path else str(index), v) for index, v in enumerate(item)]
        elif type(item) is int and not INT_MIN <= item <= INT_MAX:
            return path, item
        else:
            continue
        pending.extend(reversed(inner))
    return None


def refuse_wide_integers(arguments: Mapping[str, Any], call: str | None = None) -> None:
    """Refuse ``call`` (InvalidArgument naming the argument, after ``call`` when given) when its
    arguments hold an integer outside INT_MIN … INT_MAX: the pod link cannot carry it and the
    log cannot keep it, and a value a client writes is kept exactly or refused, never changed.
    A number of over 40 digits is told by its length."""
    if (wide := wide_integer(dict(arguments))) is not None:
        where, number = wide
        digits = str(abs(number))
        shown = number if len(digits) <= 40 else f"of {len(digits)} digits"
        prefix = f"{call}: " if call is not None else ""
        raise InvalidArgument(
            f"{prefix}argument {where!r}: integer {shown} is outside the signed 64-bit range"
        )


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in ``value``: one level at a time,
    without recursion, and cheap per value (a large pod batch passes through here whole)."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            item
            for container in level
            for item in (container.values() if type(container) is dict else container)
            if type(item) is dict or type(item) is list
        ]
    return False


def _too_deep(data: bytes, limit: int) -> tuple[str, int, int]:
    """What is wrong, and the line and column of the bracket that opens level ``limit + 1``
    of ``data`` (well-formed up to there)."""
    message = f"nested deeper than {limit} levels"
    depth = 0
    for token in _TOKENS.finditer(data):
        if token[0] in (b"[", b"{"):
            depth += 1
            if depth > limit:
                start = token.start()
                line = data.count(b"\n", 0, start) + 1
                return message, line, start - data.rfind(b"\n", 0, start)
        elif token[0] in (b"]", b"}"):
            depth -= 1
    return message, 1, 1
