"""The server's end of a pod link: calls out, events and notifications in.

One :class:`PodLink` exists per connected worker. It owns nothing of the pod's lifecycle (that
is the manager's); it turns frames into appends, acknowledgements, call results and
notifications, and fails every pending call the moment the link drops.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from canopy.bridge import (
    BridgeError,
    EventStore,
    NewEvent,
    Producer,
    ProducerSequence,
    SequenceGap,
    Topic,
)
from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import loads

from .. import __version__
from ..remote import wire
from ..runtime.engine import Notification
from .protocol import EVENTS_FRAME, producer_id

__all__ = ["LinkBroken", "PodLink"]

log = logging.getLogger(__name__)

PRODUCER: Final = Producer("canopy-pod", __version__)
EXECUTION_STREAM: Final = "execution/"


class LinkBroken(wire.RemoteFailure):
    """The link to the pod dropped while a call was waiting for its answer."""


class PodLink:
    """A connected worker, for one pod of one tenant."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        pod_id: str,
        tenant_id: str,
        store: EventStore,
        on_events: Callable[[Sequence[NewEvent]], None],
        on_notification: Callable[[Notification], None],
        ingest_slots: asyncio.Semaphore,
    ) -> None:
        self.ws = ws
        self._ingest_slots = ingest_slots
        self.pod_id = pod_id
        self.tenant_id = tenant_id
        self._store = store
        self._on_events = on_events
        self._on_notification = on_notification
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._send_lock = asyncio.Lock()
        self.closed_reason: str | None = None

    async def send(self, frame: Mapping[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(orjson.dumps(frame))

    async def call(self, method: str, arguments: Mapping[str, Any]) -> Any:
        """Run an ``ExecutionControl`` call in the pod; returns its decoded result or raises
        the error the pod reported (or :class:`LinkBroken`)."""
        frame: dict[str, Any] = {"op": "call", "method": method}
        frame["arguments"] = wire.encode_arguments(method, arguments)
        return wire.decode_result(method, await self.request(frame))

    async def put_tree(self, file_name: str, content: str) -> str:
        """Write a tree definition into the pod's working directory; its path there."""
        return str(await self.request({"op": "tree", "file": file_name, "content": content}))

    async def request(self, frame: dict[str, Any]) -> Any:
        """Send ``frame`` with a fresh ``id`` and wait for the answer with that id."""
        if self.closed_reason is not None:
            raise LinkBroken(self.closed_reason)
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            await self.send({**frame, "id": call_id})
            return await future
        except ConnectionError as error:
            raise LinkBroken(f"the link to debug pod {self.pod_id} dropped: {error}") from error
        finally:
            self._pending.pop(call_id, None)

    async def receive(self) -> None:
        """Take frames until the worker goes away; then fail whatever still waits.

        Batches of events are appended by a separate task, so this loop keeps reading (and
        answering pings) however long the log takes: a slow append must not look like a dead
        link. The worker keeps one batch in flight, so at most one waits here."""
        batches: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        appender = asyncio.create_task(self._append_batches(batches), name="canopy-pod-append")
        try:
            async for message in self.ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                data = message.data.encode() if isinstance(message.data, str) else message.data
                if data.startswith(EVENTS_FRAME):
                    await batches.put(data)  # back-pressure if a worker ignores the window
                else:
                    try:
                        frame = loads(data)
                    except InvalidJson as error:
                        log.error("pod %s sent a malformed frame: %s", self.pod_id, error)
                        await self.ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"bad frame")
                        break
                    self._take(frame)
        finally:
            appender.cancel()
            await asyncio.gather(appender, return_exceptions=True)
            self.broken(f"the link to debug pod {self.pod_id} closed")

    async def _append_batches(self, batches: asyncio.Queue[bytes]) -> None:
        """Append and acknowledge batches in order. A batch is decoded only once it holds one
        of the server's few ingest slots, so however many pods send at once, only that many
        decoded batches are in memory. A batch the log refuses or cannot take closes the link:
        the worker keeps the events and resends them on its next link."""
        try:
            while True:
                data = await batches.get()
                async with self._ingest_slots:
                    frame = loads(data)
                    del data
                    await self._append(frame["events"])
                await self.send({"op": "ack", "through": frame["through"]})
        except SequenceGap as gap:
            # The worker resends from its last acknowledged event when it links again.
            log.warning("pod %s: %s", self.pod_id, gap)
            await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"resend")
        except (BridgeError, InvalidJson, ValueError, KeyError, TypeError) as error:
            log.error("pod %s: cannot record its events: %s", self.pod_id, error)
            await self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"cannot record events")

    def broken(self, reason: str) -> None:
        """Fail every pending call with ``reason``; later calls fail at once."""
        if self.closed_reason is None:
            self.closed_reason = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkBroken(self.closed_reason))

    def _take(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op in ("result", "error"):
            future = self._pending.get(frame.get("id", -1))
            if future is None or future.done():
                return
            if op == "result":
                future.set_result(frame.get("value"))
            else:
                future.set_exception(wire.decode_error(frame.get("error", {})))
        elif op == "notification":
            self._on_notification(wire.decode(Notification, frame["notification"]))
        else:
            log.warning("unknown frame from pod %s: %r", self.pod_id, op)

    async def _append(self, rows: list[list[Any]]) -> None:
        """Write a batch of the worker's events into the shared log, once each: the worker's
        offsets number its events, so a batch resent after a lost ack is answered without
        being written again. A pod may only write execution telemetry, for its own tenant."""
        if not rows:
            raise ValueError(f"pod {self.pod_id} sent an empty batch")
        events = []
        first = rows[0][0]
        for index, (offset, topic, stream, kind, time_us, payload) in enumerate(rows):
            if topic != Topic.EXECUTION or not stream.startswith(EXECUTION_STREAM):
                raise ValueError(f"pod {self.pod_id} sent a {kind} event on {topic}/{stream}")
            if offset != first + index:
                raise ValueError(f"pod {self.pod_id} sent offset {offset} after {offset - 1}")
            events.append(
                NewEvent(
                    tenant_id=self.tenant_id,
                    topic=topic,
                    stream=stream,
                    type=kind,
                    payload=payload,
                    producer=PRODUCER,
                    time=time_us,
                )
            )
        await self._store.append(events, sequence=ProducerSequence(producer_id(self.pod_id), first))
        self._on_events(events)
