"""DAP's wire format: ``Content-Length`` headers, a blank line, a JSON body. Nothing else.

Reading never gives up on a stream: a bad header block or a body that is not a JSON object is
reported as a :class:`FramingError` (with what was wrong) and the reader stays positioned at the
next message. Writing sends header and body in one ``write`` — split writes cost debugpy ~44 ms a
message through delayed ACKs.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Final

import orjson

from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import loads

__all__ = ["MAX_MESSAGE_BYTES", "FramingError", "MessageReader", "encode"]

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
_MAX_HEADER_BYTES: Final = 8192


class FramingError(Exception):
    """One message could not be read; the stream can go on. ``seq`` is the request's number
    when the unreadable body still shows it, so that the request gets its (failed) answer
    rather than leaving its client waiting."""

    def __init__(self, message: str, seq: int | None = None, command: str = "") -> None:
        super().__init__(message)
        self.seq = seq
        self.command = command


_SEQ: Final = re.compile(rb'"seq"\s*:\s*([0-9]{1,18})\b')
_COMMAND: Final = re.compile(rb'"command"\s*:\s*"([A-Za-z0-9_/]{1,64})"')


def encode(message: dict[str, Any]) -> bytes:
    """Header and body as one buffer (orjson: several times faster on large variable lists;
    ``str()`` for anything it cannot encode natively)."""
    try:
        body = orjson.dumps(message, default=str)
    except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
        body = json.dumps(message, default=str, ensure_ascii=False).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class MessageReader:
    """Reads messages from a stream; ``None`` at the end of the stream."""

    def __init__(self, reader: asyncio.StreamReader, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._reader = reader
        self._max_bytes = max_bytes

    async def read(self) -> dict[str, Any] | None:
        """The next message, or None when the peer closed. Raises FramingError for one bad
        message, after consuming it."""
        length = await self._read_headers()
        if length is None:
            return None
        try:
            body = await self._reader.readexactly(length)
        except asyncio.IncompleteReadError:
            return None
        try:
            message = loads(body)
        except InvalidJson as exc:
            seq, command = _SEQ.search(body), _COMMAND.search(body)
            raise FramingError(
                f"message body is not valid JSON: {exc}",
                int(seq[1]) if seq else None,
                command[1].decode() if command else "",
            ) from None
        if not isinstance(message, dict):
            raise FramingError(f"message body must be a JSON object, not {type(message).__name__}")
        return message

    async def _read_headers(self) -> int | None:
        length: int | None = None
        problem: str | None = None
        seen = 0
        while True:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.IncompleteReadError:
                return None
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
                problem = "a header line is too long"
                continue
            seen += len(line)
            if line == b"\r\n":
                if not seen - 2 and length is None and problem is None:
                    continue  # stray blank line between messages
                break
            if seen > _MAX_HEADER_BYTES:
                problem = "the header block is too long"
                continue
            text = line.decode("latin-1").strip()
            # After a broken message the rest of its body may precede the next header.
            found = text.lower().rfind("content-length:")
            if found >= 0:
                value = text[found + len("content-length:") :]
                try:
                    length = int(value.strip())
                except ValueError:
                    problem = f"Content-Length is not a number: {value.strip()!r}"
                    continue
                if length < 0:
                    problem = f"Content-Length cannot be negative: {length}"
        if problem is None and length is None:
            problem = "the header block has no Content-Length"
        if problem is None and length is not None and length > self._max_bytes:
            await self._discard(length)
            problem = f"message of {length} bytes is over the limit of {self._max_bytes}"
        if problem is not None:
            raise FramingError(problem)
        return length

    async def _discard(self, count: int) -> None:
        while count > 0:
            chunk = await self._reader.read(min(count, 65536))
            if not chunk:
                return
            count -= len(chunk)
