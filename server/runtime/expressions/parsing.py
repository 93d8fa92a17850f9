"""Source text to a Python syntax tree: one expression, parsed by Python's own parser (users
already know the syntax), with a syntax error placed at its column in the user's source."""

from __future__ import annotations

import ast
import re
import warnings

from .errors import ExpressionError
from .limits import MAX_SOURCE_LENGTH
from .text import clip, describe


def line_starts(text: str) -> list[int]:
    """Where each line of ``text`` starts (``\r\n``, ``\r`` and ``\n`` end a line, as for
    Python's tokenizer)."""
    return [0] + [match.end() for match in re.finditer(r"\r\n|\r|\n", text)]


def _syntax_error(source: str, text: str, lead: int, error: SyntaxError) -> ExpressionError:
    """The parser's own message after ``invalid syntax:``, placed in the user's source (the
    parser saw the text without its leading blanks)."""
    message = error.msg or "invalid syntax"
    if not message.startswith("invalid syntax"):
        message = f"invalid syntax: {message}"
    if error.lineno is None:
        return ExpressionError(message, source)
    if not error.offset or error.offset < 1:
        if message == "invalid syntax":
            message = "invalid syntax: the expression is incomplete"
        return ExpressionError(message, source, len(source.rstrip()) + 1)
    starts = line_starts(text)
    line = min(max(error.lineno, 1), len(starts))
    # the offset counts characters within the line (the parser's offsets are not bytes)
    return ExpressionError(
        message, source, min(lead + starts[line - 1] + error.offset, len(source) + 1)
    )


def check_source(source: object, what: str, article: str) -> None:
    """Refuse what is not text, or text longer than the language allows, before any work is
    spent on it (``what`` names it for the message: an expression, a template)."""
    if not isinstance(source, str):
        raise ExpressionError(f"{article} {what} must be a string, not {describe(source)}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"{what} is too long ({len(source):,} characters; the limit is {MAX_SOURCE_LENGTH:,})",
            clip(source, 100),
        )


def parse(source: str) -> tuple[ast.Expression, str, int]:
    """Parse ``source`` as one expression; leading blanks are allowed (they are not Python's
    indentation here) and counted in columns."""
    check_source(source, "expression", "an")
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
        raise ExpressionError(f"invalid syntax: {clip(str(error), 200)}", source) from None
    return tree, text, lead
