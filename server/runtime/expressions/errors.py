"""The errors of the expression language: :class:`ExpressionError`, the one a caller sees, and
:class:`EvalError`, raised by the evaluator's helpers with a finished message."""

from __future__ import annotations

from canopy.bridge import CanopyError


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


class EvalError(Exception):
    """Raised by the evaluator's helpers with a finished message; its column is found afterwards
    from the position of the failing instruction, so the helpers stay small and fast."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
