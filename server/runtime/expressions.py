"""The safe expression language of breakpoint conditions, hit conditions, watch expressions,
DAP ``evaluate`` and logpoint templates.

These strings are typed by a client in an editor and evaluated inside a debug pod, next to a
running behavior tree, many times per second. Running them as Python would hand the pod to
whoever can reach the debugger, and one careless ``10**10**10`` would freeze the robot. So a
source is parsed by Python's own parser (users already know the syntax), every node is checked
against a whitelist *before anything runs*, and the checked tree is rewritten and compiled once
into a function that costs a few microseconds per evaluation. A bad expression is an
:class:`ExpressionError` with a precise message and column, never an exception inside the tree.

The language
------------
- Literals: ``int``, ``float``, ``str``, ``True``/``False``/``None``; list, tuple, dict and set
  displays (without ``*``/``**`` unpacking). Bytes, complex numbers and ``...`` are refused.
- Names are looked up in the evaluation context (a ``Mapping``: blackboard values, see
  :func:`flatten_blackboard`, and node state such as ``status``, ``tick``, ``visits``). A name is
  never a Python builtin: the functions below exist only in call position, so a blackboard key
  called ``len`` is still readable as ``len``.
- ``a.b.c`` reads keys of nested mappings (``context["a"]["b"]["c"]``); it never reads an
  attribute of a Python object. Names and dotted keys starting with ``_`` are refused.
- Subscripts ``x[0]``, ``x[-1]``, ``x["key"]`` and slices ``x[1:3]``, ``x[::2]``: mappings by
  key, other values (lists, tuples, strings, arrays) by their own indexing. A string key may
  start with ``_``: it is data, not an attribute.
- Operators: comparisons, chained (``0 < x <= 10``); ``in``/``not in`` (the right side must be
  a collection, never an iterator that could run forever); ``is``/``is not`` against ``None``,
  ``True`` or ``False`` only; ``and``/``or``/``not``; unary ``- + ~``; ``+ - * / // % **``;
  bitwise ``& | ^`` (flags and set operations); ``a if c else b``. ``%`` is arithmetic only:
  printf-style string formatting is refused. ``<<``, ``>>``, ``@`` and ``:=`` are refused.
- Calls, only to the pure functions of :data:`FUNCTIONS` (``len abs min max round int float str
  bool sum any all sorted``), with positional arguments; the only keyword arguments are
  ``sorted(..., reverse=...)`` and ``min/max(collection, default=...)``.
- f-strings with plain ``{expression}`` fields; conversions (``!r``), format specs (``:>10``)
  and ``{x=}`` are refused, because a format spec such as ``:>999999999`` is a memory bomb.
- Nothing else: no method calls or attributes of objects, lambdas, comprehensions, generator
  expressions, ``await``/``yield``, starred arguments.

Bounds, so that no expression hangs the tree or exhausts memory (a violation is an
:class:`ExpressionError`): source ≤ 2,000 characters, ≤ 256 expression nodes, ≤ 50 levels of
nesting; integers from literals, ``*``, ``**``, ``int()``, ``round()`` and ``sum()`` ≤ 4,096 bits
(``+`` and ``-`` add at most one bit each, within the node limit); ``**`` with
|exponent| ≤ 1,024, float overflow and complex results are errors; ``*`` on strings, bytes,
lists and tuples builds at most 10,000 items or characters, nested contents included (so
``[[0] * 100] * 1000`` is refused too); ``str()`` and f-string fields produce at most 10,000
characters; ``sorted min max sum any all`` take a collection of at most 1,000,000 items;
``round(x, n)`` needs |n| ≤ 1,024. There is no ``range``. Constant subexpressions are computed
when compiling, so ``9**9**9`` and ``'a' * 10**9`` are refused when a breakpoint is set, not
when it is hit. The bounds stop an expression from *making* work; reading what the tree already
holds (comparing two large lists of the blackboard) costs what reading that data costs.

Error positions: ``column`` is the 1-based index in the source string of the first character of
the offending part (for a one-line source, the editor column).
"""

from __future__ import annotations

import ast
import functools
import numbers
import operator
import re
import warnings
from collections.abc import Callable, Collection, Container, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Final, NoReturn

from canopy.bridge import CanopyError

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_NODES",
    "MAX_SIZE",
    "MAX_SOURCE_LENGTH",
    "Expression",
    "ExpressionError",
    "HitCondition",
    "Template",
    "flatten_blackboard",
]

MAX_SOURCE_LENGTH: Final = 2_000
"""Characters of an expression or a logpoint template."""
MAX_NODES: Final = 256
"""Expression nodes (names, literals, operations, calls...) of one expression."""
MAX_DEPTH: Final = 50
"""Levels of nesting of one expression."""
MAX_INT_BITS: Final = 4_096
"""Size of an integer made by a literal, ``*``, ``**``, ``int()``, ``round()`` or ``sum()``."""
MAX_EXPONENT: Final = 1_024
"""Largest |exponent| of ``**`` and |ndigits| of ``round()``."""
MAX_SIZE: Final = 10_000
"""Items or characters built by ``*`` on sequences, by ``str()`` and by f-string fields."""
MAX_ITEMS: Final = 1_000_000
"""Items of a collection given to ``sorted min max sum any all``."""
MAX_TEXT: Final = MAX_SIZE
"""Characters of one rendered template field; longer values are cut and end with '…'."""

FUNCTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "len": "len(x): the number of items of a collection, or characters of a string",
        "abs": "abs(x): the absolute value of a number",
        "min": "min(collection, default=d) or min(a, b, ...): the smallest item",
        "max": "max(collection, default=d) or max(a, b, ...): the largest item",
        "round": "round(x) or round(x, n): x rounded to an int, or to n decimals (|n| ≤ 1,024)",
        "int": "int(x) or int(text, base): an integer from a number or a string (≤ 4,096 bits)",
        "float": "float(x): a floating-point number from a number or a string",
        "str": "str(x): the text of a value, as Python prints it (≤ 10,000 characters)",
        "bool": "bool(x): the truth value of x",
        "sum": "sum(collection) or sum(collection, start): the total of numbers",
        "any": "any(collection): whether any item is true",
        "all": "all(collection): whether every item is true",
        "sorted": "sorted(collection, reverse=False): a new sorted list",
    }
)
"""The functions an expression may call, with a one-line description (for completion)."""

_CALLS_ALLOWED: Final = ", ".join(FUNCTIONS)


