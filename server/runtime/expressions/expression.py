"""A compiled expression: the object a breakpoint condition, a watch or DAP ``evaluate``
holds, compiled once and evaluated on every hit."""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from functools import partial
from types import TracebackType
from typing import Any

from .compiler import Compiled, compile_functions, compile_source
from .errors import ExpressionError
from .messages import failure_message


class Expression:
    """A checked, compiled expression: compile once when a breakpoint or watch is set, then
    :meth:`evaluate` on every hit for a few microseconds."""

    __slots__ = ("_compiled", "_function", "names", "source")

    source: str
    """The text as the user typed it."""
    names: frozenset[str]
    """The context names it reads (``battery``, ``status``): for data breakpoints and
    completion. Function names are not included."""

    def __init__(self, source: str, compiled: Compiled) -> None:
        self.source = source
        self.names = compiled.names
        self._compiled = compiled
        self._function = compiled.function

    @classmethod
    def compile(cls, source: str) -> Expression:
        """Check ``source`` against the language and compile it.

        Raises :class:`ExpressionError` for a syntax error or a refused construct, with its
        column; constant parts are computed here, so ``1/0`` or ``9**9**9`` fail now.
        Compiled expressions are immutable and remembered by their text: a watch or a hover is
        evaluated again and again, and compiling costs a hundred times more than evaluating.
        """
        text: object = source  # what a client sent may be anything: the parser refuses it
        if not isinstance(text, str):
            return cls(source, compile_source(source))
        return _compiled(text)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value of the expression over ``context`` (names → values).

        Raises :class:`ExpressionError` for an unknown name, an operation on values of the
        wrong type, a division by zero or a bound exceeded, with the column of the part that
        failed; nothing else escapes.
        """
        try:
            return self._function(context)
        except Exception as error:
            raise self._failure(error, context) from None

    def truthy(self, context: Mapping[str, Any]) -> bool:
        """Whether the expression holds: the test of a condition (a value whose truth is
        undefined, such as an array, is an :class:`ExpressionError`)."""
        try:
            return bool(self._function(context))
        except Exception as error:
            raise self._failure(error, context) from None

    def _failure(self, error: Exception, context: Mapping[str, Any]) -> ExpressionError:
        """Place ``error`` on the innermost expression node it happened in (the instruction
        that failed in the compiled function carries that node's source position), and say
        what failed from that node and its operands."""
        node, start, end = self._locate(error.__traceback__)
        # only a TypeError is explained by its operands; the others carry what they need
        operands = (
            self._compiled.operands.get(node, ())
            if node is not None and isinstance(error, TypeError)
            else ()
        )
        functions = compile_functions(operands) if operands else ()
        thunks = [partial(function, context) for function in functions]
        return ExpressionError(failure_message(error, node, thunks), self.source, start, end)

    def _locate(
        self, traceback: TracebackType | None
    ) -> tuple[ast.AST | None, int | None, int | None]:
        code = getattr(self._function, "__code__", None)
        found: tuple[ast.AST | None, int | None, int | None] = (None, None, None)
        while traceback is not None:
            if traceback.tb_frame.f_code is code:
                positions = list(code.co_positions())
                index = traceback.tb_lasti // 2
                if 0 <= index < len(positions):
                    found = self._compiled.spans.get(positions[index], found)
            traceback = traceback.tb_next
        return found

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> Expression:
    return Expression(source, compile_source(source))
