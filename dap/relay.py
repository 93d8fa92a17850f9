"""The Python half of a tree session: a relay between the client and debugpy's adapter.

VS Code starts a child of a debug session (the DAP reverse request ``startDebugging``) with the
parent's debug type, so the child of a ``canopy`` session is another ``canopy dap``. When its
``attach`` carries ``pythonOf`` (sent by the tree session, see
:meth:`~dap.session.DebugSession.on_stepIn`), the connection becomes this relay: it connects as
a DAP client to the debugpy adapter that listens in the process running the tree
(``debugpy.listen``, in the adapter itself or in a local debug pod) and forwards every message
both ways, renumbering ``seq`` so that each side sees one ordered conversation. No Python
extension is needed in the editor.

What the relay adds to plain forwarding:

- after connecting it sends the client a ``capabilities`` event with debugpy's capabilities,
  and turns off each capability the child announced in its ``initialize`` answer (Canopy's) that
  debugpy lacks: the child answers ``initialize`` before it knows it will relay;
- it holds the breakpoints that stop in an armed node's methods (``pythonOf.stops``, see
  :mod:`~server.runtime.python_debug`): it merges them into the client's ``setBreakpoints`` for
  the same file (and leaves them out of the answer), and places those in other files itself
  before ``configurationDone`` goes on, so a step into a node stops from the first one;
- VS Code keeps the exception filters of the first ``initialize`` answer (Canopy's), so the
  relay passes on only those debugpy offers too (``raised``: stop where a behaviour raises) and
  answers the others (``failed``) as unverified, saying why;
- it lists only the threads that run trees (``threads``): the process's other threads (its
  event loop, the event log's writer) never stop in Python and are no place to step;
- every call it makes itself has a deadline, and a debugpy that cannot be reached fails the
  ``attach`` with a message that says where it looked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final

from canopy.bridge import InvalidArgument
from canopy.server.runtime.control import InvalidRequest
from canopy.server.runtime.engine import EXECUTION_THREAD_PREFIX

from .framing import FramingError, MessageReader, encode
from .session import CAPABILITIES

__all__ = ["CONNECT_TIMEOUT", "REQUEST_TIMEOUT", "PythonRelay", "is_python_attach"]

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

CONNECT_TIMEOUT: Final = 10.0
"""Seconds to reach debugpy's adapter."""
REQUEST_TIMEOUT: Final = 10.0
"""Seconds debugpy has to answer a request of the relay's own (``initialize``, the stops)."""
SKIPPED_MODULES: Final = ("canopy", "py_trees")
"""Code that stepping passes over: the runtime that calls a node's methods, and py_trees."""


def is_python_attach(message: dict[str, Any]) -> bool:
    """Whether a client message asks for a relay to debugpy."""
    arguments = message.get("arguments")
    return (
        message.get("type") == "request"
        and message.get("command") == "attach"
        and isinstance(arguments, dict)
        and "pythonOf" in arguments
    )