class ExpressionError(CanopyError):
    """An expression that cannot be compiled or evaluated.

    ``message`` says what is wrong in the user's terms (never a Python traceback), ``source`` is
    the expression or template, and ``column``/``end_column`` delimit the offending part (1-based
    character positions, ``end_column`` just past it) when known, so that an editor can underline
    it. The exception is reported on the breakpoint; it never reaches the tree.
    """

    def __init__(
        self,
        message: str,
        source: str = "",
        column: int | None = None,
        end_column: int | None = None,
    ) -> None:
        super().__init__(message, source, column, end_column)
        self.message = message
        self.source = source
        self.column = column
        self.end_column = end_column

    def __str__(self) -> str:
        if self.column is None:
            return self.message
        return f"column {self.column}: {self.message}"


class _EvalError(Exception):
    """Raised by the runtime helpers with a finished message; its column is found afterwards
    from the position of the failing instruction, so the helpers stay small and fast."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- describing values in messages --------------------------------------------------------------


def _describe(value: Any) -> str:
    """``an int``, ``a list``, ``None``: how a message names the kind of a value."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short_repr(value: Any) -> str:
    """A bounded repr for messages; a value whose repr fails is named by its kind."""
    try:
        text, _ = _render(value, 60, top=False)
    except Exception:
        return _describe(value)
    return _clip(text)


# -- bounded text -------------------------------------------------------------------------------


class _Full(Exception):
    """The text being written has reached its limit."""


class _Writer:
    """``str(value)`` with a budget: builtin containers are written element by element and the
    writing stops at the limit, so a huge or deeply shared value costs no more than the limit.
    Other objects are written by their own ``repr``/``str`` (code of the pod, not the client)."""

    __slots__ = ("active", "parts", "room")

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.room = limit
        self.active: list[int] = []

    def write(self, text: str) -> None:
        if len(text) > self.room:
            self.parts.append(text[: self.room])
            self.room = 0
            raise _Full
        self.parts.append(text)
        self.room -= len(text)

    def value(self, value: Any, top: bool) -> None:
        kind = type(value)
        if kind is str or kind is bytes or kind is bytearray:
            if top and kind is str:
                self.write(value)
            elif len(value) > self.room:
                self.write(repr(value[: self.room + 1]))
            else:
                self.write(repr(value))
        elif kind is int:
            try:
                self.write(repr(value))
            except ValueError:
                raise _EvalError(
                    f"an integer of {value.bit_length():,} bits is too large to show as text"
                ) from None
        elif kind is bool or kind is float or value is None:
            self.write(repr(value))
        elif kind is list or kind is tuple or kind is dict or kind is set or kind is frozenset:
            self.container(value, kind)
        else:
            self.write(str(value) if top else repr(value))

    def container(self, value: Any, kind: type) -> None:
        if id(value) in self.active:
            self.write("[...]" if kind is list else "{...}" if kind is dict else "(...)")
            return
        if len(self.active) >= MAX_DEPTH:
            raise _EvalError("a value is nested too deeply to show as text")
        self.active.append(id(value))
        if kind is dict:
            self.write("{")
            for index, (key, item) in enumerate(value.items()):
                if index:
                    self.write(", ")
                self.value(key, False)
                self.write(": ")
                self.value(item, False)
            self.write("}")
        elif (kind is set or kind is frozenset) and not value:
            self.write(f"{kind.__name__}()")
        else:
            opening, closing = {
                list: ("[", "]"),
                tuple: ("(", ")"),
                set: ("{", "}"),
                frozenset: ("frozenset({", "})"),
            }[kind]
            self.write(opening)
            for index, item in enumerate(value):
                if index:
                    self.write(", ")
                self.value(item, False)
            if kind is tuple and len(value) == 1:
                self.write(",")
            self.write(closing)
        self.active.pop()


def _render(value: Any, limit: int, top: bool = True) -> tuple[str, bool]:
    """``(text, cut)``: the text of ``value`` as ``str()`` (or ``repr()``) gives it, at most
    ``limit`` characters; ``cut`` tells whether it was longer."""
    if type(value) is str and top:
        return (value, False) if len(value) <= limit else (value[:limit], True)
    writer = _Writer(limit)
    try:
        writer.value(value, top)
    except _Full:
        return "".join(writer.parts), True
    return "".join(writer.parts), False


def _text(value: Any) -> str:
    """``str(value)`` bounded to :data:`MAX_SIZE` characters (``str()`` and f-string fields)."""
    if type(value) is str:
        if len(value) <= MAX_SIZE:
            return value
    else:
        text, cut = _render(value, MAX_SIZE)
        if not cut:
            return text
    raise _EvalError(f"text is too long (more than {MAX_SIZE:,} characters)")


# -- runtime helpers: every operation that could cost without bound goes through one of these --

_SEQUENCES: Final = (str, bytes, bytearray, list, tuple)
_FAST_CONTAINERS: Final = frozenset({dict, list, tuple, set, frozenset, str})


def _check_int(value: Any) -> Any:
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise _EvalError(f"integer result is too large (more than {MAX_INT_BITS:,} bits)")
    return value


def _attr(value: Any, key: str, text: str) -> Any:
    """``a.b``: a key of a mapping, never an attribute of an object."""
    if type(value) is dict or isinstance(value, Mapping):
        try:
            return value[key]
        except KeyError:
            raise _EvalError(f"{text!r} has no key {key!r}") from None
    raise _EvalError(
        f"{text!r} is {_describe(value)}, not a mapping: dotted names read mapping keys only"
    )


def _item(value: Any, key: Any, text: str) -> Any:
    """``x[key]``: a mapping by key, any other indexable value by its own indexing."""
    kind = type(value)
    if (
        kind not in _FAST_CONTAINERS
        and not isinstance(value, Mapping)
        and not hasattr(kind, "__getitem__")
    ):
        raise _EvalError(f"{text!r} is {_describe(value)}, which cannot be indexed")
    try:
        return value[key]
    except KeyError:
        raise _EvalError(f"{text!r} has no key {_short_repr(key)}") from None
    except IndexError:
        try:
            length = f" (length {len(value):,})"
        except Exception:
            length = ""
        raise _EvalError(f"index {_short_repr(key)} is out of range for {text!r}{length}") from None
    except TypeError as error:
        if isinstance(value, Mapping) or "unhashable" in str(error):
            raise _EvalError(f"{_describe(key)} cannot be a key (it is unhashable)") from None
        if kind in _FAST_CONTAINERS:
            raise _EvalError(
                f"{text!r} is {_describe(value)}: an index must be an integer or a slice,"
                f" not {_describe(key)}"
            ) from None
        raise


