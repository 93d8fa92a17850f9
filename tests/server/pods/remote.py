"""A real server with real local pod workers, reached through the HTTP control client: the
remote side of every test written against ``ExecutionControl``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from canopy.bridge import EventStore
from canopy.bridge.client import CanopyClient
from canopy.server.config import Settings
from canopy.server.pods.provider import PodProvider
from canopy.server.remote.client import HttpExecutionControl

from ..conftest import Running, serving

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


@asynccontextmanager
async def remote_control(
    running: Running, user: str = "ann", tenant: str = "acme", *, attach: bool = True
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
