"""A headless DAP client over real pipes or sockets, for the adapter's tests.

It keeps every event and response it receives, in order, so tests assert on what arrived
(``wait_for``, ``next_event``, ``responses``) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from canopy.dap.framing import MessageReader, encode

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20
STARTUP_TIMEOUT = 60  # a loaded machine can take long to import the adapter


class DapClient:
    """Talks to one adapter; ``request`` returns the response, ``wait_for`` the next event."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = MessageReader(reader)
        self._writer = writer
        self._seq = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # the adapter's reverse requests
        self._seen = 0
        self._arrived = asyncio.Condition()
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._receive())

    async def request(
        self, command: str, arguments: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a request and wait (at most 20 s) for its response, successful or not."""
        message: dict[str, Any] = {"type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        return await self.send_message(message)

    async def send_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message`` as it is, but with the next ``seq``; return its response."""
        self._seq += 1
        message = {**message, "seq": self._seq}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = future
        await self.send_raw(encode(message))
        async with asyncio.timeout(self._timeout()):
            return await future

    async def ok(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """A request that must succeed; returns its body."""
        response = await self.request(command, arguments)
        assert response["success"], f"{command} failed: {response.get('message')}"
        return response.get("body", {})

    async def fails(self, command: str, arguments: dict[str, Any] | None = None) -> str:
        """A request that must fail; returns its message."""
        response = await self.request(command, arguments)
        assert not response["success"], f"{command} succeeded: {response.get('body')}"
        message = response.get("message")
        assert isinstance(message, str)
        assert message
        return message

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (for malformed-input tests)."""
        self._writer.write(data)
        await self._writer.drain()

    async def wait_for(self, name: str, **fields: Any) -> dict[str, Any]:
        """The next not-yet-consumed event ``name`` whose body has ``fields`` (20 s at most).
        Events before it are consumed too: successive calls assert an order."""

        def find() -> dict[str, Any] | None:
            for index in range(self._seen, len(self.events)):
                event = self.events[index]
                body = event.get("body", {})
                if event["event"] == name and all(body.get(k) == v for k, v in fields.items()):
                    self._seen = index + 1
                    return body
            return None

        return await self.until(find)

    async def next_event(self, name: str) -> dict[str, Any]:
        """The body of the next not-yet-consumed event called ``name``, whatever it says."""
        return await self.wait_for(name)

    async def reverse_request(self, command: str) -> dict[str, Any]:
        """The first reverse request ``command`` of the adapter's not answered yet."""

        def find() -> dict[str, Any] | None:
            return next((r for r in self.requests if r["command"] == command), None)

        request = await self.until(find)
        self.requests.remove(request)
        return request

    async def answer(self, request: dict[str, Any], success: bool = True, **extra: Any) -> None:
        """Answer one of the adapter's reverse requests."""
        self._seq += 1
        response = {
            "type": "response",
            "seq": self._seq,
            "request_seq": request["seq"],
            "command": request["command"],
            "success": success,
            **extra,
        }
        await self.send_raw(encode(response))

    def pending_events(self, name: str) -> list[dict[str, Any]]:
        """Bodies of the events ``name`` received and not consumed yet."""
        return [e.get("body", {}) for e in self.events[self._seen :] if e["event"] == name]

    def _timeout(self) -> float:
        """Seconds to wait for a message: longer until the adapter has said anything (a fresh
        process may still be importing on a busy machine)."""
        return TIMEOUT if self.responses or self.events else STARTUP_TIMEOUT

    async def until(self, find: Callable[[], Any]) -> Any:
        """What ``find`` returns once it is not None, asked again at each message (20 s at
        most); consumes nothing."""
        async with asyncio.timeout(self._timeout()), self._arrived:
            while True:
                found = find()
                if found is not None:
                    return found
                if self.closed.is_set():
                    raise ConnectionError("the adapter closed the connection")
                await self._arrived.wait()

    async def wait_closed(self) -> None:
        """Until the adapter closes the connection (20 s at most)."""
        async with asyncio.timeout(TIMEOUT):
            await self.closed.wait()

    async def hang_up(self) -> None:
        """Go away without a disconnect request: end our side of the stream and wait until
        the adapter, having cleaned up the session, closes its side."""
        if self._writer.can_write_eof():
            self._writer.write_eof()
        else:
            self._writer.close()
        await self.wait_closed()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()

    async def _receive(self) -> None:
        try:
            while True:
                message = await self._reader.read()
                if message is None:
                    return
                async with self._arrived:
                    if message["type"] == "response":
                        self.responses.append(message)
                        future = self._pending.pop(message["request_seq"], None)
                        if future is not None and not future.done():
                            future.set_result(message)
                    elif message["type"] == "event":
                        self.events.append(message)
                    elif message["type"] == "request":
                        self.requests.append(message)
                    self._arrived.notify_all()
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the adapter closed the connection"))
            async with self._arrived:
                self._arrived.notify_all()


def _adapter_command(*arguments: str, script: Path | None = None) -> list[str]:
    entry = [str(script)] if script else ["-c", "from canopy.server.cli import main; main()"]
    return [sys.executable, *entry, "dap", *arguments]


def _environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The embedded SQLite log under --data-dir, and no server but the one a test names.
    for name in ("CANOPY_DATABASE_URL", "CANOPY_URL", "CANOPY_TOKEN", "CANOPY_PODS"):
        env.pop(name, None)
    return env


def spawn_stdio_adapter(
    data_dir: Path,
    cwd: Path = ROOT,
    *arguments: str,
    environment: Mapping[str, str] | None = None,
    script: Path | None = None,
    stderr: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``canopy dap`` speaking over its stdin/stdout (not yet connected to a client),
    with more command-line ``arguments`` (e.g. ``--url``) and ``environment`` variables if
    given. A plain process, not tied to an event loop, so it can be started ahead of the test
    that will use it: importing the adapter takes most of a second."""
    return subprocess.Popen(
        _adapter_command("--data-dir", str(data_dir), *arguments, script=script),
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**_environment(), **(environment or {})},
        bufsize=0,
    )


async def connect_stdio(process: subprocess.Popen[bytes]) -> DapClient:
    """A client on the pipes of an adapter process, in the running event loop."""
    assert process.stdin is not None
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), process.stdout)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, process.stdin
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return DapClient(reader, writer)


async def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    await asyncio.to_thread(process.wait)


@contextlib.asynccontextmanager
async def speaking_to(process: subprocess.Popen[bytes]) -> AsyncIterator[DapClient]:
    """A client over the pipes of a started stdio adapter; the process ends with it."""
    try:
        client = await connect_stdio(process)
        try:
            yield client
        finally:
            await client.close()
    finally:
        await stop_process(process)


@contextlib.asynccontextmanager
async def adapter_over_stdio(data_dir: Path, cwd: Path = ROOT) -> AsyncIterator[DapClient]:
    """``canopy dap`` as a subprocess, spoken to over its stdin/stdout."""
    async with speaking_to(spawn_stdio_adapter(data_dir, cwd)) as client:
        yield client


Connect = Callable[[], Awaitable[DapClient]]


@contextlib.asynccontextmanager
async def adapter_over_tcp(data_dir: Path, cwd: Path = ROOT) -> AsyncIterator[Connect]:
    """``canopy dap --port 0`` as a subprocess; yields a function that opens a new session
    (a TCP connection to the port the adapter printed on its stdout)."""
    process = await asyncio.create_subprocess_exec(
        *_adapter_command("--port", "0", "--data-dir", str(data_dir)),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        env=_environment(),
    )
    assert process.stdout is not None
    clients: list[DapClient] = []
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            port = int((await process.stdout.readline()).decode().strip())

        async def connect() -> DapClient:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            client = DapClient(reader, writer)
            clients.append(client)
            return client

        yield connect
    finally:
        for client in clients:
            await client.close()
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def launch_configured(
    client: DapClient,
    program: str,
    *,
    breakpoints: list[dict[str, Any]] | None = None,
    data_breakpoints: list[dict[str, Any]] | None = None,
    exception_filters: list[str] | None = None,
    initialize: dict[str, Any] | None = None,
    **launch: Any,
) -> dict[str, Any]:
    """initialize, launch, set function/data/exception breakpoints, configurationDone.
    Returns the answers to the breakpoint requests (by command)."""
    await client.ok(
        "initialize",
        {"adapterID": "canopy", "supportsInvalidatedEvent": True, **(initialize or {})},
    )
    await client.ok("launch", {"program": program, **launch})
    await client.wait_for("initialized")
    answers: dict[str, Any] = {}
    if breakpoints is not None:
        answers["setFunctionBreakpoints"] = await client.ok(
            "setFunctionBreakpoints", {"breakpoints": breakpoints}
        )
    if data_breakpoints is not None:
        answers["setDataBreakpoints"] = await client.ok(
            "setDataBreakpoints", {"breakpoints": data_breakpoints}
        )
    if exception_filters is not None:
        answers["setExceptionBreakpoints"] = await client.ok(
            "setExceptionBreakpoints", {"filters": exception_filters}
        )
    await client.ok("configurationDone")
    return answers
