"""Kubernetes pods (``CANOPY_PODS=kubernetes``): each debug pod is one Kubernetes pod running the
pod worker, so the cluster (not the server's machine) enforces its memory and CPU, and a
runaway behaviour is confined to a locked-down container of its own.

The official ``kubernetes`` client is synchronous; every call runs in a thread so the server's
event loop never blocks on the API server. Watches hold their thread for as long as the pod
lives, so they get an executor of their own and cannot starve the loop's default one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import urllib3.exceptions
from kubernetes import client, config, watch

from .provider import PodError, PodExit, PodProvider, PodSpec, worker_environment

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_NAMESPACE",
    "POD_APP_LABEL",
    "POD_NAME_PREFIX",
    "KubernetesPodProvider",
    "label_value",
    "pod_name",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_NAMESPACE: Final = "canopy"
DEFAULT_IMAGE: Final = "canopy-debug:latest"
DEFAULT_COMMAND: Final = ("python", "-m", "canopy.server.pods.worker")
POD_NAME_PREFIX: Final = "canopy-pod-"
POD_APP_LABEL: Final = "canopy-debug-pod"
"""Value of ``app.kubernetes.io/name`` on every debug pod: what operators (and a clean-up job)
select on to find them all."""
CONTAINER_NAME: Final = "worker"
WORKDIR: Final = "/work"
RUN_AS_USER: Final = 1000
STOP_GRACE_SECONDS: Final = 5
"""How long a worker gets to flush its events after SIGTERM before the kubelet kills it."""
WATCH_TIMEOUT_SECONDS: Final = 300
"""How long one watch request stays open before it is resumed; short enough that a connection
silently dropped by a load balancer is noticed, long enough to cost the API server little."""
CLOSE_WAIT_MARGIN_SECONDS: Final = 30.0
"""On ``close()``, how long past the grace period to wait for the cluster to confirm deletions."""
MAX_WATCHES: Final = 1024
"""Threads for concurrent ``wait`` calls (one each, created only as needed)."""
MAX_WATCH_FAILURES: Final = 5
"""Consecutive broken watch connections (not timeouts) tolerated before ``wait`` gives up."""

_POD_ID = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_UNSAFE = re.compile(r"[^-A-Za-z0-9_.]+")
_LABEL_MAX = 63
_TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})
_HTTP_GONE: Final = 410
_HTTP_NOT_FOUND: Final = 404
_HTTP_CONFLICT: Final = 409
_HTTP_FORBIDDEN: Final = 403


def pod_name(pod_id: str) -> str:
    """The Kubernetes name of a debug pod: one name per pod id, so a second ``start`` of the
    same id is refused by the API server itself, even across server replicas."""
    return f"{POD_NAME_PREFIX}{pod_id}"


def label_value(text: str) -> str:
    """``text`` as a valid label value (at most 63 of ``[-A-Za-z0-9_.]``, alphanumeric at both
    ends). A value that had to change gets a short hash of the original appended, so two users
    whose ids sanitise alike (``a@b.c`` and ``a_b.c``) still carry different labels; the exact
    id is kept in an annotation of the same key."""
    if len(text) <= _LABEL_MAX and _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    base = _LABEL_UNSAFE.sub("_", text)[: _LABEL_MAX - len(digest) - 1]
    base = base.strip("-_.")
    return f"{base}-{digest}" if base else digest


def _memory_quantity(memory_bytes: int) -> str:
    """Bytes as a Kubernetes quantity, in the largest binary unit that is exact (``2Gi``), so
    ``kubectl describe`` shows what an operator would have written."""
    for suffix, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if memory_bytes % factor == 0:
            return f"{memory_bytes // factor}{suffix}"
    return str(memory_bytes)


def _cpu_quantity(cpus: float) -> str:
    millicores = round(cpus * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _status_message(exc: client.ApiException) -> str:
    """The ``message`` of the ``Status`` the API server sent with an error, which says what
    actually went wrong (the quota exceeded, the RBAC verb missing); the raw body otherwise."""
    body = exc.body  # the client decodes the response's bytes
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            return str(body).strip()
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
        return str(body).strip()
    return str(exc.reason or "no message")


def _api_error(action: str, exc: client.ApiException) -> PodError:
    message = _status_message(exc)
    if exc.status == _HTTP_FORBIDDEN:
        return PodError(f"forbidden to {action} (HTTP 403): {message}")
    return PodError(f"cannot {action}: HTTP {exc.status} {exc.reason}: {message}")


@dataclass(slots=True)
class _Pod:
    """What this provider knows of a pod it started."""

    deleted: bool = False
    exit: PodExit | None = None


@dataclass(slots=True, eq=False)
class _WatchHandle:
    """Lets the event loop end a watch that a thread is blocked in: a cancelled ``wait`` (or
    ``close``) shuts the watch's socket down, so the blocked read returns at once and the
    thread is free, instead of holding on until the server-side timeout.

    The handle adopts the watch's HTTP response itself, the moment the request returns:
    ``Watch.stop()`` alone can miss a watch whose response it has not recorded yet, and
    leave its thread reading for minutes."""

    cancelled: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _response: Any = None

    def adopt(self, response: Any) -> None:
        """Record the streaming response; if cancelled already, close it and raise."""
        with self._lock:
            if not self.cancelled.is_set():
                self._response = response
                return
        response.close()
        response.release_conn()
        raise _Cancelled

    def release(self) -> None:
        with self._lock:
            self._response = None

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            response, self._response = self._response, None
            if response is not None:
                _shut_down(response)


def _shut_down(response: Any) -> None:
    """Shut the socket under a streaming urllib3 response down (from another thread): a
    blocked read then sees the end of the stream. A response already closed and released has
    no connection (or socket) left, so this never touches a socket reused for another call."""
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _Cancelled(Exception):
    """The wait was cancelled before its watch request returned."""


class KubernetesPodProvider(PodProvider):
    """Debug pods as Kubernetes pods in one namespace.

    Each pod runs ``command`` in ``image`` as an unprivileged user with a read-only root file
    system (``/work`` and ``/tmp`` are empty, writable volumes), no service-account token and
    no capabilities: the code under debug is the user's, and it must not reach the cluster's
    API or the node. Requests equal limits, so a pod is never evicted for using what it was
    promised, and the memory limit is what turns a runaway allocation into ``OOMKilled``.

    A pod that has ended stays in the cluster (for ``kubectl logs``) until ``stop`` or
    ``close`` removes it. A pod that never starts (image pull failure, unschedulable) has not
    ended, so ``wait`` keeps waiting: how long a worker may take to say hello is the caller's
    decision, as for every provider. The pod's token travels in its environment, so it is as
    secret as the namespace's pods are to those who may read them.
    """

    name = "kubernetes"

    def __init__(
        self,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        image: str = DEFAULT_IMAGE,
        command: Sequence[str] = DEFAULT_COMMAND,
        api_client: client.ApiClient | None = None,
        watch_timeout: int = WATCH_TIMEOUT_SECONDS,
        stop_grace_seconds: int = STOP_GRACE_SECONDS,
    ) -> None:
        """``api_client`` defaults to the in-cluster service account, else the local kubeconfig
        (``KUBECONFIG`` or ``~/.kube/config``); ``PodError`` when there is neither.
        ``watch_timeout`` is the server-side timeout of one watch request, in seconds."""
        if watch_timeout < 1:
            raise ValueError("watch_timeout must be at least one second")
        if stop_grace_seconds < 0:
            raise ValueError("stop_grace_seconds cannot be negative")
        self.namespace = namespace
        self.image = image
        self.command = tuple(command)
        self.watch_timeout = int(watch_timeout)
        self.stop_grace_seconds = int(stop_grace_seconds)
        self._owns_client = api_client is None
        self.api_client = api_client if api_client is not None else _load_api_client()
        self._api = client.CoreV1Api(self.api_client)
        self._pods: dict[str, _Pod] = {}
        self._watches: set[_WatchHandle] = set()
        self._watch_threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=MAX_WATCHES, thread_name_prefix="canopy-kube-watch"
        )
        self._closed = False

    # -- PodProvider -------------------------------------------------------------------------

    async def start(self, spec: PodSpec) -> None:
        self._check_open()
        manifest = self.manifest(spec)
        name = manifest["metadata"]["name"]
        try:
            await self._call(self._api.create_namespaced_pod, self.namespace, manifest)
        except client.ApiException as exc:
            if exc.status == _HTTP_CONFLICT:
                raise PodError(
                    f"pod {spec.pod_id!r} already exists (Kubernetes pod {name!r} in namespace "
                    f"{self.namespace!r}: {_status_message(exc)})"
                ) from exc
            raise _api_error(f"create pod {name!r} in namespace {self.namespace!r}", exc) from exc
        self._pods[spec.pod_id] = _Pod()
        log.info(
            "kubernetes pod created",
            extra={
                "fields": {
                    "pod": spec.pod_id,
                    "name": name,
                    "namespace": self.namespace,
                    "user": spec.user_id,
                }
            },
        )

    async def wait(self, pod_id: str) -> PodExit:
        pod = self._pods.get(pod_id)
        if pod is not None and pod.exit is not None:
            return pod.exit
        self._check_open()
        handle = _WatchHandle()
        self._watches.add(handle)
        loop = asyncio.get_running_loop()
        try:
            ended = await loop.run_in_executor(
                self._watch_threads, self._wait_blocking, pod_id, handle
            )
        except _PodMissing:
            if pod is None:
                raise PodError(f"no pod {pod_id!r} in namespace {self.namespace!r}") from None
            # ours, and gone before we looked: it was deleted (by stop(), or by someone else)
            ended = PodExit(pod_id, "deleted")
        except client.ApiException as exc:
            raise _api_error(f"watch pod {pod_name(pod_id)!r}", exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from exc
        finally:
            handle.cancel()
            self._watches.discard(handle)
        if ended is None:  # close() ended this watch: it knows the answer if anyone does
            if pod is not None and pod.exit is not None:
                return pod.exit
            raise PodError(f"stopped waiting for pod {pod_id!r}: the provider was closed")
        # Remember the first answer, so every waiter (and every later wait) hears the same one;
        # unless the pod was started again under the same id meanwhile.
        if pod is not None and self._pods.get(pod_id) is pod:
            if pod.exit is None:
                pod.exit = ended
            return pod.exit
        return ended

    async def stop(self, pod_id: str) -> None:
        """Delete the pod with a grace period: the kubelet sends SIGTERM, and SIGKILL once
        ``stop_grace_seconds`` have passed. Returns once the API server accepted the deletion;
        ``wait`` reports when the pod is actually gone."""
        name = pod_name(pod_id)
        deleted: Any = None
        try:
            deleted = await self._call(
                self._api.delete_namespaced_pod,
                name,
                self.namespace,
                grace_period_seconds=self.stop_grace_seconds,
            )
        except client.ApiException as exc:
            if exc.status != _HTTP_NOT_FOUND:
                raise _api_error(
                    f"delete pod {name!r} in namespace {self.namespace!r}", exc
                ) from exc
        pod = self._pods.get(pod_id)
        if pod is not None:
            pod.deleted = True
            # the last state of a pod that had already ended: a later wait() still says why
            if pod.exit is None:
                pod.exit = _exit_of(pod_id, deleted)

    async def close(self) -> None:
        """Delete every pod this provider started and still had, wait (bounded) until the
        cluster confirms they are gone, then release the API client if it was ours."""
        if self._closed:
            return
        to_stop = [pod_id for pod_id, pod in self._pods.items() if not pod.deleted]
        stopped = await asyncio.gather(
            *(self.stop(pod_id) for pod_id in to_stop), return_exceptions=True
        )
        for pod_id, result in zip(to_stop, stopped, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "cannot delete kubernetes pod on close",
                    extra={"fields": {"pod": pod_id, "error": str(result)}},
                )
        deadline = self.stop_grace_seconds + CLOSE_WAIT_MARGIN_SECONDS
        try:
            async with asyncio.timeout(deadline):
                await asyncio.gather(
                    *(self.wait(pod_id) for pod_id in to_stop), return_exceptions=True
                )
        except TimeoutError:
            log.warning(
                "kubernetes pods not confirmed gone on close",
                extra={"fields": {"pods": to_stop, "seconds": deadline}},
            )
        self._closed = True
        for handle in list(self._watches):
            handle.cancel()
        self._watch_threads.shutdown(wait=False, cancel_futures=True)
        if self._owns_client:
            await asyncio.to_thread(self.api_client.close)

    # -- the pod -----------------------------------------------------------------------------

    def manifest(self, spec: PodSpec) -> dict[str, Any]:
        """The pod object ``start`` creates, as the JSON the API server receives."""
        if len(spec.pod_id) > _LABEL_MAX or not _POD_ID.fullmatch(spec.pod_id):
            raise PodError(
                f"pod id {spec.pod_id!r} cannot name a Kubernetes pod: use at most 63 lower-case "
                "letters, digits and '-', starting and ending with a letter or digit"
            )
        if spec.limits.memory_bytes <= 0 or round(spec.limits.cpus * 1000) <= 0:
            raise PodError(f"pod {spec.pod_id!r} has no memory or CPU to run with: {spec.limits}")
        resources = {
            "memory": _memory_quantity(spec.limits.memory_bytes),
            "cpu": _cpu_quantity(spec.limits.cpus),
        }
        # HOME must be writable for libraries that cache there; the root file system is not.
        env = {"HOME": WORKDIR, **worker_environment(spec)}
        restricted = {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name(spec.pod_id),
                "namespace": self.namespace,
                "labels": {
                    "app.kubernetes.io/name": POD_APP_LABEL,
                    "app.kubernetes.io/managed-by": "canopy",
                    "canopy.dev/pod-id": spec.pod_id,
                    "canopy.dev/user": label_value(spec.user_id),
                    "canopy.dev/tenant": label_value(spec.tenant_id),
                },
                "annotations": {
                    "canopy.dev/user": spec.user_id,
                    "canopy.dev/tenant": spec.tenant_id,
                },
            },
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": self.stop_grace_seconds,
                "securityContext": {**restricted, "fsGroup": RUN_AS_USER},
                "containers": [
                    {
                        "name": CONTAINER_NAME,
                        "image": self.image,
                        "command": list(self.command),
                        "workingDir": WORKDIR,
                        "env": [{"name": key, "value": value} for key, value in env.items()],
                        "resources": {"requests": dict(resources), "limits": dict(resources)},
                        "securityContext": {
                            **restricted,
                            "allowPrivilegeEscalation": False,
                            "privileged": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [
                            {"name": "work", "mountPath": WORKDIR},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "work", "emptyDir": {}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        }

    # -- watching ----------------------------------------------------------------------------

    def _wait_blocking(self, pod_id: str, handle: _WatchHandle) -> PodExit | None:
        """List the pod, then watch it from the list's resource version until it ends.

        Returns its exit, or ``None`` when cancelled; ``_PodMissing`` when there is no such pod.
        A watch that times out is resumed from the last resource version seen; one whose
        version has expired (410 Gone) starts over with a fresh list, which is exactly what the
        API server asks of a client."""
        name = pod_name(pod_id)
        selector = f"metadata.name={name}"
        failures = 0
        while not handle.cancelled.is_set():
            listed = self._api.list_namespaced_pod(self.namespace, field_selector=selector)
            if not listed.items:
                raise _PodMissing
            ended = _exit_of(pod_id, listed.items[0])
            if ended is not None:
                return ended
            version = listed.metadata.resource_version if listed.metadata else None
            while not handle.cancelled.is_set():
                current = watch.Watch(return_type="V1Pod")
                events = current.stream(
                    functools.partial(self._watch_request, handle),
                    self.namespace,
                    field_selector=selector,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=self.watch_timeout,
                    # a read timeout a little past the server's catches a dead connection
                    _request_timeout=(30, self.watch_timeout + 30),
                )
                try:
                    with contextlib.closing(events):
                        for event in events:
                            if handle.cancelled.is_set():
                                return None
                            ended = _exit_of_event(pod_id, event)
                            if ended is not None:
                                return ended
                except _Cancelled:
                    return None
                except client.ApiException as exc:
                    if exc.status != _HTTP_GONE:
                        raise
                    log.debug("pod watch expired; listing again", extra={"fields": {"pod": name}})
                    break
                except (urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError):
                    if handle.cancelled.is_set():
                        return None
                    failures += 1
                    if failures >= MAX_WATCH_FAILURES:
                        raise
                    log.info("pod watch broke; listing again", extra={"fields": {"pod": name}})
                    handle.cancelled.wait(min(2.0**failures / 4, 5.0))
                    break
                finally:
                    handle.release()
                failures = 0
                version = current.resource_version or version
        return None

    def _watch_request(self, handle: _WatchHandle, *args: Any, **kwargs: Any) -> Any:
        """``list_namespaced_pod`` for ``Watch.stream``, handing the streaming response to
        ``handle`` before the watch reads from it (see ``_WatchHandle``)."""
        response = self._api.list_namespaced_pod(*args, **kwargs)
        handle.adopt(response)
        return response

    # -- helpers -----------------------------------------------------------------------------

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> PodError:
        host = self.api_client.configuration.host
        return PodError(f"cannot reach the Kubernetes API at {host}: {exc}")

    def _check_open(self) -> None:
        if self._closed:
            raise PodError("the Kubernetes pod provider is closed")


class _PodMissing(Exception):
    """Raised in the watch thread when the pod does not exist (any more)."""


def _exit_of_event(pod_id: str, event: dict[str, Any]) -> PodExit | None:
    """The exit a watch event reveals: a terminal phase, or the pod's deletion."""
    kind = event["type"]
    if kind == "DELETED":
        return _exit_of(pod_id, event["object"]) or PodExit(pod_id, "deleted")
    if kind in ("ADDED", "MODIFIED"):
        return _exit_of(pod_id, event["object"])
    return None  # BOOKMARK: the watch has already taken its resource version


