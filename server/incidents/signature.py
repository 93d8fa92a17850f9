"""Signatures: which error reports are the same bug.

A signature is the SHA-256 of the exception type and the in-app frames it passed through,
each named by module (or file) and function, never by line: an edit above a function moves
its lines without changing the bug. Frames from libraries are left out when the report has
in-app ones, so the same bug reached through another version of a library stays one; directly
recursive frames count once, so the depth a recursion reached does not split it. The message
takes part only when there are no frames at all (a logged error), and then with what varies
between occurrences of one bug — ids, numbers, hex addresses, UUIDs, temporary paths —
replaced by placeholders.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final

from .evidence import Frame

__all__ = ["frame_names", "normalise_message", "signature_of"]

_PATTERNS: Final = (
    # Order matters: a UUID or an address holds digits the later patterns would take apart.
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (
        re.compile(
            r"(?:/tmp|/var/tmp|/private/var/folders|/var/folders|/dev/shm)/[^\s'\"),:]*"
            r"|[A-Za-z]:\\[^\s'\"]*\\Temp\\[^\s'\"),:]*",
            re.I,
        ),
        "<tmp>",
    ),
    # Long hexadecimal runs with a digit in them: hashes, object and request ids.
    (re.compile(r"\b(?=[0-9a-f]*[0-9])[0-9a-f]{8,}\b", re.I), "<id>"),
    # Every other number, also one glued to a word (user_42, id=7): placeholders hold none.
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def normalise_message(message: str) -> str:
    """``message`` with what varies between occurrences of one bug replaced by placeholders."""
    for pattern, placeholder in _PATTERNS:
        message = pattern.sub(placeholder, message)
    return message


def frame_names(frames: Sequence[Frame]) -> list[str]:
    """The ``module:function`` names the signature is made of: in-app frames (every frame
    when none is in-app), consecutive repeats once."""
    chosen = [frame for frame in frames if frame.in_app] or list(frames)
    names: list[str] = []
    for frame in chosen:
        where = frame.module or normalise_message(frame.file)
        name = f"{where}:{frame.function}"
        if not names or names[-1] != name:
            names.append(name)
    return names


def signature_of(exception_type: str, frames: Sequence[Frame], message: str) -> str:
    """The signature (64 hex digits) of an error report."""
    parts = [exception_type, *frame_names(frames)]
    if not frames:
        parts.append(normalise_message(message))
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
