"""The functions an expression may call: their descriptions (for completion), their signatures
(checked when compiling) and their bounded implementations (what a call runs)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from .errors import EvalError
from .limits import MAX_EXPONENT, MAX_INT_BITS, MAX_ITEMS
from .operations import FAST_CONTAINERS, check_int
from .text import bounded_text, describe, short_repr

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


@dataclass(frozen=True, slots=True)
class Signature:
    """What a call may pass: checked when compiling, so that a wrong call is refused when the
    breakpoint is set."""

    least: int
    most: int | None
    keywords: frozenset[str] = frozenset()


SIGNATURES: Final[Mapping[str, Signature]] = {
    "len": Signature(1, 1),
    "abs": Signature(1, 1),
    "min": Signature(1, None, frozenset({"default"})),
    "max": Signature(1, None, frozenset({"default"})),
    "round": Signature(1, 2),
    "int": Signature(0, 2),
    "float": Signature(0, 1),
    "str": Signature(0, 1),
    "bool": Signature(0, 1),
    "sum": Signature(1, 2),
    "any": Signature(1, 1),
    "all": Signature(1, 1),
    "sorted": Signature(1, 1, frozenset({"reverse"})),
}

ORDERING: Final = frozenset({"min", "max", "sorted"})
"""The functions that compare their items with each other."""


def _collection(value: Any, function: str) -> Any:
    """The argument of ``sorted min max sum any all``: a finite collection of bounded size."""
    if type(value) not in FAST_CONTAINERS and not isinstance(value, Collection):
        raise EvalError(
            f"{function}() needs a collection (a list, tuple, set, dict or string),"
            f" not {describe(value)}"
        )
    count = len(value)
    if count > MAX_ITEMS:
        raise EvalError(f"{function}() of {count:,} items is over the limit of {MAX_ITEMS:,}")
    return value


_NO_DEFAULT: Final = object()


def _min(*args: Any, default: Any = _NO_DEFAULT) -> Any:
    return _extreme(min, "min", args, default)


def _max(*args: Any, default: Any = _NO_DEFAULT) -> Any:
    return _extreme(max, "max", args, default)


def _extreme(function: Callable[..., Any], name: str, args: tuple[Any, ...], default: Any) -> Any:
    if len(args) > 1:
        return function(args)
    items = _collection(args[0], name)
    if default is not _NO_DEFAULT:
        return function(items, default=default)
    if len(items) == 0:
        raise EvalError(f"{name}() of an empty collection (give a default=...)")
    return function(items)


def _round(number: Any, ndigits: Any = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise EvalError(f"round() to {ndigits:,} digits is over the limit of ±{MAX_EXPONENT:,}")
    return check_int(round(number) if ndigits is None else round(number, ndigits))


def _int(value: Any = 0, base: Any = None) -> Any:
    """``int()``: a text is checked before Python converts it, so that the refusals are Canopy's
    (a text of more than :data:`MAX_INT_BITS` characters cannot hold a bounded integer)."""
    if base is None and not isinstance(value, str | bytes | bytearray):
        return check_int(int(value))
    if not isinstance(value, str | bytes | bytearray):
        raise EvalError(f"int() with a base converts a string, not {describe(value)}")
    if base is None:
        base = 10
    if type(base) is not int or not (base == 0 or 2 <= base <= 36):
        raise EvalError(f"int(): the base must be 0 or from 2 to 36, not {short_repr(base)}")
    if len(value) > MAX_INT_BITS:
        raise EvalError(
            f"int(): a text of {len(value):,} characters is too long"
            f" (an integer has at most {MAX_INT_BITS:,} bits)"
        )
    try:
        result = int(value, base)
    except ValueError:
        what = "an integer literal" if base == 0 else f"an integer in base {base}"
        raise EvalError(f"int(): {short_repr(value)} is not {what}") from None
    return check_int(result)


def _float(*args: Any) -> float:
    """``float()``: only a text can hold something that is not a number."""
    if not args:
        return 0.0
    value = args[0]
    try:
        return float(value)
    except ValueError:
        if isinstance(value, str | bytes | bytearray):
            raise EvalError(f"float(): {short_repr(value)} is not a number") from None
        raise


def _str(*args: Any) -> str:
    return bounded_text(args[0]) if args else ""


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float or kind is bool or isinstance(value, numbers.Number)


def _sum(items: Any, start: Any = 0) -> Any:
    items = _collection(items, "sum")
    if not _is_number(start):
        raise EvalError(f"sum() adds numbers only, not {describe(start)}")
    for element in items:
        if not _is_number(element):
            raise EvalError(f"sum() adds numbers only, not {describe(element)}")
    return check_int(sum(items, start))


def _sorted(items: Any, reverse: Any = False) -> list[Any]:
    return sorted(_collection(items, "sorted"), reverse=reverse)


def _any(items: Any) -> bool:
    return any(_collection(items, "any"))


def _all(items: Any) -> bool:
    return all(_collection(items, "all"))


IMPLEMENTATIONS: Final[Mapping[str, Callable[..., Any]]] = MappingProxyType(
    {
        "len": len,
        "abs": abs,
        "min": _min,
        "max": _max,
        "round": _round,
        "int": _int,
        "float": _float,
        "str": _str,
        "bool": bool,
        "sum": _sum,
        "any": _any,
        "all": _all,
        "sorted": _sorted,
    }
)
"""What a call of each function of :data:`FUNCTIONS` runs."""
