"""Serving DAP over stdio (VS Code's ``DebugAdapterExecutable``) or TCP (``DebugAdapterServer``).

Each connection is one :class:`~dap.session.DebugSession`, with a control chooser of its own
over the adapter's shared :class:`~dap.controls.AdapterControls`. Requests are answered in
order; a bad message is answered (or, without a ``seq`` to answer, reported as an ``output``
event) and the connection goes on: no input makes the adapter exit.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path
from typing import Any, Final

from canopy.bridge import BridgeError, CanopyError, InvalidArgument
from canopy.bridge.client import CanopyClientError
from canopy.bridge.jsondata import INT_MAX, INT_MIN

from .controls import AdapterControls
from .framing import FramingError, MessageReader, encode
from .relay import PythonRelay, is_python_attach
from .session import DebugSession

__all__ = ["serve_connection", "serve_stdio", "serve_tcp"]

log = logging.getLogger(__name__)

_CONTEXT: Final = {"DefinitionError": "the tree cannot be loaded:\n"}
"""What a user reads before the message of an error, by code, where the message alone would
not say what failed."""


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    controls: AdapterControls,
    *,
    cwd: Path | None = None,
) -> None:
    """Run one session until the client disconnects or the stream ends.

    Requests are answered one after another, in order, by one task; the reading goes on
    meanwhile, so that a client's response to a request of the adapter's (``startDebugging``)
    reaches the request that waits for it. An ``attach`` with ``pythonOf`` turns the
    connection into a relay to debugpy (:mod:`dap.relay`) for the rest of its life.
    """
    seq = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        message["seq"] = seq
        writer.write(encode(message))
        await writer.drain()

    session = DebugSession(controls.chooser(), send, cwd=cwd)
    relay: PythonRelay | None = None
    work: asyncio.Queue[dict[str, Any] | FramingError | None] = asyncio.Queue()

    async def answer_in_order() -> None:
        nonlocal relay
        while (message := await work.get()) is not None:
            if isinstance(message, FramingError):
                await send(_failed(message.seq, message.command, f"malformed message: {message}"))
            elif relay is not None:
                await relay.from_client(message)
            elif is_python_attach(message):
                relay = await _open_relay(session, send, message)
            else:
                await _answer(session, send, message)
            if session.finished.is_set() or (relay is not None and relay.finished.is_set()):
                return

    answering = asyncio.ensure_future(answer_in_order())
    messages = MessageReader(reader)
    try:
        while not answering.done():
            reading = asyncio.ensure_future(messages.read())
            await asyncio.wait([reading, answering], return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                reading.cancel()
                break
            try:
                message = reading.result()
            except FramingError as error:
                if error.seq is None:
                    await session.event(
                        "output",
                        {"category": "stderr", "output": f"malformed message: {error}\n"},
                    )
                else:
                    work.put_nowait(error)
                continue
            if message is None:
                work.put_nowait(None)
                await answering
                break
            if message.get("type") == "response" and relay is None:
                session.client_answered(message)
            else:
                work.put_nowait(message)
    except (ConnectionError, asyncio.IncompleteReadError):
        log.info("the debug client went away")
    finally:
        answering.cancel()
        await asyncio.gather(answering, return_exceptions=True)
        if relay is not None:
            await relay.close()
        await session.close()
        writer.close()


async def _open_relay(
    session: DebugSession, send: Any, attach: dict[str, Any]
) -> PythonRelay | None:
    """The relay an ``attach`` with ``pythonOf`` asks for, or None (the attach answered as
    failed, saying why) when debugpy cannot be reached."""
    try:
        return await PythonRelay.open(attach, session.client_arguments, send)
    except CanopyError as error:
        response = _failed(attach.get("seq"), "attach", message_of("attach", error))
        await send(response)
        return None


def _failed(seq: Any, command: Any, problem: str | None = None) -> dict[str, Any]:
    """A response to request ``seq``, failed (with ``problem``) until said otherwise."""
    response: dict[str, Any] = {
        "type": "response",
        # Echoed only when DAP's type (an integer the response can carry); else 0, which no
        # client request has: an object or a 65-bit number could not be sent back at all.
        "request_seq": seq if type(seq) is int and INT_MIN <= seq <= INT_MAX else 0,
        "command": command if isinstance(command, str) else "",
        "success": False,
    }
    if problem is not None:
        response["message"] = problem
    return response


async def _answer(session: DebugSession, send: Any, message: dict[str, Any]) -> None:
    kind = message.get("type")
    response = _failed(message.get("seq"), message.get("command"))
    if kind != "request":
        if kind not in ("response", "event"):
            response["message"] = f"unknown message type {kind!r}: expected a request"
            await send(response)
        return
    try:
        body = await session.handle(message)
    except CanopyError as error:
        response["message"] = message_of(response["command"], error)
    except Exception as error:  # a bug must cost one request, not the session
        log.exception("request %s failed", response["command"])
        response["message"] = (
            f"internal error in {response['command'] or 'the request'}: {type(error).__name__}"
            " (the debug adapter's log has the details)"
        )
    else:
        response["success"] = True
        if body is not None:
            response["body"] = body
    try:
        await send(response)
    finally:
        session.responded()


def message_of(command: str, error: CanopyError) -> str:
    """How DAP words any Canopy error: its readable message, after the request's name when
    an argument was at fault, or after what failed when the message alone would not say."""
    if isinstance(error, InvalidArgument):
        return f"{command}: {error}"
    if isinstance(error, BridgeError) and not isinstance(error, CanopyClientError):
        return f"the event log failed: {error}"
    return _CONTEXT.get(error.code, "") + str(error)


async def serve_stdio(controls: AdapterControls, *, cwd: Path | None = None) -> None:
    """One session over this process's standard input and output."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout.buffer
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    await serve_connection(reader, writer, controls, cwd=cwd)


async def serve_tcp(
    controls: AdapterControls, host: str, port: int, *, cwd: Path | None = None
) -> asyncio.Server:
    """A listening server; every connection is a session of its own."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await serve_connection(reader, writer, controls, cwd=cwd)

    return await asyncio.start_server(accept, host, port, limit=1 << 20)