def _exit_of(pod_id: str, pod: Any) -> PodExit | None:
    """How ``pod`` (a ``V1Pod``) ended, or ``None`` while it has not. A reason on the pod
    itself (``Evicted``, ``DeadlineExceeded``) says why the kubelet ended it and is what the
    user needs; otherwise the worker container's terminated state does (``OOMKilled`` / 137,
    ``Error`` / 1, ``Completed`` / 0)."""
    status = getattr(pod, "status", None)
    if status is None or status.phase not in _TERMINAL_PHASES:
        return None
    reason: str | None = status.reason
    exit_code: int | None = None
    for container in status.container_statuses or ():
        terminated = container.state.terminated if container.state is not None else None
        if container.name == CONTAINER_NAME and terminated is not None:
            exit_code = terminated.exit_code
            reason = reason or terminated.reason
            break
    if not reason:
        reason = {0: "Completed", None: status.phase}.get(exit_code, "Error")
    return PodExit(pod_id, reason, exit_code)


def _load_api_client() -> client.ApiClient:
    """A client for the cluster this server runs in, else the one the local kubeconfig names.
    Loaded into a configuration of its own so no global client default is changed."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException as in_cluster:
        try:
            # read KUBECONFIG now: the client's own default was fixed when it was imported
            config.load_kube_config(
                config_file=os.environ.get("KUBECONFIG") or None,
                client_configuration=configuration,
            )
        except (config.ConfigException, OSError, ValueError) as kubeconfig:
            raise PodError(
                "no Kubernetes configuration: not running in a cluster "
                f"({in_cluster}) and no usable kubeconfig ({kubeconfig}); set KUBECONFIG or "
                "pass an api_client"
            ) from kubeconfig
    return client.ApiClient(configuration)
