"""What the language server and its checking process say to each other, and how.

Each message is one frame: four bytes of length (big-endian), then that many bytes of JSON
encoding one of the typed messages below. The server writes a request and reads its reply
before the next (one request in flight), so neither side ever queues more than one frame.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO, Final

import msgspec

from canopy.server.runtime.definition import Problem, SourceLocation

__all__ = [
    "HEADER_SIZE",
    "MAX_FRAME",
    "Check",
    "Checked",
    "Failed",
    "Locate",
    "Located",
    "Ready",
    "Reply",
    "Request",
    "decode_reply",
    "decode_request",
    "encode",
    "frame_size",
    "read_frame",
    "write_frame",
]

MAX_FRAME: Final = 64 * 1024 * 1024
"""A longer frame is a broken peer, not a message (a tree file is at most 1 MiB)."""
_HEADER: Final = struct.Struct(">I")
HEADER_SIZE: Final = _HEADER.size


class Check(msgspec.Struct, tag="check", frozen=True):
    """Load the tree file ``path`` holding ``text``, as a launch would."""

    path: str
    text: str


class Locate(msgspec.Struct, tag="locate", frozen=True):
    """Where the class of the node around ``line`` of the tree ``path`` holding ``text`` is."""

    path: str
    text: str
    line: int


Request = Check | Locate


class Ready(msgspec.Struct, tag="ready", frozen=True):
    """The checking process's first frame: it has imported the runtime, and waits for requests
    (a check's deadline counts from here, so it is the user's imports that it bounds)."""


class Checked(msgspec.Struct, tag="checked", frozen=True):
    """Every problem found (none: the tree loads), and the files of the modules the checking
    process has imported so far with when each was written (ns), so that the server knows when
    they are stale."""

    problems: list[Problem]
    modules: dict[str, int]


class Located(msgspec.Struct, tag="located", frozen=True):
    where: SourceLocation | None


class Failed(msgspec.Struct, tag="failed", frozen=True):
    """A :class:`~canopy.bridge.CanopyError` raised by the request, as its code travels."""

    code: str
    message: str
    details: dict[str, Any]


Reply = Ready | Checked | Located | Failed

_requests: Final = msgspec.json.Decoder(Request)
_replies: Final = msgspec.json.Decoder(Reply)


def encode(message: Request | Reply) -> bytes:
    """``message`` as one frame."""
    body = msgspec.json.encode(message)
    return _HEADER.pack(len(body)) + body


def frame_size(header: bytes) -> int:
    """The length of the body a frame's header announces; ValueError for a broken header."""
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes is over the limit of {MAX_FRAME}")
    return int(size)


def decode_request(body: bytes) -> Request:
    return _requests.decode(body)


def decode_reply(body: bytes) -> Reply:
    return _replies.decode(body)


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's body from a blocking stream; None at its end."""
    header = stream.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        return None
    size = frame_size(header)
    body = stream.read(size)
    return body if len(body) == size else None


def write_frame(stream: BinaryIO, message: Request | Reply) -> None:
    stream.write(encode(message))
    stream.flush()
