"""The evaluator's helpers for operators and access: every operation that could cost without
bound, or read more than data, goes through one of these (the compiler rewrites ``a.b``,
``x[i]``, ``x[a:b]``, ``*``, ``**``, ``%`` and ``in`` into calls to them). Each checks what it
can cheaply know and fails with its own :class:`~.errors.EvalError` message."""

from __future__ import annotations

import numbers
import operator
from collections.abc import Container, Mapping
from typing import Any, Final

from .errors import EvalError
from .limits import MAX_EXPONENT, MAX_INT_BITS, MAX_SIZE
from .text import describe, short_repr

SEQUENCES: Final = (str, bytes, bytearray, list, tuple)
FAST_CONTAINERS: Final = frozenset({dict, list, tuple, set, frozenset, str})
TOO_LARGE: Final = f"integer result is too large (more than {MAX_INT_BITS:,} bits)"


def hashable(value: Any) -> bool:
    """Whether ``value`` can be a key: asked of the value, not read from an error."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def check_int(value: Any) -> Any:
    """``value``, unless it is an integer over :data:`MAX_INT_BITS`."""
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        raise EvalError(TOO_LARGE)
    return value


def attr(value: Any, key: str, text: str) -> Any:
    """``a.b``: a key of a mapping, never an attribute of an object."""
    if type(value) is dict or isinstance(value, Mapping):
        try:
            return value[key]
        except KeyError:
            raise EvalError(f"{text!r} has no key {key!r}") from None
    raise EvalError(
        f"{text!r} is {describe(value)}, not a mapping: dotted names read mapping keys only"
    )


def item(value: Any, key: Any, text: str) -> Any:
    """``x[key]``: a mapping by key, any other indexable value by its own indexing."""
    kind = type(value)
    if (
        kind not in FAST_CONTAINERS
        and not isinstance(value, Mapping)
        and not hasattr(kind, "__getitem__")
    ):
        raise EvalError(f"{text!r} is {describe(value)}, which cannot be indexed")
    try:
        return value[key]
    except KeyError:
        raise EvalError(f"{text!r} has no key {short_repr(key)}") from None
    except IndexError:
        try:
            length = f" (length {len(value):,})"
        except Exception:
            length = ""
        raise EvalError(f"index {short_repr(key)} is out of range for {text!r}{length}") from None
    except TypeError:
        if not hashable(key):
            raise EvalError(f"{describe(key)} cannot be a key (it is unhashable)") from None
        if kind in FAST_CONTAINERS and kind is not dict:
            raise EvalError(
                f"{text!r} is {describe(value)}: an index must be an integer or a slice,"
                f" not {describe(key)}"
            ) from None
        raise


def slice_of(value: Any, lower: Any, upper: Any, step: Any, text: str) -> Any:
    """``x[a:b:c]``: sequences only; the result is never larger than ``x``."""
    if isinstance(value, Mapping) or not hasattr(type(value), "__getitem__"):
        raise EvalError(f"{text!r} is {describe(value)}, which cannot be sliced")
    for bound in (lower, upper, step):
        if bound is not None and not isinstance(bound, int):
            raise EvalError(f"slice bounds must be integers or empty, not {describe(bound)}")
    if step == 0:
        raise EvalError("a slice step cannot be zero")
    return value[lower:upper:step]


def size(value: Any, budget: int) -> int:
    """Items and characters of ``value``, nested contents included and every reference counted
    (shared or cyclic parts too), stopping as soon as the count exceeds ``budget``: the work is
    bounded by the budget, and comparing or printing the value is bounded by the count. Other
    sized objects (a deque, an array) count their length without being looked into."""
    total = 0
    stack = [value]
    while stack:
        element = stack.pop()
        if isinstance(element, str | bytes | bytearray):
            total += len(element)
        elif isinstance(element, list | tuple | set | frozenset | dict):
            total += len(element)
            if total > budget:
                return total
            stack.extend(element)
            if isinstance(element, dict):
                stack.extend(element.values())
        elif hasattr(type(element), "__len__"):
            try:
                total += len(element)
            except Exception:
                total += 1
        if total > budget:
            return total
    return total


def _repeat(sequence: Any, times: Any) -> Any:
    """``sequence * times`` with the result's size, nested contents included, bounded."""
    try:
        count = operator.index(times)
    except TypeError:
        return sequence * times  # the other operand's own '*' (an array), or a TypeError
    if count > 1:
        budget = MAX_SIZE // count
        if size(sequence, budget) > budget:
            unit = "characters" if isinstance(sequence, str | bytes | bytearray) else "items"
            raise EvalError(f"'*' result is too large (more than {MAX_SIZE:,} {unit})")
    return sequence * count


def mul(left: Any, right: Any) -> Any:
    """``*`` with integers capped in size and sequence repetition capped in length."""
    left_type, right_type = type(left), type(right)
    if left_type is float or right_type is float:
        return left * right
    if left_type is int and right_type is int:
        if left and right and left.bit_length() + right.bit_length() - 1 > MAX_INT_BITS:
            raise EvalError(TOO_LARGE)
        return check_int(left * right)
    if isinstance(left, SEQUENCES):
        return _repeat(left, right)
    if isinstance(right, SEQUENCES):
        return _repeat(right, left)
    return check_int(left * right)


def power(base: Any, exponent: Any) -> Any:
    """``**`` with a bounded exponent, integers capped in size and no complex results."""
    if isinstance(exponent, numbers.Real):
        # "not <=" so that infinity is refused; NaN (never equal to itself) is harmless. The
        # abc declares abs() of a real as a protocol without order, yet every real orders.
        if not abs(exponent) <= MAX_EXPONENT and exponent == exponent:  # type: ignore[operator]
            raise EvalError(
                f"exponent {short_repr(exponent)} is too large (the limit is ±{MAX_EXPONENT:,})"
            )
        if isinstance(base, numbers.Real) and base == 0 and exponent < 0:
            raise EvalError("0 cannot be raised to a negative power")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        bits = base.bit_length()
        if bits > 1 and (bits - 1) * exponent > MAX_INT_BITS:
            raise EvalError(TOO_LARGE)
    result = base**exponent
    if type(result) is complex:
        raise EvalError("'**' result is not a real number (a negative base, fractional exponent)")
    return check_int(result)


def modulo(left: Any, right: Any) -> Any:
    """``%`` as arithmetic only: printf-style formatting could build a string of any size."""
    if isinstance(left, str | bytes | bytearray):
        raise EvalError("'%' formatting of strings is not supported; use an f-string or '+'")
    return left % right


def container(value: Any, text: str) -> Any:
    """The right side of ``in``: a collection (an iterator could run forever)."""
    if type(value) in FAST_CONTAINERS or isinstance(value, Container):
        return value
    raise EvalError(f"'in' needs a collection on its right, but {text!r} is {describe(value)}")
