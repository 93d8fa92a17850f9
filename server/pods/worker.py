"""The pod worker: runs executions with the runtime in-process, next to the tree, and links
them to the server over one authenticated WebSocket (see :mod:`server.pods.protocol`).

Events are recorded into a SQLite file in the pod's working directory first, then shipped to
the server in batches; the local file is the buffer that survives a dropped link. The worker
reconnects with back-off and resends from the last offset the server acknowledged, and the
shared log's idempotency keys make a resent event harmless, so nothing is lost or doubled.

A call is answered only once every event it caused is in the shared log: a client that reads
the log after a call returns sees the call's effects.

A worker never outlives its server for long: when it cannot reach the server for
``CANOPY_POD_SERVER_GRACE`` seconds it ends its executions and exits. The grace, rather than
dying with the server's process (``PR_SET_PDEATHSIG``), lets a server restarted within it take
its running pods back; past it nobody will, and the worker would run forever. Its process
exits when its event loop ends, whatever threads the user's code left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from canopy.bridge import CanopyError, EventFilter, RecordedEvent, open_store
from canopy.bridge.client import CA_FILE_VARIABLE, UntrustedServer, client_ssl

from .. import __version__
from ..config import SettingsError
from ..logs import configure_logging
from ..remote import wire
from ..remote.wire import RemoteFailure
from ..runtime.control import ControlError, ExecutionControl
from ..runtime.engine import Notification, RunState, StepKind
from ..runtime.inprocess import InProcessControl
from ..runtime.user_faults import RUNTIME_CONTROL_FLOW
from ..telemetry import POD_SERVICE, start_tracing, stop_tracing
from .protocol import (
    BATCH_BYTES,
    CONNECT_PATH,
    HEARTBEAT_SECONDS,
    MAX_FRAME_BYTES,
    POD_HEADER,
    SERVER_CERT_VARIABLE,
    SPARE_VARIABLE,
)
from .sandbox import SandboxError, sandbox_worker

__all__ = ["OrphanPolicy", "PodWorker", "WorkerSettings", "main"]

log = logging.getLogger("canopy.pod")

RECONNECT_MIN_SECONDS: Final = 0.05
RECONNECT_MAX_SECONDS: Final = 2.0
PENDING_NOTIFICATIONS: Final = 1024
"""Notifications kept while the link is down (the oldest go first; the log keeps the facts)."""
FLUSH_ON_EXIT_SECONDS: Final = 10.0
SERVER_GRACE_SECONDS: Final = 60.0
"""How long a worker keeps trying to reach a server that has gone before it exits (the
``CANOPY_POD_SERVER_GRACE`` default): room for a server restart."""
DATABASE: Final = Path("pod-events.db")
"""The worker's own log, in the pod's working directory: its buffer while the link is down."""


class OrphanPolicy:
    """What happens to an execution stopped at a breakpoint once no client is attached."""

    RESUME: Final = "resume"
    STOP: Final = "stop"
    ALL: Final = (RESUME, STOP)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything a worker needs, from the ``CANOPY_POD_*`` environment its provider set."""

    pod_id: str
    token: str
    tenant_id: str
    user_id: str
    server_url: str
    orphan_policy: str = OrphanPolicy.STOP
    orphan_timeout: float = 60.0
    tls: ssl.SSLContext | bool = True
    """How the server's certificate is checked on a ``wss`` link: the system's CAs, plus
    ``CANOPY_SERVER_CERT`` (the PEM text the server gives its pods) and ``CANOPY_CA_FILE``."""
    server_grace: float = SERVER_GRACE_SECONDS

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> WorkerSettings:
        """Read the settings; a missing or bad variable is reported by name."""
        missing = [
            name
            for name in (
                "CANOPY_POD_ID",
                "CANOPY_POD_TOKEN",
                "CANOPY_POD_TENANT",
                "CANOPY_POD_USER",
                "CANOPY_SERVER_URL",
            )
            if not environ.get(name)
        ]
        if missing:
            raise ValueError(f"the pod worker needs {', '.join(missing)} in its environment")
        policy = environ.get("CANOPY_POD_ORPHAN_POLICY", OrphanPolicy.STOP)
        if policy not in OrphanPolicy.ALL:
            raise ValueError(f"CANOPY_POD_ORPHAN_POLICY must be one of {OrphanPolicy.ALL}")
        timeout = _seconds(environ, "CANOPY_POD_ORPHAN_TIMEOUT", 60.0)
        grace = _seconds(environ, "CANOPY_POD_SERVER_GRACE", SERVER_GRACE_SECONDS)
        server_url = environ["CANOPY_SERVER_URL"].rstrip("/")
        try:
            tls = client_ssl(
                server_url, environ.get(CA_FILE_VARIABLE), ca_pem=environ.get(SERVER_CERT_VARIABLE)
            )
        except UntrustedServer as error:
            raise ValueError(f"cannot check the server's certificate: {error}") from None
        return cls(
            pod_id=environ["CANOPY_POD_ID"],
            token=environ["CANOPY_POD_TOKEN"],
            tenant_id=environ["CANOPY_POD_TENANT"],
            user_id=environ["CANOPY_POD_USER"],
            server_url=server_url,
            orphan_policy=policy,
            orphan_timeout=timeout,
            tls=tls,
            server_grace=grace,
        )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(environ.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds")
    return value


class _Link:
    """One live WebSocket to the server; sends are serialised (one frame at a time)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._lock = asyncio.Lock()

    async def send(self, frame: Mapping[str, Any] | bytes) -> None:
        """Send ``frame`` (or its encoding, when the caller had to know it encodes)."""
        data = frame if isinstance(frame, bytes) else orjson.dumps(frame)
        async with self._lock:
            await self.ws.send_bytes(data)


class Outbox:
    """Ships the worker's recorded events to the server, one batch in flight, and knows
    which of them the server has acknowledged."""

    def __init__(self, store: Any, tenant_id: str) -> None:
        self._store = store
        self._filter = EventFilter.of(tenant_id)
        self.acked = 0
        self._acked_changed = asyncio.Condition()

    async def acknowledge(self, through: int) -> None:
        async with self._acked_changed:
            self.acked = max(self.acked, through)
            self._acked_changed.notify_all()

    async def flushed(self) -> None:
        """Return once every event recorded so far is in the shared log: at once when the
        server has acknowledged the worker's last commit (known in memory, no query)."""
        head = self._store.watch.head
        if self.acked >= head:
            return
        async with self._acked_changed:
            await self._acked_changed.wait_for(lambda: self.acked >= head)

    async def ship(self, link: _Link) -> None:
        """Send batches from the last acknowledged offset until the link drops."""
        subscription = self._store.subscribe(self._filter, after=self.acked)
        pending: deque[RecordedEvent] = deque()
        while True:
            if not pending:
                pending.extend(await subscription.next_page())
            batch: list[list[Any]] = []
            size = 0
            while pending and (not batch or size < BATCH_BYTES):
                event = pending.popleft()
                row = [event.offset, event.topic, event.stream, event.type, event.time_us]
                row.append(event.payload)
                batch.append(row)
                size += 64 + len(orjson.dumps(event.payload))
            through = batch[-1][0]
            await link.send({"op": "events", "through": through, "events": batch})
            async with self._acked_changed:
                while self.acked < through:
                    await self._acked_changed.wait()


class _Orphans:
    """Applies the orphan policy: an execution stopped with no client attached for
    ``timeout`` seconds is resumed or stopped, so a vanished client never leaves it hanging."""

    def __init__(self, control: ExecutionControl, policy: str, timeout: float) -> None:
        self._control = control
        self._policy = policy
        self._timeout = timeout
        self._all_attached = False
        self._attached: set[str] = set()
        self._stopped: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def clients(self, *, everything: bool, executions: list[str]) -> None:
        self._all_attached = everything
        self._attached = set(executions)
        self._review()

    def link_lost(self) -> None:
        self.clients(everything=False, executions=[])

    def note(self, notification: Notification) -> None:
        if notification.kind == "stopped":
            self._stopped.add(notification.execution_id)
        elif notification.kind in ("continued", "ended"):
            self._stopped.discard(notification.execution_id)
        self._review()

    def _orphaned(self, execution_id: str) -> bool:
        return not self._all_attached and execution_id not in self._attached

    def _review(self) -> None:
        for execution_id in list(self._timers):
            if execution_id not in self._stopped or not self._orphaned(execution_id):
                self._timers.pop(execution_id).cancel()
        loop = asyncio.get_running_loop()
        for execution_id in self._stopped:
            if self._orphaned(execution_id) and execution_id not in self._timers:
                self._timers[execution_id] = loop.call_later(
                    self._timeout, self._expire, execution_id
                )

    def _expire(self, execution_id: str) -> None:
        self._timers.pop(execution_id, None)
        log.warning(
            "no client attached to a stopped execution; applying the orphan policy",
            extra={"fields": {"execution": execution_id, "policy": self._policy}},
        )
        asyncio.get_running_loop().create_task(self._apply(execution_id))

    async def _apply(self, execution_id: str) -> None:
        try:
            info = await self._control.info(execution_id)
            if info.state is not RunState.STOPPED:
                return
            if self._policy == OrphanPolicy.RESUME:
                await self._control.resume(execution_id, StepKind.CONTINUE)
            else:
                await self._control.terminate(execution_id)
        except ControlError as error:
            log.warning("orphan policy failed: %s", error)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class PodWorker:
    """One pod's worker: its runtime, its event outbox and its link to the server."""

    def __init__(self, settings: WorkerSettings, store: Any) -> None:
        self.settings = settings
        self.store = store
        self.control = InProcessControl(store, tenant_id=settings.tenant_id)
        self.outbox = Outbox(store, settings.tenant_id)
        self.orphans = _Orphans(self.control, settings.orphan_policy, settings.orphan_timeout)
        self._notifications = self.control.notifications()
        self._pending: deque[Notification] = deque(maxlen=PENDING_NOTIFICATIONS)
        self._link: _Link | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._server_gone = False

    async def run(self) -> None:
        """Serve until asked to stop (SIGTERM or the server's ``shutdown``), then end the
        executions and flush their events."""
        notes = asyncio.create_task(self._forward_notifications(), name="pod-notifications")
        link = asyncio.create_task(self._stay_linked(), name="pod-link")
        await self._stopping.wait()
        log.info("pod worker stopping", extra={"fields": {"pod": self.settings.pod_id}})
        with contextlib.suppress(TimeoutError):  # a behaviour stuck in its code may not end
            await asyncio.wait_for(self.control.close(), FLUSH_ON_EXIT_SECONDS)
        if not self._server_gone:  # else nobody is left to take the events
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.flushed(), FLUSH_ON_EXIT_SECONDS)
        self.orphans.close()
        for task in (notes, link, *self._calls):
            task.cancel()
        await asyncio.gather(notes, link, *self._calls, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    async def _stay_linked(self) -> None:
        """Link, serve, and link again when the link drops; stop the worker once the server
        has been out of reach for the grace period."""
        delay = RECONNECT_MIN_SECONDS
        loop = asyncio.get_running_loop()
        unlinked_since = loop.time()
        url = self.settings.server_url + CONNECT_PATH
        headers = {
            "Authorization": f"Bearer {self.settings.token}",
            POD_HEADER: self.settings.pod_id,
        }
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
            while True:
                try:
                    async with session.ws_connect(
                        url,
                        headers=headers,
                        heartbeat=HEARTBEAT_SECONDS,
                        max_msg_size=MAX_FRAME_BYTES,
                        ssl=self.settings.tls,
                    ) as ws:
                        delay = RECONNECT_MIN_SECONDS
                        await self._serve(_Link(ws))
                    log.warning("link to the server closed; reconnecting")
                except (aiohttp.ClientError, OSError) as error:
                    log.warning("cannot reach the server (%s); retrying in %.2fs", error, delay)
                finally:
                    if self._link is not None:
                        unlinked_since = loop.time()
                    self._link = None
                    self.orphans.link_lost()
                if loop.time() - unlinked_since > self.settings.server_grace:
                    log.error(
                        "the server has been out of reach for %.0f s; the pod worker exits",
                        self.settings.server_grace,
                    )
                    self._server_gone = True
                    self.stop()
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _serve(self, link: _Link) -> None:
        await link.send({"op": "hello", "pod_id": self.settings.pod_id, "pid": os.getpid()})
        first = await link.ws.receive()
        if first.type is not aiohttp.WSMsgType.BINARY and first.type is not aiohttp.WSMsgType.TEXT:
            return
        if orjson.loads(first.data).get("op") != "welcome":
            log.error("the server refused the pod: %s", first.data)
            return
        log.info("linked to the server", extra={"fields": {"pod": self.settings.pod_id}})
        while self._pending:
            await self._send_notification(link, self._pending.popleft())
        self._link = link
        shipping = asyncio.create_task(self.outbox.ship(link), name="pod-outbox")
        try:
            async for message in link.ws:
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    await self._take(link, orjson.loads(message.data))
                elif message.type is aiohttp.WSMsgType.ERROR:
                    break
        finally:
            shipping.cancel()
            await asyncio.gather(shipping, return_exceptions=True)

    async def _take(self, link: _Link, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "ack":
            await self.outbox.acknowledge(int(frame["through"]))
        elif op == "call":
            task = asyncio.create_task(self._answer(link, frame), name=f"pod-call-{frame['id']}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        elif op == "tree":
            await link.send({"op": "result", "id": frame["id"], "value": _put_tree(frame)})
        elif op == "clients":
            self.orphans.clients(everything=bool(frame["all"]), executions=frame["executions"])
        elif op == "shutdown":
            self.stop()
        else:
            log.warning("unknown frame from the server: %r", op)

    async def _answer(self, link: _Link, frame: dict[str, Any]) -> None:
        """Run one call and send its answer. The answer is encoded here, inside the ``try``: a
        result orjson cannot encode (text with a lone surrogate, say) is answered as an error,
        where it once failed in this background task and left the caller waiting forever."""
        call_id, method = frame["id"], frame["method"]
        try:
            arguments = wire.decode_arguments(method, frame.get("arguments", {}))
            value = await getattr(self.control, method)(**arguments)
            answer = orjson.dumps({"op": "result", "id": call_id, "value": wire.encode(value)})
        except RUNTIME_CONTROL_FLOW:
            raise
        except BaseException as error:  # every failure goes back to the caller, worded; one
            # that escaped this task would end the worker's event loop
            if not isinstance(error, CanopyError):
                log.exception("control call %s failed", method)
            answer = _error_frame(call_id, method, error)
        await self.outbox.flushed()
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await link.send(answer)

    async def _forward_notifications(self) -> None:
        async for notification in self._notifications:
            self.orphans.note(notification)
            link = self._link
            if link is None:
                self._pending.append(notification)
                continue
            try:
                await self._send_notification(link, notification)
            except (ConnectionError, aiohttp.ClientError):
                self._pending.append(notification)

    @staticmethod
    async def _send_notification(link: _Link, notification: Notification) -> None:
        await link.send({"op": "notification", "notification": wire.encode(notification)})


def _error_frame(call_id: int, method: str, error: BaseException) -> bytes:
    """The encoded error answer of a call; an error whose own text cannot be encoded travels
    as a :class:`RemoteFailure` saying so, so that every call gets an answer."""
    try:
        return orjson.dumps({"op": "error", "id": call_id, "error": wire.encode_error(error)})
    except TypeError as unencodable:
        failure = RemoteFailure(f"the answer of {method} cannot be sent: {unencodable}")
        return orjson.dumps({"op": "error", "id": call_id, "error": wire.encode_error(failure)})


def _put_tree(frame: dict[str, Any]) -> str:
    """Write an uploaded tree definition under ``trees/`` (the name is the server's, made of
    letters, digits, ``_.-@`` only); its absolute path."""
    name = Path(frame["file"]).name
    path = (Path("trees") / name).resolve()
    path.parent.mkdir(exist_ok=True)
    path.write_text(frame["content"], encoding="utf-8")
    return str(path)


async def _assignment() -> dict[str, str]:
    """A spare's assignment, read from stdin without blocking the loop; empty at EOF."""
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line.strip():
        return {}
    assigned = json.loads(line)
    return {str(key): str(value) for key, value in assigned.items()}


async def _main(database: str, spare: bool) -> int:
    store = open_store(f"sqlite:///{database}")
    await store.start()
    try:
        if spare:
            assigned = await _assignment()
            if not assigned:
                return 0  # the provider closed without needing this spare
            os.environ.update(assigned)
        try:
            settings = WorkerSettings.from_environment(os.environ)
        except ValueError as error:
            print(f"canopy pod worker: {error}", file=sys.stderr)
            return 2
        log.info(
            "pod worker starting",
            extra={"fields": {"pod": settings.pod_id, "version": __version__, "pid": os.getpid()}},
        )
        worker = PodWorker(settings, store)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stop)
        await worker.run()
        return 0
    finally:
        await store.close()


def main() -> None:
    """Entry point of ``python -m canopy.server.pods.worker`` (what a pod runs).

    The process ends when the event loop does, through ``os._exit``: a thread the user's code
    started, or a tick thread stuck in a behaviour, would otherwise keep a worker with no loop
    (no link, no calls answered) alive, and its pod "reconnecting", for ever."""
    configure_logging(os.environ.get("CANOPY_LOG_LEVEL", "INFO"))
    try:
        sandbox_worker(os.environ)  # before any thread starts and any user code is imported
    except SandboxError as error:
        print(f"canopy pod worker: {error}", file=sys.stderr)
        sys.exit(3)
    spare = os.environ.get(SPARE_VARIABLE) == "1"
    code = 1
    try:
        start_tracing(POD_SERVICE)
        code = asyncio.run(_main(str(DATABASE), spare))
    except SettingsError as error:
        print(f"canopy pod worker: {error}", file=sys.stderr)
        code = 2
    except BaseException:  # the loop itself failed: say so, and exit all the same
        log.exception("the pod worker failed")
    finally:
        stop_tracing()  # os._exit skips interpreter shutdown, and with it the SDK's own flush
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
