"""DAP hit conditions (``"5"``, ``">= 3"``, ``"% 2"``): a small grammar of its own, parsed
strictly so that a typo is reported instead of silently never stopping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NoReturn

from .errors import ExpressionError
from .text import clip, describe

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
            raise ExpressionError(f"a hit condition must be a string, not {describe(text)}")
        if len(text) > 100:
            raise ExpressionError(f"hit condition is too long; {_HIT_HELP}", clip(text, 100))

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