class PythonRelay:
    """One client's conversation with one debugpy adapter."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        send: Send,
        stops: list[dict[str, Any]],
        where: str,
    ) -> None:
        self._messages = MessageReader(reader)
        self._writer = writer
        self._send = send
        self._where = where
        self._stops: dict[str, list[dict[str, Any]]] = {}
        for stop in stops:
            self._stops.setdefault(_key(stop["path"]), []).append(stop)
        self._stops_placed: set[str] = set()
        self._seq = 0
        self._forwarded: dict[int, tuple[int, str, int]] = {}  # ours -> client's, command, keep
        self._own: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reverse: dict[int, int] = {}  # seq the client saw -> debugpy's seq
        self._filters: set[str] = set()  # debugpy's exception filters
        self._refused: dict[int, list[str | None]] = {}  # ours -> the client's filters, or None
        self.finished = asyncio.Event()
        self._reading = asyncio.ensure_future(self._from_debugpy())

    @classmethod
    async def open(
        cls, attach: dict[str, Any], initialize: dict[str, Any], send: Send
    ) -> PythonRelay:
        """Connect to debugpy, announce its capabilities to the client and forward
        ``attach`` (whose answer comes from debugpy, after ``configurationDone``)."""
        target = attach["arguments"]["pythonOf"]
        host, port, stops = _target(target)
        where = f"debugpy at {host}:{port}"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as error:
            reason = "no answer" if isinstance(error, TimeoutError) else str(error)
            raise InvalidRequest(
                f"cannot reach {where} ({reason}): is the process that runs the tree still there?"
            ) from error
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        relay = cls(reader, writer, send, stops, where)
        try:
            capabilities = await relay.request("initialize", {**initialize, "adapterID": "debugpy"})
            await relay._announce(capabilities)
            arguments = {
                key: value
                for key, value in attach["arguments"].items()
                if key not in ("pythonOf", "__sessionId")
            }
            arguments.setdefault("justMyCode", True)
            arguments.setdefault(
                "rules", [{"module": module, "include": False} for module in SKIPPED_MODULES]
            )
            await relay._forward({**attach, "arguments": arguments})
        except BaseException:
            await relay.close()
            raise
        return relay

    async def from_client(self, message: dict[str, Any]) -> None:
        """Pass one client message on to debugpy."""
        kind = message.get("type")
        if kind == "response":
            seq = self._reverse.pop(message.get("request_seq", -1), None)
            if seq is not None:
                await self._write(self._stamp({**message, "request_seq": seq})[1])
            return
        if kind != "request":
            return
        command = message.get("command")
        keep = -1
        if command == "setBreakpoints":
            message, keep = self._with_stops(message)
        elif command == "configurationDone":
            await self._place_stops()
        elif command == "setExceptionBreakpoints":
            await self._forward_filters(message)
            return
        await self._forward(message, keep)

    async def request(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A request of the relay's own; its answer's body (or InvalidRequest)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        seq, data = self._stamp({"type": "request", "command": command, "arguments": arguments})
        self._own[seq] = future
        try:
            await self._write(data)
            response = await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            raise InvalidRequest(
                f"{self._where} did not answer {command!r} within {REQUEST_TIMEOUT:g} s"
            ) from None
        finally:
            self._own.pop(seq, None)
        if not response.get("success"):
            raise InvalidRequest(f"{self._where} refused {command!r}: {response.get('message')}")
        body: dict[str, Any] = response.get("body") or {}
        return body

    async def close(self) -> None:
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._reading
        self._writer.close()
        self.finished.set()

    # -- plumbing ----------------------------------------------------------------------------

    def _stamp(self, message: dict[str, Any]) -> tuple[int, bytes]:
        """The next ``seq`` towards debugpy, and the message under it, ready to write (the
        answer is expected under that ``seq`` before the writing is done)."""
        self._seq += 1
        return self._seq, encode({**message, "seq": self._seq})

    async def _write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def _forward(self, request: dict[str, Any], keep: int = -1) -> None:
        """Send a client's request on; its answer goes back under the client's ``seq``, with
        only its first ``keep`` breakpoints when ``keep`` is not -1."""
        seq, data = self._stamp({k: v for k, v in request.items() if k != "seq"})
        self._forwarded[seq] = (request.get("seq", 0), str(request.get("command", "")), keep)
        await self._write(data)

    async def _from_debugpy(self) -> None:
        try:
            while (message := await self._messages.read()) is not None:
                await self._to_client(message)
        except (ConnectionError, asyncio.IncompleteReadError, FramingError) as error:
            log.info("the connection to %s ended: %s", self._where, error)
        for future in self._own.values():
            if not future.done():
                future.set_exception(InvalidRequest(f"{self._where} closed the connection"))
        if not self.finished.is_set():
            self.finished.set()
            await self._send({"type": "event", "event": "terminated", "body": {}})

    async def _to_client(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "response":
            request_seq = message.get("request_seq", -1)
            if (future := self._own.pop(request_seq, None)) is not None:
                if not future.done():
                    future.set_result(message)
                return
            forwarded = self._forwarded.pop(request_seq, None)
            if forwarded is None:
                return
            client_seq, command, keep = forwarded
            answer = {k: v for k, v in message.items() if k != "seq"}
            answer["request_seq"] = client_seq
            if keep >= 0 and isinstance(answer.get("body"), dict):
                body = answer["body"]
                answer["body"] = {**body, "breakpoints": body.get("breakpoints", [])[:keep]}
            if (asked := self._refused.pop(request_seq, None)) is not None:
                answer["body"] = self._filters_answer(asked, answer.get("body") or {})
            if command == "threads" and isinstance(answer.get("body"), dict):
                threads = answer["body"].get("threads") or []
                answer["body"] = {
                    **answer["body"],
                    "threads": [
                        t
                        for t in threads
                        if str(t.get("name", "")).startswith(EXECUTION_THREAD_PREFIX)
                    ],
                }
            await self._send(answer)
            if command == "disconnect":
                self.finished.set()
        elif kind == "request":  # a reverse request of debugpy's (e.g. runInTerminal)
            forwarded_request = {k: v for k, v in message.items() if k != "seq"}
            await self._send(forwarded_request)
            self._reverse[forwarded_request["seq"]] = message["seq"]
        else:
            await self._send({k: v for k, v in message.items() if k != "seq"})

    # -- capabilities and stops --------------------------------------------------------------

    async def _forward_filters(self, message: dict[str, Any]) -> None:
        """``setExceptionBreakpoints`` with the filters debugpy has (see the module's text)."""
        arguments = dict(message.get("arguments") or {})
        asked = [f for f in arguments.get("filters") or [] if isinstance(f, str)]
        arguments["filters"] = [f for f in asked if f in self._filters]
        arguments.pop("filterOptions", None)
        seq, data = self._stamp(
            {**{k: v for k, v in message.items() if k != "seq"}, "arguments": arguments}
        )
        self._forwarded[seq] = (message.get("seq", 0), "setExceptionBreakpoints", -1)
        self._refused[seq] = [f if f in self._filters else None for f in asked]
        await self._write(data)

    def _filters_answer(self, asked: list[str | None], body: dict[str, Any]) -> dict[str, Any]:
        """One entry per filter the client set, in its order: debugpy's, or unverified."""
        theirs = iter(body.get("breakpoints") or [])
        entries = []
        for name in asked:
            if name is None:
                entries.append(
                    {
                        "verified": False,
                        "message": "a tree's filter: Python stops only on"
                        f" {', '.join(sorted(self._filters)) or 'no'} exceptions",
                    }
                )
            else:
                entries.append(next(theirs, {"verified": True}))
        return {**body, "breakpoints": entries}

    async def _announce(self, capabilities: dict[str, Any]) -> None:
        self._filters = {
            str(f.get("filter"))
            for f in capabilities.get("exceptionBreakpointFilters") or []
            if isinstance(f, dict)
        }
        off = {name: False for name in CAPABILITIES if name.startswith("support")}
        merged = {
            **off,
            "exceptionBreakpointFilters": [],
            "completionTriggerCharacters": [],
            **capabilities,
        }
        await self._send(
            {"type": "event", "event": "capabilities", "body": {"capabilities": merged}}
        )

    def _with_stops(self, message: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The client's ``setBreakpoints`` with the stops in that file added, and how many of
        the answer's breakpoints are the client's (-1: all)."""
        arguments = dict(message.get("arguments") or {})
        path = (arguments.get("source") or {}).get("path")
        if not isinstance(path, str) or not self._stops.get(_key(path)):
            return message, -1
        stops = self._stops[_key(path)]
        self._stops_placed.add(_key(path))
        wanted = list(arguments.get("breakpoints") or [])
        taken = {bp.get("line") for bp in wanted if isinstance(bp, dict)}
        # A breakpoint of the user's on the same line stops anyway: theirs wins.
        extra = [
            {"line": s["line"], "condition": s["condition"]}
            for s in stops
            if s["line"] not in taken
        ]
        arguments["breakpoints"] = wanted + extra
        arguments.pop("lines", None)
        return {**message, "arguments": arguments}, len(wanted)

    async def _place_stops(self) -> None:
        for key, stops in self._stops.items():
            if key in self._stops_placed:
                continue
            self._stops_placed.add(key)
            await self.request(
                "setBreakpoints",
                {
                    "source": {"path": stops[0]["path"]},
                    "breakpoints": [
                        {"line": s["line"], "condition": s["condition"]} for s in stops
                    ],
                },
            )


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _target(value: Any) -> tuple[str, int, list[dict[str, Any]]]:
    """``pythonOf``'s host, port and stops, checked."""
    if not isinstance(value, dict):
        raise InvalidArgument("pythonOf must be an object with host and port")
    host, port = value.get("host"), value.get("port")
    if not isinstance(host, str) or not host:
        raise InvalidArgument("pythonOf.host must be a host name or address")
    if type(port) is not int or not 0 < port < 65536:
        raise InvalidArgument(f"pythonOf.port must be a TCP port, not {port!r}")
    stops = value.get("stops", [])
    if not isinstance(stops, list) or not all(
        isinstance(s, dict)
        and isinstance(s.get("path"), str)
        and type(s.get("line")) is int
        and isinstance(s.get("condition", ""), str)
        for s in stops
    ):
        raise InvalidArgument("pythonOf.stops must be a list of {path, line, condition}")
    return host, port, stops
