"""Python tracebacks as text, read into frames: what logs carry where Sentry sends structure.

A traceback is what :func:`traceback.format_exception` writes: ``Traceback (most recent call
last):``, then per frame a ``File "...", line N, in function`` line and, when the source was
found, the line of code; then ``Type: message``. A chained exception prints each traceback in
turn, the one raised last at the end: that one is read, as Sentry's events are. Lines Python
adds besides frames (carets under the failing expression, ``[Previous line repeated N more
times]``) are skipped. Text that is not a Python traceback gives no frames, and the report is
then told apart by its type and message, as any logged error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .evidence import MAX_FRAMES, MAX_TEXT, Frame

__all__ = ["Traceback", "parse_traceback"]

_HEADER: Final = "Traceback (most recent call last):"
_FRAME: Final = re.compile(r'\s+File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+))?')
_CARETS: Final = re.compile(r"\s*[~^]+\s*")
_EXCEPTION: Final = re.compile(r"(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?")
_LIBRARY: Final = re.compile(r"[/\\](?:site-packages|dist-packages)[/\\]|[/\\]python3\.\d+[/\\]")
"""Files of installed packages and of the standard library: not the service's own code."""


@dataclass(frozen=True, slots=True)
class Traceback:
    """The exception a traceback ends with, and the frames it passed through (outermost
    first, the innermost :data:`MAX_FRAMES` of them)."""

    exception_type: str
    message: str
    frames: tuple[Frame, ...]


def _in_app(file: str) -> bool:
    return not (file.startswith("<") or _LIBRARY.search(file))


def parse_traceback(text: str) -> Traceback | None:
    """The last traceback in ``text``, or None when it holds no ``Traceback`` header."""
    lines = text.splitlines()
    starts = [index for index, line in enumerate(lines) if line.strip() == _HEADER]
    if not starts:
        return None
    frames: list[Frame] = []
    exception_type, message = "", ""
    rest = lines[starts[-1] + 1 :]
    index = 0
    while index < len(rest):
        line = rest[index]
        index += 1
        found = _FRAME.fullmatch(line)
        if found:
            context = ""
            following = rest[index] if index < len(rest) else ""
            if following.startswith("    ") and not _FRAME.fullmatch(following):
                context = following.strip()[:MAX_TEXT]
                index += 1
            file = found["file"]
            frames.append(
                Frame(
                    file=file[:MAX_TEXT],
                    function=(found["func"] or "?").strip()[:MAX_TEXT],
                    line=int(found["line"]),
                    in_app=_in_app(file),
                    context_line=context,
                )
            )
        elif line.startswith(" ") or _CARETS.fullmatch(line) or not line.strip():
            continue
        else:
            ended = _EXCEPTION.fullmatch(line)
            if ended is None:
                exception_type, message = "", line.strip()
            else:
                exception_type, message = ended["type"], (ended["message"] or "")
            # A multi-line message runs to the end of the text.
            message = "\n".join([message, *rest[index:]]).strip()[:MAX_TEXT]
            break
    return Traceback(exception_type, message, tuple(frames[-MAX_FRAMES:]))
