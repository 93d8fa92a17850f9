"""Per-user debug pods on the server: start one when a user needs it, reach it over its link,
reap it when idle, and end its executions clearly when it dies.

Every user of every tenant has at most one pod at a time, reused across debug sessions. Its
lifecycle facts (requested, ready, stopped, failed, reaped) go to the ``debugging.internal``
topic on the stream ``pod/<id>``; ``PodRequested`` holds the digest of the pod's own token, so a
server restarted while pods run can take their reconnecting links back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from canopy.bridge import ALL_TENANTS, EventFilter, EventStore, NewEvent, Topic
from canopy.bridge.errors import InvalidJson
from canopy.bridge.jsondata import loads

from ..auth import Principal, token_digest
from ..remote.wire import PodTimeout, PodUnavailable
from ..runtime.control import ControlError, ExecutionInfo
from ..runtime.engine import Mode, Notification, RunState
from ..runtime.inprocess import NotificationStream
from .link import PRODUCER, LinkBroken, PodLink
from .protocol import HEARTBEAT_SECONDS, MAX_FRAME_BYTES, POD_HEADER
from .provider import PodError, PodLimits, PodProvider, PodSpec

__all__ = ["Pod", "PodManager", "PodPolicy"]

log = logging.getLogger(__name__)

INGEST_SLOTS: Final = 16
"""Batches of pod events decoded and appending at once; the others wait as received bytes,
which bounds the server's memory whatever the number of pods (the log's group commit merges
the concurrent appends anyway)."""
TERMINAL_EVENTS: Final = frozenset({"PodStopped", "PodFailed", "PodReaped"})
ENDING_TYPES: Final = frozenset({"ExecutionStarted", "TickCompleted", "ExecutionEnded"})
END_NOTICE_SECONDS: Final = 1.0
WAITING_CALLS: Final = frozenset({"settle", "wait_for_stop", "wait_for_end"})
"""Calls whose answer is a wait the client asked for: the call deadline does not cut them."""
"""How long a call whose link broke waits to learn whether the pod itself ended, and why."""


@dataclass(frozen=True, slots=True)
class PodPolicy:
    """How pods are run: limits, how many sessions a user may hold, and when idle pods go."""

    max_sessions: int = 5
    idle_seconds: float = 4 * 3600.0
    start_timeout: float = 30.0
    call_timeout: float = 60.0
    reconnect_grace: float = 4 * HEARTBEAT_SECONDS
    limits: PodLimits = field(default_factory=PodLimits)
    worker_env: tuple[tuple[str, str], ...] = ()


@dataclass(eq=False)
class Pod:
    """One user's pod as the server knows it."""

    pod_id: str
    tenant_id: str
    user_id: str
    token_digest: str
    started: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    link: PodLink | None = None
    link_changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set and cleared again each time the link comes or goes (and when the pod ends)."""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str | None = None
    adopted: bool = False
    reaped: bool = False
    pid: int | None = None
    """The worker's process id, as it said in its hello (for operators)."""
    calls: int = 0
    """Calls in flight: a pod answering one is not idle, however long the call waits."""
    live: dict[str, int] = field(default_factory=dict)
    """Executions not yet ended, with their last completed tick."""
    infos: dict[str, ExecutionInfo] = field(default_factory=dict)
    watcher: asyncio.Task[None] | None = None

    @property
    def owner(self) -> tuple[str, str]:
        return (self.tenant_id, self.user_id)

    @property
    def state(self) -> str:
        if self.ended.is_set():
            return "stopped"
        if self.link is not None:
            return "ready"
        return "starting" if not self.ready.is_set() else "reconnecting"

    def describe(self, provider: str) -> dict[str, Any]:
        return {
            "pod_id": self.pod_id,
            "state": self.state,
            "provider": provider,
            "executions": sorted(self.live),
            "pid": self.pid,
            "idle_seconds": round(time.monotonic() - self.last_used, 3),
        }


