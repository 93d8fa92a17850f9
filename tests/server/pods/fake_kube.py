"""A small fake Kubernetes API server that speaks the real REST wire protocol for pods.

It serves the official ``kubernetes`` client over real HTTP on 127.0.0.1 (a random port), so
the provider under test runs exactly the code it runs against a cluster: request
serialisation, ``Status`` error bodies, list + watch with resource versions, ``timeoutSeconds``
and 410 Gone. It plays the kubelet too, crudely: a created pod is ``Pending``, turns
``Running`` on the next turn of the event loop, and ends only when a test says so
(``fail``, ``succeed``, ``evict``) or when it is deleted.

Everything it received is kept (``created``, ``deletions``, ``requests``) so tests can assert
what the provider asked for. It runs on the test's own event loop; the client's blocking calls
run in threads, so tests may call its hooks directly.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from aiohttp import web
from kubernetes import client

__all__ = ["FakeKubernetes", "Recorded"]

FORBIDDEN_MESSAGE = (
    'pods is forbidden: User "system:serviceaccount:canopy:canopy-server" cannot {verb} '
    'resource "pods" in API group "" in the namespace "{namespace}"'
)
_Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: Mapping[str, str]

    @property
    def watch(self) -> bool:
        return _truthy(self.query.get("watch"))


@dataclass(frozen=True, slots=True)
class _Event:
    version: int
    type: str
    object: dict[str, Any]


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    """An error as the API server sends it: a ``Status`` object with the HTTP code."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
    return web.json_response(body, status=code)


class _BadSelector(ValueError):
    pass


