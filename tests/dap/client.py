"""A headless DAP client over real pipes or sockets, for the adapter's tests.

It keeps every event it receives, in order, so tests assert on what arrived (``wait_for``)
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dap.framing import MessageReader, encode

ROOT = Path(__file__).resolve().parents[2]


class DapClient:
    """Talks to one adapter; ``request`` returns the response, ``wait_for`` the next event."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = MessageReader(reader)
        self._writer = writer
        self._seq = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._seen = 0
        self._arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._receive())

    async def request(
        self, command: str, arguments: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a request and wait (at most 20 s) for its response, successful or not."""
        self._seq += 1
        message: dict[str, Any] = {"seq": self._seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._seq] = future
        await self.send_raw(encode(message))
        async with asyncio.timeout(20):
            return await future

    async def ok(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """A request that must succeed; returns its body."""
        response = await self.request(command, arguments)
        assert response["success"], f"{command} failed: {response.get('message')}"
        return response.get("body", {})

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (for malformed-input tests)."""
        self._writer.write(data)
        await self._writer.drain()

    async def wait_for(self, name: str, **fields: Any) -> dict[str, Any]:
        """The next not-yet-consumed event ``name`` whose body has ``fields`` (20 s at most)."""
        async with asyncio.timeout(20), self._arrived:
            while True:
                for index in range(self._seen, len(self.events)):
                    event = self.events[index]
                    body = event.get("body", {})
                    if event["event"] == name and all(body.get(k) == v for k, v in fields.items()):
                        self._seen = index + 1
                        return body
                await self._arrived.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()

    async def _receive(self) -> None:
        while True:
            message = await self._reader.read()
            if message is None:
                return
            if message["type"] == "response":
                future = self._pending.pop(message["request_seq"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message["type"] == "event":
                async with self._arrived:
                    self.events.append(message)
                    self._arrived.notify_all()


@contextlib.asynccontextmanager
async def adapter_over_stdio(data_dir: Path, cwd: Path = ROOT) -> AsyncIterator[DapClient]:
    """``canopy dap`` as a subprocess, spoken to over its stdin/stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from server.cli import main; main()",
        "dap",
        "--data-dir",
        str(data_dir),
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        limit=1 << 20,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    client = DapClient(process.stdout, process.stdin)  # type: ignore[arg-type]
    try:
        yield client
    finally:
        await client.close()
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def launch_configured(
    client: DapClient,
    program: str,
    *,
    breakpoints: list[dict[str, Any]] | None = None,
    **launch: Any,
) -> None:
    """initialize, launch, set function breakpoints, configurationDone."""
    await client.ok("initialize", {"adapterID": "canopy", "supportsInvalidatedEvent": True})
    await client.ok("launch", {"program": program, **launch})
    await client.wait_for("initialized")
    if breakpoints is not None:
        await client.ok("setFunctionBreakpoints", {"breakpoints": breakpoints})
    await client.ok("configurationDone")


def body_text(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True)