def _slice(value: Any, lower: Any, upper: Any, step: Any, text: str) -> Any:
    """``x[a:b:c]``: sequences only; the result is never larger than ``x``."""
    if isinstance(value, Mapping) or not hasattr(type(value), "__getitem__"):
        raise _EvalError(f"{text!r} is {_describe(value)}, which cannot be sliced")
    for bound in (lower, upper, step):
        if bound is not None and not isinstance(bound, int):
            raise _EvalError(f"slice bounds must be integers or empty, not {_describe(bound)}")
    if step == 0:
        raise _EvalError("a slice step cannot be zero")
    return value[lower:upper:step]


def _size(value: Any, budget: int) -> int:
    """Items and characters of ``value``, nested contents included and every reference counted
    (shared or cyclic parts too), stopping as soon as the count exceeds ``budget``: the work is
    bounded by the budget, and comparing or printing the value is bounded by the count. Other
    sized objects (a deque, an array) count their length without being looked into."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset | dict):
            total += len(item)
            if total > budget:
                return total
            stack.extend(item)
            if isinstance(item, dict):
                stack.extend(item.values())
        elif hasattr(type(item), "__len__"):
            try:
                total += len(item)
            except Exception:
                total += 1
        if total > budget:
            return total
    return total


def _repeat(sequence: Any, times: Any) -> Any:
    try:
        count = operator.index(times)
    except TypeError:
        return sequence * times
    if count > 1:
        budget = MAX_SIZE // count
        if _size(sequence, budget) > budget:
            unit = "characters" if isinstance(sequence, str | bytes | bytearray) else "items"
            raise _EvalError(f"'*' result is too large (more than {MAX_SIZE:,} {unit})")
    return sequence * count


def _mul(left: Any, right: Any) -> Any:
    """``*`` with integers capped in size and sequence repetition capped in length."""
    left_type, right_type = type(left), type(right)
    if left_type is float or right_type is float:
        return left * right
    if left_type is int and right_type is int:
        if left and right and left.bit_length() + right.bit_length() - 1 > MAX_INT_BITS:
            raise _EvalError(f"integer result is too large (more than {MAX_INT_BITS:,} bits)")
        return _check_int(left * right)
    if isinstance(left, _SEQUENCES):
        return _repeat(left, right)
    if isinstance(right, _SEQUENCES):
        return _repeat(right, left)
    return _check_int(left * right)


def _pow(base: Any, exponent: Any) -> Any:
    """``**`` with a bounded exponent, integers capped in size and no complex results."""
    # "not <=" so that infinity is refused; NaN (never equal to itself) is harmless
    if (
        isinstance(exponent, numbers.Real)
        and not abs(exponent) <= MAX_EXPONENT
        and exponent == exponent
    ):
        raise _EvalError(
            f"exponent {_short_repr(exponent)} is too large (the limit is ±{MAX_EXPONENT:,})"
        )
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        bits = base.bit_length()
        if bits > 1 and (bits - 1) * exponent > MAX_INT_BITS:
            raise _EvalError(f"integer result is too large (more than {MAX_INT_BITS:,} bits)")
    result = base**exponent
    if type(result) is complex:
        raise _EvalError("'**' result is not a real number (a negative base, fractional exponent)")
    return _check_int(result)


def _mod(left: Any, right: Any) -> Any:
    """``%`` as arithmetic only: printf-style formatting could build a string of any size."""
    kind = type(left)
    if kind is int or kind is float:
        return left % right
    if isinstance(left, str | bytes | bytearray):
        raise _EvalError("'%' formatting of strings is not supported; use an f-string or '+'")
    return left % right


def _container(value: Any, text: str) -> Any:
    """The right side of ``in``: a collection (an iterator could run forever)."""
    if type(value) in _FAST_CONTAINERS or isinstance(value, Container):
        return value
    raise _EvalError(f"'in' needs a collection on its right, but {text!r} is {_describe(value)}")


def _collection(value: Any, function: str) -> Any:
    """The argument of ``sorted min max sum any all``: a finite collection of bounded size."""
    if type(value) not in _FAST_CONTAINERS and not isinstance(value, Collection):
        raise _EvalError(
            f"{function}() needs a collection (a list, tuple, set, dict or string),"
            f" not {_describe(value)}"
        )
    count = len(value)
    if count > MAX_ITEMS:
        raise _EvalError(f"{function}() of {count:,} items is over the limit of {MAX_ITEMS:,}")
    return value


_NO_DEFAULT: Final = object()


def _f_min(*args: Any, default: Any = _NO_DEFAULT) -> Any:
    return _extreme(min, "min", args, default)


def _f_max(*args: Any, default: Any = _NO_DEFAULT) -> Any:
    return _extreme(max, "max", args, default)


def _extreme(function: Callable[..., Any], name: str, args: tuple[Any, ...], default: Any) -> Any:
    if len(args) > 1:
        return function(args)
    items = _collection(args[0], name)
    if default is not _NO_DEFAULT:
        return function(items, default=default)
    if len(items) == 0:
        raise _EvalError(f"{name}() of an empty collection (give a default=...)")
    return function(items)


def _f_round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise _EvalError(f"round() to {ndigits:,} digits is over the limit of ±{MAX_EXPONENT:,}")
    return _check_int(round(number) if ndigits is None else round(number, ndigits))


def _f_int(*args: Any) -> int:
    try:
        result = int(*args)
    except ValueError as error:
        if "Exceeds the limit" in str(error):
            raise _EvalError(
                f"integer result is too large (more than {MAX_INT_BITS:,} bits)"
            ) from None
        raise
    return _check_int(result)  # type: ignore[no-any-return]


def _f_str(*args: Any) -> str:
    return _text(args[0]) if args else ""


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float or kind is bool or isinstance(value, numbers.Number)


def _f_sum(items: Any, start: Any = 0) -> Any:
    items = _collection(items, "sum")
    if not _is_number(start):
        raise _EvalError(f"sum() adds numbers only, not {_describe(start)}")
    for item in items:
        if not _is_number(item):
            raise _EvalError(f"sum() adds numbers only, not {_describe(item)}")
    return _check_int(sum(items, start))


def _f_sorted(items: Any, reverse: Any = False) -> list[Any]:
    return sorted(_collection(items, "sorted"), reverse=reverse)


def _f_any(items: Any) -> bool:
    return any(_collection(items, "any"))


def _f_all(items: Any) -> bool:
    return all(_collection(items, "all"))


_GLOBALS: Final[dict[str, Any]] = {
    "__builtins__": {},
    "_attr": _attr,
    "_item": _item,
    "_slice": _slice,
    "_mul": _mul,
    "_pow": _pow,
    "_mod": _mod,
    "_container": _container,
    "_text": _text,
    "_f_len": len,
    "_f_abs": abs,
    "_f_min": _f_min,
    "_f_max": _f_max,
    "_f_round": _f_round,
    "_f_int": _f_int,
    "_f_float": float,
    "_f_str": _f_str,
    "_f_bool": bool,
    "_f_sum": _f_sum,
    "_f_any": _f_any,
    "_f_all": _f_all,
    "_f_sorted": _f_sorted,
}
"""What compiled expressions see besides their context: the helpers, under names a user cannot
write (they start with ``_``), and no builtins at all."""


@dataclass(frozen=True, slots=True)
class _Signature:
    least: int
    most: int | None
    keywords: frozenset[str] = frozenset()


_SIGNATURES: Final[Mapping[str, _Signature]] = {
    "len": _Signature(1, 1),
    "abs": _Signature(1, 1),
    "min": _Signature(1, None, frozenset({"default"})),
    "max": _Signature(1, None, frozenset({"default"})),
    "round": _Signature(1, 2),
    "int": _Signature(0, 2),
    "float": _Signature(0, 1),
    "str": _Signature(0, 1),
    "bool": _Signature(0, 1),
    "sum": _Signature(1, 2),
    "any": _Signature(1, 1),
    "all": _Signature(1, 1),
    "sorted": _Signature(1, 1, frozenset({"reverse"})),
}


# -- turning runtime failures into messages ---------------------------------------------------

_OPERATORS: Final[Mapping[type, str]] = {
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

_FOLD: Final[Mapping[type, Callable[..., Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
    ast.Not: operator.not_,
}

_TWO_TYPES: Final = re.compile(r"'([^']+)' and '([^']+)'")
_CONCATENATE: Final = re.compile(r'can only concatenate (\w+) \(not "([^"]+)"\)')
_ONE_TYPE: Final = re.compile(r"'([^']+)'\s*$")
_NOT_SUPPORTED: Final = re.compile(r"'([^']+)' not supported between instances of '([^']+)'")
_UNDEFINED_FOR: Final = (
    re.compile(r"object of type '([^']+)' has no len\(\)"),
    re.compile(r"bad operand type for \w+\(\): '([^']+)'"),
    re.compile(r"type (\S+) doesn't define __\w+__ method"),
)


def _plain(type_name: str) -> str:
    return "None" if type_name == "NoneType" else type_name


def _clean(message: str) -> str:
    """A Python message as it may be shown: bounded, and without dunder names."""
    message = message.replace("NoneType", "None")
    if "__" in message:
        return "the operation is not supported for these values"
    return _clip(message, 200)


def _type_error(message: str, node: ast.AST | None) -> str:
    """A ``TypeError`` reworded from the kind of node that raised it."""
    if "unhashable type" in message:
        found = _ONE_TYPE.search(message)
        kind = _plain(found[1]) if found else "value"
        return f"a {kind} cannot be a dict key or a set item (it is unhashable)"
    compared = _NOT_SUPPORTED.search(message)
    pair = _TWO_TYPES.search(message)
    if isinstance(node, ast.BinOp):
        symbol = _OPERATORS[type(node.op)]
        pair = pair or _CONCATENATE.search(message)
        if pair:
            return f"cannot apply '{symbol}' to {_plain(pair[1])} and {_plain(pair[2])}"
        if "multiply sequence by non-int" in message:
            return "'*' repeats a sequence an integer number of times only"
        return f"cannot apply '{symbol}' to these values ({_clean(message)})"
    if isinstance(node, ast.UnaryOp):
        found = _ONE_TYPE.search(message)
        if found and "unary" in message:
            return f"cannot apply unary '{_OPERATORS[type(node.op)]}' to {_plain(found[1])}"
    if isinstance(node, ast.Compare) and compared and pair:
        return f"cannot compare {_plain(pair[1])} and {_plain(pair[2])} with '{compared[1]}'"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        for pattern in _UNDEFINED_FOR:
            found = pattern.search(message)
            if found:
                return f"{name}() is not defined for {_plain(found[1])}"
        if compared and pair:
            return (
                f"{name}(): cannot compare {_plain(pair[1])} and {_plain(pair[2])}"
                f" with '{compared[1]}'"
            )
        return f"{name}(): {_clean(message)}"
    if isinstance(node, ast.Name):
        return "the evaluation context is not a mapping"
    return _clean(message)


def _failure_message(error: BaseException, node: ast.AST | None) -> str:
    """What went wrong, in the user's terms, for an exception raised while evaluating
    ``node`` (the innermost expression node the failure is attributed to)."""
    if isinstance(error, _EvalError):
        return error.message
    if isinstance(error, KeyError) and isinstance(node, ast.Name):
        return f"unknown name {node.id!r}"
    if isinstance(error, ZeroDivisionError):
        if "negative power" in str(error):
            return "0 cannot be raised to a negative power"
        return "division by zero"
    if isinstance(error, OverflowError):
        detail = str(error)  # "(34, 'Numerical result out of range')" says nothing more
        return (
            f"number out of range ({_clean(detail)})"
            if detail[:1].isalpha()
            else ("number out of range")
        )
    if isinstance(error, RecursionError):
        return "a value is nested too deeply"
    if isinstance(error, MemoryError):
        return "out of memory"
    if isinstance(error, TypeError):
        return _type_error(str(error), node)
    if isinstance(error, ValueError | IndexError | KeyError):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            text = _clean(str(error))
            return text if f"{name}()" in text else f"{name}(): {text}"
        return _clean(str(error))
    return f"{type(error).__name__}: {_clean(str(error))}"


# -- compiling ----------------------------------------------------------------------------------

_Span = tuple[int | None, int | None, int | None, int | None]

_NEVER_MAPPINGS: Final[Mapping[type, str]] = {
    ast.Constant: "a literal",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.JoinedStr: "an f-string",
    ast.BinOp: "the result of an operator",
    ast.UnaryOp: "the result of an operator",
    ast.Compare: "a comparison",
}

_REFUSED: Final[Mapping[type, str]] = {
    ast.Lambda: "lambdas are not supported",
    ast.ListComp: "comprehensions are not supported",
    ast.SetComp: "comprehensions are not supported",
    ast.DictComp: "comprehensions are not supported",
    ast.GeneratorExp: "generator expressions are not supported",
    ast.NamedExpr: "assignments (:=) are not supported",
    ast.Await: "'await' is not supported",
    ast.Yield: "'yield' is not supported",
    ast.YieldFrom: "'yield' is not supported",
    ast.Starred: "unpacking with '*' is not supported",
    ast.Slice: "a slice is only allowed inside [...]",
    ast.FormattedValue: "a format field is only allowed inside an f-string",
}


def _singleton(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and (
        node.value is None or node.value is True or node.value is False
    )


class _Compiler:
    """Checks a parsed expression against the whitelist and rewrites it into the tree that is
    compiled: names become context lookups, dotted access and costly operators become calls to
    the bounded helpers, constant subexpressions are computed (and refused) now. Every new node
    carries the position of the node it replaces, which is how a runtime failure finds its
    column."""

    def __init__(self, source: str, text: str, lead: int) -> None:
        self.source = source
        self.lead = lead
        starts = _line_starts(text)
        ends = [*starts[1:], len(text)]
        self.starts = starts
        self.lines = [text[start:end].encode() for start, end in zip(starts, ends, strict=True)]
        self.names: set[str] = set()
        self.spans: dict[_Span, tuple[ast.AST, int | None, int | None]] = {}

    # positions

    def column(self, line: int | None, offset: int | None) -> int | None:
        """The 1-based character position in the source of a (line, UTF-8 byte) position."""
        if line is None or offset is None or not 1 <= line <= len(self.lines):
            return None
        chars = len(self.lines[line - 1][:offset].decode("utf-8", errors="ignore"))
        return self.lead + self.starts[line - 1] + chars + 1

    def range(self, node: ast.AST) -> tuple[int | None, int | None]:
        start = self.column(getattr(node, "lineno", None), getattr(node, "col_offset", None))
        end = self.column(getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))
        return start, end

    def fail(self, node: ast.AST, message: str) -> NoReturn:
        start, end = self.range(node)
        raise ExpressionError(message, self.source, start, end)

    def fail_name(self, node: ast.Attribute, message: str) -> NoReturn:
        """Refuse the ``.name`` part of ``a.name`` (at the name, not at ``a``)."""
        end = self.column(node.end_lineno, node.end_col_offset)
        start = None if end is None else max(1, end - len(node.attr))
        raise ExpressionError(message, self.source, start, end)

    @staticmethod
    def snippet(node: ast.AST) -> str:
        return _clip(ast.unparse(node), 40)

    # building nodes at the position of the node they replace

    @staticmethod
    def at(new: ast.expr, old: ast.AST) -> ast.expr:
        return ast.copy_location(new, old)

    def const(self, value: Any, old: ast.AST) -> ast.expr:
        return self.at(ast.Constant(value=value), old)

    def helper(self, name: str, args: list[ast.expr], old: ast.AST) -> ast.expr:
        function = self.at(ast.Name(id=name, ctx=ast.Load()), old)
        return self.at(ast.Call(func=function, args=args, keywords=[]), old)

    def fold(self, node: ast.AST, function: Callable[..., Any], *values: Any) -> ast.expr:
        try:
            result = function(*values)
        except Exception as error:
            self.fail(node, _failure_message(error, node))
        return self.const(result, node)

    # the whitelist

    def expr(self, node: ast.expr) -> ast.expr:
        start, end = self.range(node)
        key = (
            getattr(node, "lineno", None),
            getattr(node, "end_lineno", None),
            getattr(node, "col_offset", None),
            getattr(node, "end_col_offset", None),
        )
        self.spans[key] = (node, start, end)
        visit = getattr(self, f"visit_{type(node).__name__}", None)
        if visit is None:
            self.fail(node, _REFUSED.get(type(node), f"{type(node).__name__} is not supported"))
        result: ast.expr = visit(node)
        return result

    def private(self, name: str) -> str:
        return f"names starting with '_' are not allowed ({name!r})"

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        value = node.value
        if isinstance(value, bool | str | float) or value is None:
            return node
        if isinstance(value, int):
            if value.bit_length() > MAX_INT_BITS:
                self.fail(node, f"integer literal is too large (more than {MAX_INT_BITS:,} bits)")
            return node
        if isinstance(value, bytes):
            self.fail(node, "bytes literals are not supported")
        if isinstance(value, complex):
            self.fail(node, "complex numbers are not supported")
        self.fail(node, f"{ast.unparse(node)!r} is not supported")

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id.startswith("_"):
            self.fail(node, self.private(node.id))
        self.names.add(node.id)
        context = self.at(ast.Name(id="_c", ctx=ast.Load()), node)
        lookup = ast.Subscript(value=context, slice=self.const(node.id, node), ctx=ast.Load())
        return self.at(lookup, node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        base = self.expr(node.value)  # first, so that the leftmost offence is the one reported
        if node.attr.startswith("_"):
            self.fail_name(node, self.private(node.attr))
        what = _NEVER_MAPPINGS.get(type(node.value))
        if what is not None:
            self.fail_name(
                node,
                "dotted names read mapping keys only (like battery.level);"
                f" {what} has no key {node.attr!r}",
            )
        text = self.snippet(node.value)
        return self.helper(
            "_attr", [base, self.const(node.attr, node), self.const(text, node)], node
        )

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        base = self.expr(node.value)
        text = self.const(self.snippet(node.value), node)
        index = node.slice
        if isinstance(index, ast.Slice):
            bounds = [
                self.expr(part) if part is not None else self.const(None, node)
                for part in (index.lower, index.upper, index.step)
            ]
            return self.helper("_slice", [base, *bounds, text], node)
        if isinstance(index, ast.Tuple) and any(isinstance(e, ast.Slice) for e in index.elts):
            self.fail(index, "multi-dimensional slices are not supported")
        return self.helper("_item", [base, self.expr(index), text], node)

    def visit_List(self, node: ast.List) -> ast.expr:
        return self.at(ast.List(elts=[self.expr(e) for e in node.elts], ctx=ast.Load()), node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return self.at(ast.Tuple(elts=[self.expr(e) for e in node.elts], ctx=ast.Load()), node)

    def visit_Set(self, node: ast.Set) -> ast.expr:
        return self.at(ast.Set(elts=[self.expr(e) for e in node.elts]), node)

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        keys: list[ast.expr | None] = []
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                self.fail(value, "unpacking with '**' is not supported")
            keys.append(self.expr(key))
        values = [self.expr(value) for value in node.values]
        return self.at(ast.Dict(keys=keys, values=values), node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        kind = type(node.op)
        if kind not in _FOLD:
            self.fail(node, f"the operator '{_OPERATORS[kind]}' is not supported")
        left, right = self.expr(node.left), self.expr(node.right)
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            return self.fold(node, _FOLD[kind], left.value, right.value)
        if kind is ast.Mod and (
            isinstance(left, ast.JoinedStr)
            or (isinstance(left, ast.Constant) and isinstance(left.value, str))
        ):
            self.fail(node, "'%' formatting of strings is not supported; use an f-string or '+'")
        if kind is ast.Mult:
            self.check_repeat(node, left, right)
            self.check_repeat(node, right, left)
        name = {ast.Mult: "_mul", ast.Pow: "_pow", ast.Mod: "_mod"}.get(kind)
        if name is not None:
            return self.helper(name, [left, right], node)
        return self.at(ast.BinOp(left=left, op=node.op, right=right), node)

    def check_repeat(self, node: ast.BinOp, display: ast.expr, times: ast.expr) -> None:
        """``[a, b] * 10**6`` is refused now: its size is known without running it."""
        if (
            isinstance(display, ast.List | ast.Tuple)
            and isinstance(times, ast.Constant)
            and isinstance(times.value, int)
            and times.value * len(display.elts) > MAX_SIZE
        ):
            self.fail(node, f"'*' result is too large (more than {MAX_SIZE:,} items)")

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        operand = self.expr(node.operand)
        if isinstance(operand, ast.Constant):
            return self.fold(node, _FOLD[type(node.op)], operand.value)
        return self.at(ast.UnaryOp(op=node.op, operand=operand), node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        return self.at(ast.BoolOp(op=node.op, values=[self.expr(v) for v in node.values]), node)

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        test, body, orelse = self.expr(node.test), self.expr(node.body), self.expr(node.orelse)
        return self.at(ast.IfExp(test=test, body=body, orelse=orelse), node)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            if isinstance(op, ast.Is | ast.IsNot) and not (
                _singleton(operands[index]) or _singleton(operands[index + 1])
            ):
                self.fail(
                    node,
                    f"'{_OPERATORS[type(op)]}' compares with None, True or False only;"
                    " use '==' or '!=' for other values",
                )
        rewritten = [self.expr(operand) for operand in operands]
        for index, op in enumerate(node.ops):
            right = operands[index + 1]
            literal = isinstance(right, ast.List | ast.Tuple | ast.Set | ast.Dict) or (
                isinstance(right, ast.Constant) and isinstance(right.value, str)
            )
            if isinstance(op, ast.In | ast.NotIn) and not literal:
                text = self.const(self.snippet(right), right)
                rewritten[index + 1] = self.helper(
                    "_container", [rewritten[index + 1], text], right
                )
        compare = ast.Compare(left=rewritten[0], ops=node.ops, comparators=rewritten[1:])
        return self.at(compare, node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        function = node.func
        if not isinstance(function, ast.Name):
            self.expr(function)  # a more precise refusal if there is one (a lambda, a '_' name)
            self.fail(
                function,
                f"calls are limited to {_CALLS_ALLOWED} (not {self.snippet(function)!r})",
            )
        name = function.id
        signature = _SIGNATURES.get(name)
        if signature is None:
            self.fail(function, f"calls are limited to {_CALLS_ALLOWED} (not {name!r})")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "unpacking with '*' is not supported")
        for keyword in node.keywords:
            if keyword.arg is None:
                self.fail(keyword, "unpacking with '**' is not supported")
            if keyword.arg not in signature.keywords:
                allowed = ", ".join(f"{k}=" for k in sorted(signature.keywords))
                self.fail(
                    keyword,
                    f"{name}() accepts no keyword argument {keyword.arg!r}"
                    + (f" (only {allowed})" if allowed else ""),
                )
        count = len(node.args)
        if count < signature.least or (signature.most is not None and count > signature.most):
            if signature.most is None:
                expected = f"at least {signature.least} argument"
            elif signature.least == signature.most:
                expected = f"exactly {signature.least} argument"
            else:
                expected = f"{signature.least} to {signature.most} argument"
            plural = "" if (signature.most or signature.least) == 1 else "s"
            self.fail(node, f"{name}() takes {expected}{plural} ({count} given)")
        if node.keywords and name in ("min", "max") and count != 1:
            self.fail(node, f"{name}() accepts default= only with a single collection")
        args = [self.expr(arg) for arg in node.args]
        keywords = [ast.keyword(arg=k.arg, value=self.expr(k.value)) for k in node.keywords]
        target = self.at(ast.Name(id=f"_f_{name}", ctx=ast.Load()), function)
        return self.at(ast.Call(func=target, args=args, keywords=keywords), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        values: list[ast.expr] = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                values.append(part)
                continue
            assert isinstance(part, ast.FormattedValue)
            if part.conversion != -1 or part.format_spec is not None:
                self.fail(
                    part,
                    "f-string fields are plain {expression} only:"
                    " no conversions (!r), format specs (:...) or '='",
                )
            text = self.helper("_text", [self.expr(part.value)], part.value)
            values.append(
                self.at(ast.FormattedValue(value=text, conversion=-1, format_spec=None), part)
            )
        return self.at(ast.JoinedStr(values=values), node)


def _measure(source: str, body: ast.expr, compiler: _Compiler) -> None:
    """Refuse a tree over the node or depth limit before anything recursive looks at it."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            count += 1
            if count > MAX_NODES:
                raise ExpressionError(
                    f"expression is too large (more than {MAX_NODES} elements)", source
                )
            if depth > MAX_DEPTH:
                compiler.fail(
                    node, f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
                )
            depth += 1
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))