class PodManager:
    """Every pod of this server, and the clients listening to their notifications."""

    def __init__(
        self,
        store: EventStore,
        provider: PodProvider,
        policy: PodPolicy,
        server_url: str | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.policy = policy
        self.server_url = server_url
        self._pods: dict[str, Pod] = {}
        self._by_owner: dict[tuple[str, str], Pod] = {}
        self._ended: dict[tuple[str, str], dict[str, ExecutionInfo]] = {}
        self._subscribers: dict[tuple[str, str], set[NotificationStream]] = {}
        """Notification listeners of each (tenant, user)."""
        self._starting: dict[tuple[str, str], asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ingest_slots = asyncio.Semaphore(INGEST_SLOTS)
        self.on_ingested: list[Callable[[Sequence[NewEvent]], None]] = []
        """Called with every batch of events a pod's link wrote to the log (metrics)."""
        self.on_ready: list[Callable[[float], None]] = []
        """Called with the seconds a new pod took to become ready (metrics)."""

    # -- lifecycle of the manager ------------------------------------------------------------

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle(), name="canopy-pod-reaper")
        self.provider.prepare(self.policy.limits)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_report_failure)

    async def close(self) -> None:
        """Stop the reaper and every pod (their workers flush their events first). Safe to
        call twice."""
        for task in (self._reaper, *self._tasks):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._reaper, *self._tasks) if t), return_exceptions=True
        )
        pods = list(self._pods.values())
        await asyncio.gather(*(self.stop(pod, reason="server shutdown") for pod in pods))
        await self.provider.close()
        for listeners in self._subscribers.values():
            for stream in list(listeners):
                stream.end()

    # -- pods ----------------------------------------------------------------------------------

    def advertise(self, url: str) -> None:
        """Where workers reach this server, unless configured: the address clients use."""
        if self.server_url is None:
            self.server_url = url

    def current(self, principal: Principal) -> Pod | None:
        """The user's pod, if one is starting or running."""
        return self._by_owner.get((principal.tenant_id, principal.user_id))

    def pods(self) -> list[Pod]:
        return list(self._pods.values())

    async def ensure(self, principal: Principal) -> Pod:
        """The user's ready pod, started now if needed; :class:`PodUnavailable` when it cannot
        start within the policy's time."""
        owner = (principal.tenant_id, principal.user_id)
        lock = self._starting.setdefault(owner, asyncio.Lock())
        async with lock:
            pod = self._by_owner.get(owner)
            if pod is None:
                pod = await self._start(principal)
        await self._until_ready(pod)
        pod.last_used = time.monotonic()
        return pod

    async def _start(self, principal: Principal) -> Pod:
        pod_id = secrets.token_hex(6)
        token = secrets.token_urlsafe(32)
        pod = Pod(pod_id, principal.tenant_id, principal.user_id, token_digest(token))
        await self._fact(
            pod,
            "PodRequested",
            provider=self.provider.name,
            token_sha256=pod.token_digest,
        )
        spec = PodSpec(
            pod_id=pod_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            server_url=self.server_url or "",
            token=token,
            limits=self.policy.limits,
            env=dict(self.policy.worker_env),
        )
        try:
            await self.provider.start(spec)
        except PodError as error:
            await self._fact(pod, "PodFailed", reason=str(error))
            raise PodUnavailable(f"cannot start a debug pod: {error}") from error
        self._track(pod)
        pod.watcher = asyncio.create_task(self._watch(pod), name=f"canopy-pod-{pod_id}")
        pod.watcher.add_done_callback(_report_failure)
        return pod

    def _track(self, pod: Pod) -> None:
        self._pods[pod.pod_id] = pod
        self._by_owner[pod.owner] = pod

    async def _until_ready(self, pod: Pod) -> None:
        ready = asyncio.ensure_future(pod.ready.wait())
        ended = asyncio.ensure_future(pod.ended.wait())
        try:
            await asyncio.wait(
                {ready, ended},
                timeout=self.policy.start_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            ready.cancel()
            ended.cancel()
        if pod.ended.is_set():
            raise PodUnavailable(f"the debug pod ended before it was ready: {pod.end_reason}")
        if not pod.ready.is_set():
            await self.stop(pod, reason="not ready in time")
            raise PodUnavailable(
                f"the debug pod was not ready within {self.policy.start_timeout:g} s"
            )

    async def _watch(self, pod: Pod) -> None:
        """Wait for the provider to report the pod's end, then settle its accounts."""
        try:
            exit_ = await self.provider.wait(pod.pod_id)
        except PodError as error:
            await self._ended_pod(pod, f"lost track of the pod: {error}", None, failed=True)
            return
        failed = pod.end_reason is None  # nobody asked it to stop
        await self._ended_pod(pod, pod.end_reason or exit_.reason, exit_.exit_code, failed=failed)
        await self.provider.stop(pod.pod_id)  # a finished Kubernetes pod stays until deleted

    async def stop(self, pod: Pod, *, reason: str, reaped: bool = False) -> None:
        """Ask the pod to end (its executions end and flush), then remove it."""
        if pod.ended.is_set():
            return
        pod.end_reason = reason
        pod.reaped = reaped
        if pod.link is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await pod.link.send({"op": "shutdown"})
        if pod.adopted:
            await self._ended_pod(pod, reason, None, failed=False)
            return
        await self.provider.stop(pod.pod_id)
        if pod.watcher is not None:
            await asyncio.gather(pod.watcher, return_exceptions=True)

    async def _ended_pod(
        self,
        pod: Pod,
        reason: str,
        exit_code: int | None,
        *,
        failed: bool,
    ) -> None:
        """The pod is gone: fail its pending calls, end its executions in the log with the
        reason, tell every client, and record the fact."""
        if pod.ended.is_set():
            return
        pod.end_reason = reason
        pod.ended.set()
        _pulse(pod.link_changed)
        if self._by_owner.get(pod.owner) is pod:
            del self._by_owner[pod.owner]
        self._pods.pop(pod.pod_id, None)
        if pod.link is not None:
            pod.link.broken(f"the debug pod {pod.pod_id} ended: {reason}")
        if pod.live and failed:
            await self._end_executions(pod, reason)
        if failed:
            log.warning("debug pod died", extra={"fields": {"pod": pod.pod_id, "reason": reason}})
            await self._fact(pod, "PodFailed", reason=reason, exit_code=exit_code)
        elif pod.reaped:
            await self._fact(pod, "PodReaped", reason=reason)
        else:
            await self._fact(pod, "PodStopped", reason=reason)

    async def _end_executions(self, pod: Pod, reason: str) -> None:
        detail = f"the debug pod died: {reason}"
        events = [
            NewEvent(
                tenant_id=pod.tenant_id,
                topic=Topic.EXECUTION,
                stream=f"execution/{execution_id}",
                type="ExecutionEnded",
                payload={
                    "execution_id": execution_id,
                    "reason": "pod_died",
                    "ticks": tick,
                    "detail": detail,
                },
                producer=PRODUCER,
            )
            for execution_id, tick in pod.live.items()
        ]
        await self.store.append(events)
        ended = self._ended.setdefault(pod.owner, {})
        for execution_id, tick in pod.live.items():
            known = pod.infos.get(execution_id)
            ended[execution_id] = ExecutionInfo(
                execution_id,
                known.program if known else "",
                known.tree if known else "",
                known.mode if known else Mode.MANUAL,
                RunState.ENDED,
                tick,
                None,
                "pod_died",
                detail,
            )
            self._publish(
                pod.owner,
                Notification("ended", execution_id, reason="pod_died", text=detail),
            )
        pod.live.clear()

    def ended_execution(self, principal: Principal, execution_id: str) -> ExecutionInfo | None:
        """An execution that ended with its pod, as it was last known."""
        return self._ended.get((principal.tenant_id, principal.user_id), {}).get(execution_id)

    def ended_executions(self, principal: Principal) -> list[ExecutionInfo]:
        return list(self._ended.get((principal.tenant_id, principal.user_id), {}).values())

    async def _reap_idle(self) -> None:
        interval = min(60.0, max(self.policy.idle_seconds / 4, 0.05))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for pod in list(self._pods.values()):
                idle = now - pod.last_used
                busy = pod.live or pod.calls or pod.link is None
                if not busy and idle > self.policy.idle_seconds:
                    log.info("reaping idle pod", extra={"fields": {"pod": pod.pod_id}})
                    await self.stop(pod, reason=f"idle for {idle:.0f} s", reaped=True)

    # -- calls ---------------------------------------------------------------------------------

    async def call(self, pod: Pod, method: str, **arguments: Any) -> Any:
        """Run a control call in ``pod``; a dead pod is reported as such, and a call that is
        not answered within the call deadline (user code stuck in a factory or a behaviour)
        as :class:`PodTimeout`, so that every caller gets an answer."""
        link = pod.link or await self._relinked(pod)
        deadline = None if method in WAITING_CALLS else self.policy.call_timeout
        pod.calls += 1
        try:
            async with asyncio.timeout(deadline):
                result = await link.call(method, arguments)
        except TimeoutError:
            raise PodTimeout(
                f"the debug pod did not answer {method} within {self.policy.call_timeout:g} s"
            ) from None
        except LinkBroken as error:
            raise PodUnavailable(await self._why_broken(pod, error)) from error
        finally:
            pod.calls -= 1
            pod.last_used = time.monotonic()
        self._remember(pod, result)
        return result

    async def _relinked(self, pod: Pod) -> PodLink:
        """The pod's link once it is back (a worker reconnects within seconds), or
        :class:`PodUnavailable` when the pod ends or the grace period passes first."""
        try:
            async with asyncio.timeout(self.policy.reconnect_grace):
                while pod.link is None and not pod.ended.is_set():
                    await pod.link_changed.wait()
        except TimeoutError:
            pass
        if pod.link is None:
            if pod.ended.is_set():
                raise PodUnavailable(f"the debug pod ended: {pod.end_reason}")
            raise PodUnavailable(f"the debug pod {pod.pod_id} is reconnecting; retry shortly")
        return pod.link

    async def put_tree(self, pod: Pod, file_name: str, content: str) -> str:
        """Ship a tree definition to the pod; where it landed there."""
        link = pod.link or await self._relinked(pod)
        try:
            return await link.put_tree(file_name, content)
        except LinkBroken as error:
            raise PodUnavailable(await self._why_broken(pod, error)) from error

    async def _why_broken(self, pod: Pod, error: LinkBroken) -> str:
        """Why a call's link broke: the pod's end when it follows within moments (a worker
        process that exited, by ``os._exit`` in a behaviour say, is known to its provider at
        once, but its link may drop first), else the link's own words."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(END_NOTICE_SECONDS):
                await pod.ended.wait()
        if pod.ended.is_set():
            return f"the debug pod ended: {pod.end_reason}"
        return str(error)

    @staticmethod
    def _remember(pod: Pod, result: Any) -> None:
        infos = result if isinstance(result, list) else [result]
        for info in infos:
            if isinstance(info, ExecutionInfo):
                pod.infos[info.id] = info
                if info.state is not RunState.ENDED:
                    pod.live.setdefault(info.id, info.tick)

    # -- links -----------------------------------------------------------------------------------

    async def serve_link(self, request: web.Request) -> web.WebSocketResponse:
        """The worker's WebSocket: authenticated by the pod's own token, then kept until it
        drops. A pod this server did not start (a restart) is taken back when the log says
        it was requested with that token and has not ended."""
        pod_id = request.headers.get(POD_HEADER, "")
        secret = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        pod = self._pods.get(pod_id) or await self._adopt(pod_id, secret)
        if pod is None or not hmac.compare_digest(pod.token_digest, token_digest(secret)):
            raise web.HTTPUnauthorized(reason="unknown pod or wrong pod token")
        if pod.link is not None:
            # The worker only reconnects when it believes its link dead: believe it.
            await pod.link.ws.close(code=WSCloseCode.GOING_AWAY, message=b"replaced")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        first = await ws.receive()
        hello = _frame(first.data) if first.type in (WSMsgType.TEXT, WSMsgType.BINARY) else {}
        if hello.get("op") != "hello" or hello.get("pod_id") != pod.pod_id:
            await ws.close(code=1008, message=b"expected hello")
            return ws
        link = PodLink(
            ws,
            pod_id=pod.pod_id,
            tenant_id=pod.tenant_id,
            store=self.store,
            on_events=lambda events: self._follow(pod, events),
            on_notification=lambda note: self._publish(pod.owner, note),
            ingest_slots=self._ingest_slots,
        )
        await link.send({"op": "welcome"})
        pod.pid = hello.get("pid") if isinstance(hello.get("pid"), int) else None
        pod.link = link
        pod.last_used = time.monotonic()
        _pulse(pod.link_changed)
        first_link = not pod.ready.is_set()
        await self._send_clients(pod)
        if first_link:
            startup = time.monotonic() - pod.started
            for observe in self.on_ready:
                observe(startup)
            startup_ms = round(startup * 1000, 1)
            try:
                # In the log before anyone is told the pod is ready: an answer never runs
                # ahead of the facts behind it.
                await self._fact(pod, "PodReady", startup_ms=startup_ms)
            finally:
                pod.ready.set()
            log.info("debug pod ready", extra={"fields": {"pod": pod.pod_id, "ms": startup_ms}})
        if pod.adopted and first_link:
            self._background(self._recount(pod))
        try:
            await link.receive()
        finally:
            if pod.link is link:
                pod.link = None
                _pulse(pod.link_changed)
            if not pod.ended.is_set():
                self._background(self._await_reconnect(pod))
        return ws

    async def _recount(self, pod: Pod) -> None:
        """Learn what an adopted pod is running."""
        with contextlib.suppress(ControlError):
            await self.call(pod, "executions")

    async def _await_reconnect(self, pod: Pod) -> None:
        """A pod whose link stays down past the grace period is considered dead when no
        provider watches it (a pod taken back after a restart)."""
        if not pod.adopted:
            return
        await asyncio.sleep(self.policy.reconnect_grace)
        if pod.link is None and not pod.ended.is_set():
            await self._ended_pod(pod, "its link did not come back", None, failed=True)

    async def _adopt(self, pod_id: str, secret: str) -> Pod | None:
        if not pod_id or not secret:
            return None
        stream = EventFilter.of(ALL_TENANTS, streams=[f"pod/{pod_id}"])
        facts = (await self.store.read(stream, limit=100)).events
        if any(event.type in TERMINAL_EVENTS for event in facts):
            return None
        requested = next((event for event in facts if event.type == "PodRequested"), None)
        if requested is None or "token_sha256" not in requested.payload:
            return None
        pod = Pod(
            pod_id,
            requested.tenant_id,
            requested.payload["user_id"],
            requested.payload["token_sha256"],
            adopted=True,
        )
        if pod.owner in self._by_owner:
            return None
        log.info("taking back a running pod", extra={"fields": {"pod": pod_id}})
        self._track(pod)
        return pod

    def _follow(self, pod: Pod, events: Sequence[NewEvent]) -> None:
        """Keep the pod's live executions and their last tick, from the events it ships."""
        for observe in self.on_ingested:
            observe(events)
        for event in events:
            if event.type not in ENDING_TYPES:
                continue
            execution_id = event.payload["execution_id"]
            if event.type == "ExecutionEnded":
                pod.live.pop(execution_id, None)
            elif event.type == "TickCompleted":
                pod.live[execution_id] = event.payload["tick"]
            else:
                pod.live.setdefault(execution_id, 0)

    # -- notifications -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(
        self, principal: Principal, execution_id: str | None
    ) -> AsyncIterator[NotificationStream]:
        """Notifications for the user (of one execution, or all), while the block runs; a
        client listening to an execution counts as attached to it (see the orphan policy)."""
        owner = (principal.tenant_id, principal.user_id)
        stream = NotificationStream(self._subscribers.setdefault(owner, set()), execution_id)
        self._subscribers[owner].add(stream)
        await self._clients_changed(owner)
        try:
            yield stream
        finally:
            stream.close()
            await self._clients_changed(owner)

    def _publish(self, owner: tuple[str, str], notification: Notification) -> None:
        for stream in list(self._subscribers.get(owner, ())):
            stream.offer(notification)

    async def _clients_changed(self, owner: tuple[str, str]) -> None:
        pod = self._by_owner.get(owner)
        if pod is not None:
            await self._send_clients(pod)

    async def _send_clients(self, pod: Pod) -> None:
        listeners = self._subscribers.get(pod.owner, set())
        frame = {
            "op": "clients",
            "all": any(s.execution_id is None for s in listeners),
            "executions": sorted({s.execution_id for s in listeners if s.execution_id}),
        }
        if pod.link is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await pod.link.send(frame)

    # -- facts -----------------------------------------------------------------------------------

    async def _fact(self, pod: Pod, kind: str, **payload: Any) -> None:
        body = {"pod_id": pod.pod_id, "user_id": pod.user_id}
        body.update({key: value for key, value in payload.items() if value is not None})
        event = NewEvent(
            tenant_id=pod.tenant_id,
            topic=Topic.INTERNAL,
            stream=f"pod/{pod.pod_id}",
            type=kind,
            payload=body,
            producer=PRODUCER,
        )
        await self.store.append([event])


def _frame(data: str | bytes) -> dict[str, Any]:
    try:
        frame = loads(data.encode() if isinstance(data, str) else data)
    except InvalidJson:
        return {}
    return frame if isinstance(frame, dict) else {}


def _report_failure(task: asyncio.Task[Any]) -> None:
    """A pod task must end quietly or by cancellation; anything else is a bug, said loudly."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("pod task %s failed", task.get_name(), exc_info=error)


def _pulse(event: asyncio.Event) -> None:
    """Wake everyone waiting on ``event`` now, and leave it ready for the next change."""
    event.set()
    event.clear()