def _field_matcher(selector: str) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=x,status.phase!=Running`` (the fields the API server supports for pods
    that matter here)."""
    getters: dict[str, Callable[[dict[str, Any]], Any]] = {
        "metadata.name": lambda pod: pod["metadata"].get("name"),
        "metadata.namespace": lambda pod: pod["metadata"].get("namespace"),
        "status.phase": lambda pod: pod.get("status", {}).get("phase"),
        "spec.nodeName": lambda pod: pod.get("spec", {}).get("nodeName", ""),
        "spec.restartPolicy": lambda pod: pod.get("spec", {}).get("restartPolicy"),
    }
    tests: list[tuple[Callable[[dict[str, Any]], Any], str, bool]] = []
    for term in filter(None, (part.strip() for part in selector.split(","))):
        equal = "!=" not in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        key, value = key.strip(), value.strip()
        if not _ or not key:
            raise _BadSelector(f"invalid selector: '{selector}'; can't understand '{term}'")
        if key not in getters:
            raise _BadSelector(f'field label not supported: "{key}"')
        tests.append((getters[key], value, equal))
    return lambda pod: all((get(pod) == value) is equal for get, value, equal in tests)


def _label_matcher(selector: str) -> Callable[[dict[str, Any]], bool]:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    if "(" in selector:
        raise _BadSelector(f"set-based label selectors are not supported by the fake: {selector}")
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            absent = term[1:].strip()
            tests.append(lambda labels, k=absent: k not in labels)
        else:
            tests.append(lambda labels, k=term: k in labels)

    def matches(pod: dict[str, Any]) -> bool:
        labels = pod["metadata"].get("labels") or {}
        return all(test(labels) for test in tests)

    return matches


class FakeKubernetes:
    """The fake API server; use as ``async with FakeKubernetes() as kube: ...``."""

    def __init__(self) -> None:
        self.forbidden: str | None = None
        """When set, requests whose verb is in ``forbidden_verbs`` are refused with 403 and this
        message (``{verb}`` and ``{namespace}`` filled in); ``forbid()`` sets both."""
        self.forbidden_verbs: frozenset[str] = frozenset({"create"})
        self.pods: dict[_Key, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        """Bodies of accepted ``POST``s, exactly as the client sent them."""
        self.deletions: list[tuple[str, str, int | None]] = []
        """``(namespace, name, grace period)`` of every ``DELETE`` received."""
        self.requests: list[Recorded] = []
        self._version = itertools.count(1)
        self._current = 0
        self._compacted = 0
        self._history: list[_Event] = []
        self._changed = asyncio.Event()
        self._expired = 0  # bumped by expire_watches(): open watches end with 410
        self._ended = 0  # bumped by end_watches(): open watches end cleanly
        self._open_watches: dict[int, Recorded] = {}
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/api/v1/namespaces/{namespace}/pods", self._create)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods", self._list)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}", self._read)
        app.router.add_delete("/api/v1/namespaces/{namespace}/pods/{name}", self._delete)
        # handler_cancellation: a client that hangs up ends its watch at once, as on a real
        # API server, so tests can see a stopped watch close its connection.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    def api_client(self) -> client.ApiClient:
        """A real client for this server, as a provider would be given one."""
        return client.ApiClient(client.Configuration(host=self.url))

    # -- test hooks --------------------------------------------------------------------------

    def forbid(self, message: str = FORBIDDEN_MESSAGE, verbs: Iterable[str] = ("create",)) -> None:
        """Refuse ``verbs`` (``create``, ``get``, ``list``, ``watch``, ``delete``) from now on,
        as missing RBAC permissions or an exhausted quota would."""
        self.forbidden = message
        self.forbidden_verbs = frozenset(verbs)

    def pod(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The stored pod called ``name`` (in any namespace unless one is given)."""
        return self.pods[self._key(name, namespace)]

    def fail(
        self,
        name: str,
        reason: str = "OOMKilled",
        exit_code: int = 137,
        *,
        namespace: str | None = None,
    ) -> None:
        """The worker container ends with ``reason`` / ``exit_code`` and the pod fails."""
        self._terminate(self._key(name, namespace), "Failed", reason, exit_code)

    def succeed(self, name: str, *, namespace: str | None = None) -> None:
        """The worker exits 0 and the pod succeeds."""
        self._terminate(self._key(name, namespace), "Succeeded", "Completed", 0)

    def evict(self, name: str, *, namespace: str | None = None) -> None:
        """The kubelet evicts the pod (node pressure): the pod itself carries the reason."""
        self._terminate(
            self._key(name, namespace),
            "Failed",
            "Error",
            137,
            pod_reason="Evicted",
            pod_message="The node was low on resource: memory.",
        )

    def remove(self, name: str, *, namespace: str | None = None) -> None:
        """Delete the pod behind the provider's back (``kubectl delete --now``)."""
        self._remove(self._key(name, namespace))

    def expire_watches(self) -> None:
        """Compact the history and end every open watch with ``410 Gone``, as an API server
        whose watch cache fell behind does; a client must list again to continue."""
        self._compacted = self._current
        self._history.clear()
        self._expired += 1
        self._notify()

    def end_watches(self) -> None:
        """End every open watch cleanly, as their ``timeoutSeconds`` running out would."""
        self._ended += 1
        self._notify()

    def watches(self, name: str | None = None) -> list[Recorded]:
        """Watch requests received so far (for pod ``name`` only, if given)."""
        return [r for r in self.requests if r.watch and self._about(r, name)]

    def open_watches(self, name: str | None = None) -> int:
        """How many watch streams are open now (for pod ``name`` only, if given)."""
        return sum(1 for r in self._open_watches.values() if self._about(r, name))

    async def until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Return once ``condition()`` holds, re-checking whenever the fake's state changes
        (pods, watches opening or closing); ``TimeoutError`` after ``within`` seconds, so a
        broken test fails instead of hanging."""
        async with asyncio.timeout(within):
            while not condition():
                await self._changed.wait()

    # -- handlers ----------------------------------------------------------------------------

    def _record(self, request: web.Request) -> Recorded:
        recorded = Recorded(request.method, request.path, dict(request.query))
        self.requests.append(recorded)
        return recorded

    def _refused(self, verb: str, namespace: str) -> web.Response | None:
        if self.forbidden is None or verb not in self.forbidden_verbs:
            return None
        message = self.forbidden.format(verb=verb, namespace=namespace)
        return _status(403, "Forbidden", message, kind="pods")

    async def _create(self, request: web.Request) -> web.Response:
        self._record(request)
        namespace = request.match_info["namespace"]
        if refused := self._refused("create", namespace):
            return refused
        try:
            body = await request.json()
        except ValueError as exc:
            return _status(400, "BadRequest", f"invalid JSON: {exc}")
        metadata = body.get("metadata") or {}
        name = metadata.get("name")
        if body.get("kind") not in (None, "Pod") or not name:
            return _status(422, "Invalid", 'Pod "" is invalid: metadata.name: Required value')
        if metadata.get("namespace", namespace) != namespace:
            return _status(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        key = (namespace, name)
        if key in self.pods:
            return _status(
                409, "AlreadyExists", f'pods "{name}" already exists', name=name, kind="pods"
            )
        self.created.append(copy.deepcopy(body))
        pod = copy.deepcopy(body)
        pod.update(apiVersion="v1", kind="Pod")
        pod["metadata"] = {
            **metadata,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": _now(),
        }
        containers = pod.get("spec", {}).get("containers") or []
        pod["status"] = {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": container.get("name", ""),
                    "image": container.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
                for container in containers
            ],
        }
        stored = self._write(key, "ADDED", pod)
        asyncio.get_running_loop().call_soon(self._run, key, pod["metadata"]["uid"])
        return web.json_response(stored, status=201)

    async def _read(self, request: web.Request) -> web.Response:
        self._record(request)
        key = (request.match_info["namespace"], request.match_info["name"])
        if refused := self._refused("get", key[0]):
            return refused
        if key not in self.pods:
            return self._not_found(key)
        return web.json_response(self.pods[key])

    async def _list(self, request: web.Request) -> web.StreamResponse:
        recorded = self._record(request)
        namespace = request.match_info["namespace"]
        if refused := self._refused("watch" if recorded.watch else "list", namespace):
            return refused
        try:
            matches = self._matcher(namespace, request.query)
        except _BadSelector as exc:
            return _status(400, "BadRequest", str(exc))
        if recorded.watch:
            return await self._watch(request, recorded, matches)
        items = [pod for pod in self.pods.values() if matches(pod)]
        return web.json_response(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._current)},
                "items": items,
            }
        )

    async def _delete(self, request: web.Request) -> web.Response:
        self._record(request)
        key = (request.match_info["namespace"], request.match_info["name"])
        if refused := self._refused("delete", key[0]):
            return refused
        grace: int | None = None
        if "gracePeriodSeconds" in request.query:
            grace = int(request.query["gracePeriodSeconds"])
        if request.can_read_body:
            try:
                options = await request.json()
            except ValueError:
                options = None
            if isinstance(options, dict) and options.get("gracePeriodSeconds") is not None:
                grace = int(options["gracePeriodSeconds"])
        self.deletions.append((*key, grace))
        if key not in self.pods:
            return self._not_found(key)
        return web.json_response(self._remove(key, grace))

    async def _watch(
        self,
        request: web.Request,
        recorded: Recorded,
        matches: Callable[[dict[str, Any]], bool],
    ) -> web.StreamResponse:
        """Stream events as newline-delimited JSON until ``timeoutSeconds`` or shutdown."""
        loop = asyncio.get_running_loop()
        query = request.query
        timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
        deadline = None if timeout is None else loop.time() + timeout
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(kind: str, obj: dict[str, Any]) -> None:
            line = json.dumps({"type": kind, "object": obj}) + "\n"
            await response.write(line.encode())

        watch_id = id(response)
        self._open_watches[watch_id] = recorded
        expired, ended = self._expired, self._ended
        self._notify()
        try:
            version = query.get("resourceVersion", "")
            if version in ("", "0"):
                # "any version": the current state as synthetic ADDED events, then changes
                cursor = self._current
                for pod in list(self.pods.values()):
                    if matches(pod):
                        await send("ADDED", pod)
            else:
                cursor = int(version)
                if cursor < self._compacted:
                    await send("ERROR", self._gone(cursor))
                    return response
            while not self._closing:
                changed = self._changed  # taken before reading, so no change is missed
                if self._expired != expired:
                    await send("ERROR", self._gone(cursor))
                    return response
                if self._ended != ended:
                    break
                for event in [e for e in self._history if e.version > cursor]:
                    cursor = event.version
                    if matches(event.object):
                        await send(event.type, event.object)
                cursor = max(cursor, self._current)
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await changed.wait()
                except TimeoutError:
                    break
            if bookmarks and not self._closing:
                await send(
                    "BOOKMARK",
                    {
                        "kind": "Pod",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(cursor)},
                    },
                )
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away (a stopped watch shuts its socket down)
        finally:
            del self._open_watches[watch_id]
            self._notify()
        return response

    # -- state -------------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every watch and ``until``: they re-read the state after each change."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _write(self, key: _Key, kind: str, pod: dict[str, Any]) -> dict[str, Any]:
        """Store a new version of ``pod`` (or its deletion) and tell the watches."""
        self._current = next(self._version)
        pod = copy.deepcopy(pod)
        pod["metadata"]["resourceVersion"] = str(self._current)
        if kind == "DELETED":
            self.pods.pop(key, None)
        else:
            self.pods[key] = pod
        self._history.append(_Event(self._current, kind, copy.deepcopy(pod)))
        self._notify()
        return pod

    def _run(self, key: _Key, uid: str) -> None:
        """The kubelet starts the container: Pending -> Running (unless something happened)."""
        pod = self.pods.get(key)
        if pod is None or pod["metadata"]["uid"] != uid or pod["status"]["phase"] != "Pending":
            return
        pod = copy.deepcopy(pod)
        started = _now()
        pod["status"].update(
            phase="Running",
            startTime=started,
            podIP="10.0.0.7",
            conditions=[
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
        )
        for status in pod["status"]["containerStatuses"]:
            status.update(
                ready=True,
                started=True,
                imageID=f"docker.io/library/{status['image']}@sha256:{'0' * 64}",
                containerID=f"containerd://{uuid.uuid4().hex}",
                state={"running": {"startedAt": started}},
            )
        self._write(key, "MODIFIED", pod)

    def _terminate(
        self,
        key: _Key,
        phase: str,
        reason: str,
        exit_code: int,
        *,
        pod_reason: str | None = None,
        pod_message: str | None = None,
    ) -> None:
        pod = copy.deepcopy(self.pods[key])
        finished = _now()
        pod["status"]["phase"] = phase
        if pod_reason is not None:
            pod["status"].update(reason=pod_reason, message=pod_message)
        for condition in pod["status"]["conditions"]:
            if condition["type"] in ("Ready", "ContainersReady"):
                condition["status"] = "False"
        for status in pod["status"]["containerStatuses"]:
            started = status["state"].get("running", {}).get("startedAt", finished)
            status.update(
                ready=False,
                started=False,
                state={
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": reason,
                        "startedAt": started,
                        "finishedAt": finished,
                    }
                },
            )
        self._write(key, "MODIFIED", pod)

    def _remove(self, key: _Key, grace: int | None = 0) -> dict[str, Any]:
        pod = copy.deepcopy(self.pods[key])
        pod["metadata"]["deletionTimestamp"] = _now()
        pod["metadata"]["deletionGracePeriodSeconds"] = grace if grace is not None else 30
        return self._write(key, "DELETED", pod)

    def _key(self, name: str, namespace: str | None) -> _Key:
        keys = [k for k in self.pods if k[1] == name and namespace in (None, k[0])]
        if len(keys) != 1:
            raise KeyError(f"no single pod {name!r} in the fake (namespace {namespace!r})")
        return keys[0]

    def _matcher(
        self, namespace: str, query: Mapping[str, str]
    ) -> Callable[[dict[str, Any]], bool]:
        by_field = _field_matcher(query.get("fieldSelector", ""))
        by_label = _label_matcher(query.get("labelSelector", ""))
        return lambda pod: (
            pod["metadata"]["namespace"] == namespace and by_field(pod) and by_label(pod)
        )

    def _gone(self, version: int) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {version} ({self._compacted + 1})",
            "reason": "Expired",
            "code": 410,
        }

    def _not_found(self, key: _Key) -> web.Response:
        return _status(404, "NotFound", f'pods "{key[1]}" not found', name=key[1], kind="pods")

    @staticmethod
    def _about(recorded: Recorded, name: str | None) -> bool:
        return name is None or f"metadata.name={name}" in recorded.query.get("fieldSelector", "")
