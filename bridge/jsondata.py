"""JSON from outside the process, decoded within bounds.

Every edge that reads JSON someone else wrote (HTTP bodies, DAP messages, pod frames, tree
files) decodes it with :func:`loads`, so that the same bounds hold everywhere:

- **Nesting** of at most :data:`MAX_DEPTH` arrays and objects. What walks decoded values
  (schema validation, the remote wire, the runtime's value copies) recurses, and Python's
  recursion limit is about 1000 frames; orjson alone stops only at 1024 levels.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from .errors import InvalidJson

__all__ = ["MAX_DEPTH", "loads"]

MAX_DEPTH: Final = 128
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
    return value


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in ``value`` (iteratively)."""
    pending: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        container, depth = pending.pop()
        if depth > limit:
            return True
        items = container.values() if isinstance(container, dict) else container
        pending.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
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
