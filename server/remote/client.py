"""``ExecutionControl`` over a Canopy server's HTTP API: what the debug adapter, the CLI and
the editor use to drive executions in the user's debug pod.

Calls map onto :data:`server.remote.routes.ROUTES`; a refusal comes back as the very
exception the contract names (the problem document carries it), so code written against the
in-process control runs unchanged against a server. Notifications arrive over one WebSocket
opened by :meth:`HttpExecutionControl.connect`, so a stream asked for before an action sees
the notifications that action causes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import orjson

from canopy.bridge import RecordedEvent
from canopy.bridge.client import CanopyClient, ServerError, ServerUnreachable, connection_failure

from ..runtime.engine import Notification
from ..runtime.inprocess import NotificationStream
from . import wire
from .forwarding import ForwardingControl
from .routes import route_of

__all__ = ["HttpExecutionControl"]

log = logging.getLogger(__name__)

WAITING_CALLS: Final = frozenset({"settle", "wait_for_stop", "wait_for_end", "terminate"})
"""Calls that may legitimately take long: no read timeout."""


class HttpExecutionControl(ForwardingControl):
    """Executions in the caller's pod, through the server ``client`` talks to. Use
    ``async with``, or call :meth:`connect` and :meth:`close`."""

    def __init__(self, client: CanopyClient) -> None:
        self.client = client
        self._listeners: set[NotificationStream] = set()
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HttpExecutionControl:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the notifications socket (the client must be open)."""
        try:
            self._socket = await self.client.session.ws_connect(
                self.client.url_for("api/v1/notifications"), heartbeat=self.client.heartbeat
            )
        except aiohttp.ClientError as error:
            raise connection_failure(self.client.url, error) from error
        self._reader = asyncio.create_task(self._read(), name="canopy-control-notifications")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._socket is not None:
            await self._socket.close()
        for listener in list(self._listeners):
            listener.end()

    async def _read(self) -> None:
        assert self._socket is not None
        try:
            async for message in self._socket:
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    break
                frame = orjson.loads(message.data)
                if frame.get("kind") == "notification":
                    notification = wire.decode(Notification, frame["notification"])
                    for listener in list(self._listeners):
                        listener.offer(notification)
                elif frame.get("kind") == "error":
                    log.warning("notifications interrupted: %s", frame.get("detail"))
        finally:
            for listener in list(self._listeners):
                listener.end()

    async def forward(self, call: str, **arguments: Any) -> Any:
        route = route_of(call)
        encoded = wire.encode_arguments(call, arguments)
        path = route.path.format(
            **{name: quote(str(encoded.pop(name)), safe="") for name in route.path_arguments}
        )
        params = None
        data = None
        if route.in_query:
            params = [(name, str(value)) for name, value in encoded.items() if value is not None]
        else:
            data = orjson.dumps(encoded)
        session = self.client.session
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=10)
            if call in WAITING_CALLS
            else session.timeout
        )
        try:
            async with session.request(
                route.verb,
                self.client.url_for(path.lstrip("/")),
                params=params,
                data=data,
                headers={"Content-Type": "application/json"} if data is not None else None,
                timeout=timeout,
            ) as response:
                raw = await response.read()
                status = response.status
                reason = response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ServerUnreachable(f"lost the server at {self.client.url}: {error!r}") from error
        if status >= 400:
            raise _error_of(status, reason, raw)
        return wire.decode_result(call, orjson.loads(raw))

    def events(
        self, execution_id: str, *, after: int = 0, types: Sequence[str] = ()
    ) -> AsyncIterator[RecordedEvent]:
        return self.client.subscribe(
            after=after, streams=[f"execution/{execution_id}"], types=types
        )

    def notifications(self, execution_id: str | None = None) -> NotificationStream:
        stream = NotificationStream(self._listeners, execution_id)
        self._listeners.add(stream)
        return stream


def _error_of(status: int, reason: str, raw: bytes) -> Exception:
    """The contract's exception from a problem document, or a plain server error."""
    try:
        problem = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ServerError(status, reason, raw[:200].decode("utf-8", "replace"))
    if isinstance(problem, dict) and isinstance(problem.get("error"), str):
        return wire.decode_error({**problem, "message": problem.get("detail", reason)})
    if isinstance(problem, dict):
        return ServerError.from_problem(status, problem)
    return ServerError(status, reason, str(problem)[:200])
