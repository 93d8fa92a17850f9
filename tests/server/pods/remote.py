"""A real server with real local pod workers, reached through the HTTP control client: the
remote side of every test written against ``ExecutionControl``."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from canopy.bridge import EventStore
from canopy.bridge.client import CanopyClient
from canopy.server.config import Settings
from canopy.server.pods.provider import PodProvider
from canopy.server.remote.client import HttpExecutionControl

from ..conftest import WAIT, Running, serving

T = TypeVar("T")

REPOSITORY = Path(__file__).resolve().parents[3]
"""The workspace of the test server: factories like ``tests.server.runtime.factories:patrol``
import from here, in the pod as in the test process."""


@asynccontextmanager
async def pod_server(
    store: EventStore,
    data_dir: Path,
    *,
    pod_provider: PodProvider | None = None,
    **settings: Any,
) -> AsyncIterator[Running]:
    """A server on ``store`` whose pods are local worker processes (or ``pod_provider``'s)."""
    settings.setdefault("pod_spare", False)  # a spare per test server costs CPU, saves none
    config = Settings(port=0, data_dir=data_dir, **settings)
    async with serving(config, store, workspace=REPOSITORY, pod_provider=pod_provider) as running:
        yield running


class Issuing(Protocol):
    """A server a test reaches by URL, with tokens it issues."""

    @property
    def url(self) -> str: ...

    async def issue(self, user: str, tenant: str) -> str: ...


class SharedPodServer:
    """A pod server on a thread and event loop of its own, shared by the tests of a module.

    A server per test, each starting its pod worker, cost most of the control suite's time.
    On its own loop the server outlives each test's loop; each test reaches it as a user of
    its own (:func:`own_remote_control`), so it gets a pod of its own and sees only its own
    executions, and reads what the server wrote through its own store on the same log.
    """

    def __init__(self, database_url: str, data_dir: Path, roots: tuple[Path, ...] = ()) -> None:
        # With a spare worker, the next test's pod is started and imported while this one runs.
        self._settings = Settings(
            port=0,
            data_dir=data_dir,
            database_url=database_url,
            pod_spare=True,
            workspace_roots=(REPOSITORY, *roots),
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="shared-pod-server")
        self._stack = AsyncExitStack()
        self._running: Running | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        serve = serving(self._settings, workspace=REPOSITORY)
        self._running = self._call(self._stack.enter_async_context(serve))
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._call(self._stack.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    @property
    def url(self) -> str:
        return self._started.url

    async def issue(self, user: str, tenant: str) -> str:
        """A token the server accepts, issued on the server's own loop."""
        issued = self._started.issue(user, tenant)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(issued, self._loop))

    @property
    def _started(self) -> Running:
        if self._running is None:
            raise RuntimeError("use the shared pod server inside `with`")
        return self._running

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=4 * WAIT)


@asynccontextmanager
async def own_remote_control(server: SharedPodServer) -> AsyncIterator[HttpExecutionControl]:
    """The control of a user of its own on ``server`` (tenant ``acme``); the user's pod is
    stopped after, so that pods do not pile up on the shared server."""
    async with remote_control(server, f"user-{uuid.uuid4().hex[:12]}") as control:
        try:
            yield control
        finally:
            me = control.client.url_for("api/v1/pods/me")
            async with control.client.session.delete(me) as answer:
                answer.raise_for_status()


@asynccontextmanager
async def remote_control(
    running: Issuing, user: str = "ann", tenant: str = "acme", *, attach: bool = True
) -> AsyncIterator[HttpExecutionControl]:
    """The control a client of ``running`` gets with a token of ``user`` in ``tenant``;
    ``attach=False`` leaves out its notifications socket (a client attached to nothing)."""
    secret = await running.issue(user, tenant)
    async with CanopyClient(running.url, secret) as client:
        control = HttpExecutionControl(client)
        if attach:
            await control.connect()
        try:
            yield control
        finally:
            await control.close()
