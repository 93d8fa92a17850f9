"""Values in words and as bounded text: how a message names a value (``an int``, ``None``),
and ``str()`` of a value that stops at a limit, so that neither a message nor a logpoint can
cost more than its length."""

from __future__ import annotations

from typing import Any, Final

from .errors import EvalError
from .limits import MAX_DEPTH, MAX_SIZE


def kind_name(value: Any) -> str:
    """``int``, ``list``, ``None``: the kind of a value as a message names it, from the value
    itself (never from a Python message)."""
    return "None" if value is None else type(value).__name__


def describe(value: Any) -> str:
    """``an int``, ``a list``, ``None``: how a message names the kind of a value."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, so that a message quoting a source or a value stays
    one readable line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: Any) -> str:
    """A bounded repr for messages; a value whose repr fails is named by its kind."""
    try:
        text, _ = render(value, 60, top=False)
    except Exception:
        return describe(value)
    return clip(text)


# -- bounded text -------------------------------------------------------------------------------


_BRACKETS: Final[dict[type, tuple[str, str]]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}
"""How a container of each kind opens and closes when shown."""


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
                raise EvalError(
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
            raise EvalError("a value is nested too deeply to show as text")
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
            opening, closing = _BRACKETS[kind]
            self.write(opening)
            for index, item in enumerate(value):
                if index:
                    self.write(", ")
                self.value(item, False)
            if kind is tuple and len(value) == 1:
                self.write(",")
            self.write(closing)
        self.active.pop()


def render(value: Any, limit: int, top: bool = True) -> tuple[str, bool]:
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


def bounded_text(value: Any) -> str:
    """``str(value)`` bounded to :data:`MAX_SIZE` characters (``str()`` and f-string fields)."""
    if type(value) is str:
        if len(value) <= MAX_SIZE:
            return value
    else:
        text, cut = render(value, MAX_SIZE)
        if not cut:
            return text
    raise EvalError(f"text is too long (more than {MAX_SIZE:,} characters)")