def _line_starts(text: str) -> list[int]:
    """Where each line of ``text`` starts (``\r\n``, ``\r`` and ``\n`` end a line, as for
    Python's tokenizer)."""
    return [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]


def _syntax_error(source: str, text: str, lead: int, error: SyntaxError) -> ExpressionError:
    message = error.msg or "invalid syntax"
    if not message.startswith("invalid syntax"):
        message = f"invalid syntax: {message}"
    if error.lineno is None:
        return ExpressionError(message, source)
    if not error.offset or error.offset < 1:
        if message == "invalid syntax":
            message = "invalid syntax: the expression is incomplete"
        return ExpressionError(message, source, len(source.rstrip()) + 1)
    starts = _line_starts(text)
    line = min(max(error.lineno, 1), len(starts))
    # the offset counts characters within the line (the parser's offsets are not bytes)
    return ExpressionError(
        message, source, min(lead + starts[line - 1] + error.offset, len(source) + 1)
    )


def _parse(source: str) -> tuple[ast.Expression, str, int]:
    """Parse ``source`` as one expression; leading blanks are allowed (they are not Python's
    indentation here) and counted in columns."""
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string, not {_describe(source)}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(source):,} characters;"
            f" the limit is {MAX_SOURCE_LENGTH:,})",
            _clip(source, 100),
        )
    text = source.lstrip(" \t\f\r\n")
    lead = len(source) - len(text)
    if not text.strip():
        raise ExpressionError("empty expression", source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise _syntax_error(source, text, lead, error) from None
    except (MemoryError, RecursionError):
        raise ExpressionError("expression is nested too deeply", source) from None
    except ValueError as error:  # e.g. NUL characters
        raise ExpressionError(f"invalid syntax: {_clean(str(error))}", source) from None
    return tree, text, lead


class Expression:
    """A checked, compiled expression: compile once when a breakpoint or watch is set, then
    :meth:`evaluate` on every hit for a few microseconds."""

    __slots__ = ("_function", "_spans", "names", "source")

    source: str
    """The text as the user typed it."""
    names: frozenset[str]
    """The context names it reads (``battery``, ``status``): for data breakpoints and
    completion. Function names are not included."""

    def __init__(
        self,
        source: str,
        names: frozenset[str],
        function: Callable[[Mapping[str, Any]], Any],
        spans: Mapping[_Span, tuple[ast.AST, int | None, int | None]],
    ) -> None:
        self.source = source
        self.names = names
        self._function = function
        self._spans = spans

    @classmethod
    def compile(cls, source: str) -> Expression:
        """Check ``source`` against the language and compile it.

        Raises :class:`ExpressionError` for a syntax error or a refused construct, with its
        column; constant parts are computed here, so ``1/0`` or ``9**9**9`` fail now.
        Compiled expressions are immutable and remembered by their text: a watch or a hover is
        evaluated again and again, and compiling costs a hundred times more than evaluating.
        """
        if not isinstance(source, str):  # refused by the parser, with its own message
            return cls._compile(source)
        return _compiled(cls, source)

    @classmethod
    def _compile(cls, source: str) -> Expression:
        tree, text, lead = _parse(source)
        compiler = _Compiler(source, text, lead)
        _measure(source, tree.body, compiler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = compiler.expr(tree.body)
            arguments = ast.arguments(
                posonlyargs=[],
                args=[ast.arg(arg="_c")],
                kwonlyargs=[],
                kw_defaults=[],
                defaults=[],
            )
            lambda_ = compiler.at(ast.Lambda(args=arguments, body=body), tree.body)
            wrapper = ast.fix_missing_locations(ast.Expression(body=lambda_))
            try:
                code = compile(wrapper, "<expression>", "eval")
            except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
                raise ExpressionError(f"cannot compile: {_clean(str(error))}", source) from None
        function = eval(code, _GLOBALS)  # the lambda: context -> value; only helpers in scope
        return cls(source, frozenset(compiler.names), function, compiler.spans)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value of the expression over ``context`` (names → values).

        Raises :class:`ExpressionError` for an unknown name, an operation on values of the
        wrong type, a division by zero or a bound exceeded, with the column of the part that
        failed; nothing else escapes.
        """
        try:
            return self._function(context)
        except Exception as error:
            raise self._failure(error) from None

    def truthy(self, context: Mapping[str, Any]) -> bool:
        """Whether the expression holds: the test of a condition (a value whose truth is
        undefined, such as an array, is an :class:`ExpressionError`)."""
        try:
            return bool(self._function(context))
        except Exception as error:
            raise self._failure(error) from None

    def _failure(self, error: Exception) -> ExpressionError:
        """Place ``error`` on the innermost expression node it happened in: the instruction
        that failed in the compiled function carries that node's source position."""
        node, start, end = self._locate(error.__traceback__)
        return ExpressionError(_failure_message(error, node), self.source, start, end)

    def _locate(
        self, traceback: TracebackType | None
    ) -> tuple[ast.AST | None, int | None, int | None]:
        code = getattr(self._function, "__code__", None)
        found: tuple[ast.AST | None, int | None, int | None] = (None, None, None)
        while traceback is not None:
            if traceback.tb_frame.f_code is code:
                positions = list(code.co_positions())  # type: ignore[union-attr]
                index = traceback.tb_lasti // 2
                if 0 <= index < len(positions):
                    found = self._spans.get(positions[index], found)
            traceback = traceback.tb_next
        return found

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


@functools.lru_cache(maxsize=1024)
def _compiled(cls: type[Expression], source: str) -> Expression:
    return cls._compile(source)


class Template:
    """A logpoint message: text with ``{expression}`` fields (DAP logpoint syntax), ``{{`` and
    ``}}`` for literal braces. Rendering never raises, because a logpoint must never break the
    tree: a field that fails renders as ``<error: message>``."""

    __slots__ = ("_parts", "names", "source")

    source: str
    """The template as the user typed it."""
    names: frozenset[str]
    """The context names its fields read."""

    def __init__(self, source: str, parts: tuple[str | Expression, ...]) -> None:
        self.source = source
        self._parts = parts
        self.names = frozenset(
            name for part in parts if isinstance(part, Expression) for name in part.names
        )

    @property
    def expressions(self) -> tuple[Expression, ...]:
        """The compiled fields, in order."""
        return tuple(part for part in self._parts if isinstance(part, Expression))

    @classmethod
    def compile(cls, source: str) -> Template:
        """Split ``source`` into text and fields and compile each field.

        Raises :class:`ExpressionError` for an unclosed ``{``, a lone ``}``, an empty field or
        a field that does not compile; columns count from the start of the template.
        """
        if not isinstance(source, str):
            raise ExpressionError(f"a template must be a string, not {_describe(source)}")
        if len(source) > MAX_SOURCE_LENGTH:
            raise ExpressionError(
                f"template is too long ({len(source):,} characters;"
                f" the limit is {MAX_SOURCE_LENGTH:,})",
                _clip(source, 100),
            )
        parts: list[str | Expression] = []
        text: list[str] = []
        index, length = 0, len(source)
        while index < length:
            char = source[index]
            if char in "{}" and source.startswith(char * 2, index):
                text.append(char)
                index += 2
            elif char == "}":
                raise ExpressionError("a single '}' must be written '}}'", source, index + 1)
            elif char == "{":
                end = _field_end(source, index)
                inner = source[index + 1 : end]
                if not inner.strip():
                    raise ExpressionError("empty field '{}'", source, index + 1, end + 2)
                try:
                    expression = Expression.compile(inner)
                except ExpressionError as error:
                    shift = index + 1
                    raise ExpressionError(
                        error.message,
                        source,
                        None if error.column is None else error.column + shift,
                        None if error.end_column is None else error.end_column + shift,
                    ) from None
                if text:
                    parts.append("".join(text))
                    text = []
                parts.append(expression)
                index = end + 1
            else:
                text.append(char)
                index += 1
        if text:
            parts.append("".join(text))
        return cls(source, tuple(parts))

    def render(self, context: Mapping[str, Any]) -> str:
        """The message over ``context``: strings as they are, other values as ``str()`` shows
        them, each cut at 10,000 characters (ending with '…'); never raises."""
        pieces: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            try:
                text, cut = _render(part.evaluate(context), MAX_TEXT)
            except ExpressionError as error:
                pieces.append(f"<error: {error.message}>")
            except Exception as error:  # a value's own __str__ raised
                pieces.append(f"<error: {_failure_message(error, None)}>")
            else:
                pieces.append(text + "\u2026" if cut else text)
        return "".join(pieces)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _field_end(source: str, start: int) -> int:
    """The index of the ``}`` closing the field opened at ``start``: braces, brackets and
    parentheses nest, and string literals are skipped, so ``{d["}"]}`` and ``{ {1: 2} }``
    work."""
    depth = 0
    quote = ""
    index = start + 1
    while index < len(source):
        char = source[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0 and char == "}":
                return index
            depth -= 1
        index += 1
    raise ExpressionError(
        "'{' was never closed (write '{{' for a literal brace)", source, start + 1
    )


# -- hit conditions -----------------------------------------------------------------------------

_HIT_OPERATORS: Final = ("==", ">=", "<=", ">", "<", "%")
_HIT_HELP: Final = (
    "a hit condition is a number, optionally after ==, >, >=, <, <= or % (e.g. '>= 3')"
)


@dataclass(frozen=True, slots=True)
class HitCondition:
    """A DAP hit condition, checked against a breakpoint's hit count (the number of times it
    was reached with its condition true, counting from 1): ``"5"`` or ``"== 5"`` stops on the
    5th hit, ``">= 3"``/``"> 3"``/``"< 4"``/``"<= 4"`` compare, ``"% 2"`` stops on every 2nd
    hit. Nothing else is accepted, so a typo is reported instead of silently never stopping."""

    operator: str
    """One of ``== >= <= > < %``."""
    value: int

    @classmethod
    def parse(cls, text: str) -> HitCondition:
        """Parse ``text``; raises :class:`ExpressionError` (with a column) for anything else."""
        if not isinstance(text, str):
            raise ExpressionError(f"a hit condition must be a string, not {_describe(text)}")
        if len(text) > 100:
            raise ExpressionError(f"hit condition is too long; {_HIT_HELP}", _clip(text, 100))

        def fail(index: int, what: str) -> NoReturn:
            raise ExpressionError(f"{what}; {_HIT_HELP}", text, index + 1)

        index = _skip_blanks(text, 0)
        if index == len(text):
            raise ExpressionError(f"empty hit condition; {_HIT_HELP}", text)
        symbol = next((op for op in _HIT_OPERATORS if text.startswith(op, index)), "")
        after = _skip_blanks(text, index + len(symbol))
        digits_end = after
        while digits_end < len(text) and text[digits_end] in "0123456789":
            digits_end += 1
        if digits_end == after:
            if after == len(text):
                fail(after, f"a number is missing after {symbol!r}")
            fail(after, f"unexpected {text[after]!r}")
        rest = _skip_blanks(text, digits_end)
        if rest != len(text):
            fail(rest, f"unexpected {text[rest]!r}")
        if digits_end - after > 18:
            fail(after, "the number is too large")
        value = int(text[after:digits_end])
        if symbol == "%" and value == 0:
            fail(after, "'% 0' would divide by zero (use '% 1' or more)")
        return cls(symbol or "==", value)

    def matches(self, hit_count: int) -> bool:
        """Whether a breakpoint reached for the ``hit_count``-th time stops."""
        value = self.value
        match self.operator:
            case "==":
                return hit_count == value
            case ">=":
                return hit_count >= value
            case ">":
                return hit_count > value
            case "<":
                return hit_count < value
            case "<=":
                return hit_count <= value
            case _:
                return hit_count > 0 and hit_count % value == 0

    def __str__(self) -> str:
        return f"{self.operator} {self.value}"


def _skip_blanks(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t":
        index += 1
    return index


# -- blackboard keys ----------------------------------------------------------------------------


def flatten_blackboard(items: Mapping[str, Any]) -> dict[str, Any]:
    """py_trees blackboard keys (``/battery/level``, ``/robot/pose/x``) as nested dicts
    (``{"battery": {"level": ...}, "robot": {"pose": {"x": ...}}}``), so that expressions say
    ``battery.level``.

    Rules:

    - a key is split on ``/``; leading, trailing and doubled slashes are ignored (``/a//b/``
      is ``a.b``), so keys that differ only in slashes collide and the last one wins;
    - a key that is both a value and a namespace (``/battery`` = 80 and ``/battery/level`` =
      20) becomes a namespace holding its children *and* its own value under the empty key:
      ``battery[""]`` is 80 (think ``/battery/``) and ``battery.level`` is 20; if that value is
      a mapping, its keys are also readable directly (``battery.voltage``) except where a child
      key has the same name (the more specific blackboard key wins). The result does not depend
      on the order of the keys;
    - values are not copied (the caller copies at capture time if it must);
    - a segment that is not an identifier (``my-key``, ``2nd``) is kept as it is and is readable
      as ``parent["my-key"]``; at the top level it cannot be named in an expression.
    """
    root: dict[str, Any] = {}
    namespaces: set[int] = set()  # ids of the dicts made here (a value may be a dict too)

    def absorb(namespace: dict[str, Any], value: Any) -> None:
        namespace[""] = value
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and key not in namespace:
                    namespace[key] = item

    for key, value in items.items():
        segments = [segment for segment in str(key).split("/") if segment] or [""]
        node = root
        for segment in segments[:-1]:
            child = node.get(segment, _NO_DEFAULT)
            if child is _NO_DEFAULT or id(child) not in namespaces:
                namespace: dict[str, Any] = {}
                namespaces.add(id(namespace))
                if child is not _NO_DEFAULT:
                    absorb(namespace, child)
                node[segment] = child = namespace
            node = child
        leaf = segments[-1]
        existing = node.get(leaf, _NO_DEFAULT)
        if existing is not _NO_DEFAULT and id(existing) in namespaces:
            absorb(existing, value)
        else:
            node[leaf] = value
    return root
