"""What a failure says. The evaluator's helpers raise :class:`~.errors.EvalError` with their own
message; for the operations Python runs itself (``+``, ``<``, a dict display, ``len()``...) a
``TypeError`` is described from what Canopy knows: the kind of the failing node and the values
of its operands, evaluated again (expressions are pure, so this gives the same values). A failure
raised by a value itself is passed through with its own message. Nothing here reads CPython's
wording, so messages stay the same across Python releases."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any, Final

from .errors import EvalError
from .functions import ORDERING
from .operations import SEQUENCES, hashable
from .text import clip, kind_name

Operand = Callable[[], Any]
"""An operand of the failing node, evaluated again on demand (operands to the right of the
failing comparison of a chain were never evaluated, and may fail in their own way)."""

SYMBOLS: Final[Mapping[type, str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.USub: "-",
    ast.UAdd: "+",
    ast.Invert: "~",
    ast.Not: "not",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}
"""How a message (and the user) writes each operator."""

_COMPARISONS: Final[Mapping[type, Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda left, right: left in right,
    ast.NotIn: lambda left, right: left not in right,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_KINDS_TRIED: Final = 8
"""Kinds of items tried pairwise to find the two that ``sorted min max`` could not compare."""


def unhashable(value: Any) -> str:
    return f"a {kind_name(value)} cannot be a dict key or a set item (it is unhashable)"


def failure_message(
    error: BaseException, node: ast.AST | None, operands: Sequence[Operand] = ()
) -> str:
    """What went wrong, in the user's terms, for ``error`` raised while evaluating ``node``
    (the innermost expression node the failure is attributed to, with its ``operands``)."""
    if isinstance(error, EvalError):
        return error.message
    if isinstance(error, KeyError) and isinstance(node, ast.Name):
        return f"unknown name {node.id!r}"
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    if isinstance(error, OverflowError):
        # a float overflow's arguments are an errno pair, which says nothing more
        detail = error.args[0] if len(error.args) == 1 else None
        if isinstance(detail, str):
            return f"number out of range ({clip(detail, 200)})"
        return "number out of range"
    if isinstance(error, RecursionError):
        return "a value is nested too deeply"
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, TypeError):
        if isinstance(node, ast.Name):
            return "the evaluation context is not a mapping"
        try:
            described = _type_error(node, operands)
        except Exception:  # an operand failed differently this time: say what Python said
            described = None
        if described is not None:
            return described
    text = clip(str(error), 200)
    if not isinstance(error, TypeError | ValueError | IndexError | KeyError):
        text = f"{type(error).__name__}: {text}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"{node.func.id}(): {text}"
    return text


def _type_error(node: ast.AST | None, operands: Sequence[Operand]) -> str | None:
    """A ``TypeError`` described from the node that raised it and the kinds of its operands;
    ``None`` when the node is not one whose operands explain it."""
    if isinstance(node, ast.Compare):
        return _comparison(node, operands)
    values = [operand() for operand in operands]
    if isinstance(node, ast.BinOp) and len(values) == 2:
        left, right = values
        if isinstance(node.op, ast.Mult) and (
            (isinstance(left, SEQUENCES) and not isinstance(right, int))
            or (isinstance(right, SEQUENCES) and not isinstance(left, int))
        ):
            return "'*' repeats a sequence an integer number of times only"
        return (
            f"cannot apply '{SYMBOLS[type(node.op)]}' to {kind_name(left)} and {kind_name(right)}"
        )
    if isinstance(node, ast.UnaryOp) and len(values) == 1:
        return f"cannot apply unary '{SYMBOLS[type(node.op)]}' to {kind_name(values[0])}"
    if isinstance(node, ast.Dict | ast.Set):
        return next((unhashable(key) for key in values if not hashable(key)), None)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and values:
        name = node.func.id
        if name in ORDERING:
            pair = _incomparable(values[0] if len(values) == 1 else values)
            if pair is not None:
                return f"{name}(): cannot compare {kind_name(pair[0])} and {kind_name(pair[1])}"
        return f"{name}() is not defined for {' and '.join(kind_name(v) for v in values)}"
    return None


def _comparison(node: ast.Compare, operands: Sequence[Operand]) -> str | None:
    """Replays the chain ``a < b <= c`` pair by pair up to the comparison that fails."""
    if len(operands) != len(node.ops) + 1:
        return None
    left = operands[0]()
    for op, operand in zip(node.ops, operands[1:], strict=True):
        right = operand()
        symbol = SYMBOLS[type(op)]
        try:
            holds = _COMPARISONS[type(op)](left, right)
        except TypeError:
            if isinstance(op, ast.In | ast.NotIn):
                if not hashable(left) and isinstance(right, set | frozenset | Mapping):
                    return unhashable(left)
                return f"cannot apply '{symbol}' to {kind_name(left)} and {kind_name(right)}"
            return f"cannot compare {kind_name(left)} and {kind_name(right)} with '{symbol}'"
        if not holds:
            return None
        left = right
    return None


def _incomparable(items: Iterable[Any]) -> tuple[Any, Any] | None:
    """Two items that cannot be ordered with each other, tried with one item of each kind (a
    few kinds at most), or ``None`` when none is found."""
    representatives: dict[type, Any] = {}
    for element in islice(items, 10_000):
        representatives.setdefault(type(element), element)
        if len(representatives) == _KINDS_TRIED:
            break
    found = list(representatives.values())
    for index, first in enumerate(found):
        for second in found[index:]:
            try:
                first < second  # noqa: B015  (only whether it raises matters)
                second < first  # noqa: B015
            except TypeError:
                return first, second
    return None
