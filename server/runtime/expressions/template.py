"""Logpoint templates: text with ``{expression}`` fields, compiled once and rendered on every
hit without ever raising."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ExpressionError
from .expression import Expression
from .limits import MAX_TEXT
from .messages import failure_message
from .parsing import check_source
from .text import render


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
        check_source(source, "template", "a")
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
                text, cut = render(part.evaluate(context), MAX_TEXT)
            except ExpressionError as error:
                pieces.append(f"<error: {error.message}>")
            except Exception as error:  # a value's own __str__ raised
                pieces.append(f"<error: {failure_message(error, None)}>")
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
