"""Which :class:`~server.runtime.control.ExecutionControl` a debug session talks to.

A session learns where its tree runs only from its ``launch`` (``pod``) or ``attach``
(``executionId``) request, so it gets a :class:`ControlChooser` rather than a control, and
picks one then:

- ``pod: embedded`` (the default): the runtime inside this adapter process, one for all its
  sessions, so that sessions over TCP can attach to each other's executions. Its event log is
  opened on first use only: a pod-only adapter never touches it. It acts for the OS user, and
  records their actions in the audit log of that log (``via: dap``), as the server does for
  its clients. The user's code then shares this process: what it raises (``sys.exit()`` too)
  fails its execution only, but an ``os._exit()`` or a native crash ends the adapter and all
  its sessions. One adapter process per TCP connection would contain that, at the price of
  attaching across sessions (which would have to go through a server); isolation is what
  ``pod: local`` is for.
- ``pod: local`` / ``kubernetes``, and ``attach`` to an execution this process does not run:
  :class:`~server.remote.client.HttpExecutionControl` to a Canopy server (found, or started,
  by :class:`~server.remote.servers.Servers`), whose executions run in the user's debug pod.
  Each session opens its own connection and closes it when it ends; the server outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Final

from canopy.bridge import EventStore, database_url, open_store
from canopy.bridge.client import CanopyClient, Endpoint
from canopy.server.audit import Actor, AuditedControl, AuditTrail
from canopy.server.auth import os_user
from canopy.server.remote.client import HttpExecutionControl
from canopy.server.remote.servers import Report, Servers, ensure_pod
from canopy.server.runtime.control import (
    ControlError,
    ExecutionControl,
    ExecutionInfo,
    UnknownExecution,
)
from canopy.server.runtime.inprocess import InProcessControl

__all__ = ["LOCAL_TENANT", "AdapterControls", "ControlChooser"]

LOCAL_TENANT: Final = "local"
"""The tenant embedded executions are recorded for (the local developer's, as the server's
local token uses)."""


class AdapterControls:
    """What one adapter process shares between its sessions: the embedded runtime and the
    server it found or started. :meth:`close` ends both (at adapter exit)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        url: str | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        tenant_id: str = LOCAL_TENANT,
    ) -> None:
        self.data_dir = data_dir
        self.tenant_id = tenant_id
        self.servers = Servers(data_dir, url=url, token=token, ca_file=ca_file)
        self._store: EventStore | None = None
        self._embedded: InProcessControl | None = None
        self._audited: AuditedControl | None = None
        self._lock = asyncio.Lock()

    @property
    def has_embedded(self) -> bool:
        """Whether the embedded runtime was started (only then can it hold an execution)."""
        return self._embedded is not None

    async def embedded(self) -> ExecutionControl:
        """The runtime in this process, started on first use, its actions audited."""
        async with self._lock:
            if self._audited is None:
                store = open_store(database_url(self.data_dir))
                await store.start()
                self._store = store
                self._embedded = InProcessControl(store, tenant_id=self.tenant_id)
                trail = AuditTrail(store, Actor(os_user(), self.tenant_id, "dap"))
                self._audited = AuditedControl(self._embedded, trail)
            return self._audited

    def chooser(self) -> ControlChooser:
        """A chooser for one new session."""
        return ControlChooser(self)

    async def close(self) -> None:
        """End the embedded executions (flushing their events), close the log, and stop the
        server this adapter started, if any."""
        try:
            if self._embedded is not None:
                await self._embedded.close()
            if self._store is not None:
                await self._store.close()
        finally:
            self._embedded = self._audited = self._store = None
            await self.servers.close()


class ControlChooser:
    """Hands one session its control at launch or attach time; closes what it opened for
    that session (its server connection) in :meth:`close`."""

    def __init__(self, adapter: AdapterControls) -> None:
        self.adapter = adapter
        self._remote: HttpExecutionControl | None = None
        self._opened = contextlib.AsyncExitStack()

    async def embedded(self) -> ExecutionControl:
        """The runtime inside the adapter."""
        return await self.adapter.embedded()

    async def remote(
        self,
        pod: str,
        *,
        workspace: Path,
        progress: Report | None = None,
        say: Report | None = None,
    ) -> ExecutionControl:
        """The user's debug pod of kind ``pod`` (``local`` or ``kubernetes``) through a Canopy
        server, started (in ``workspace``) when none answers; the pod is ready on return.
        ``progress`` hears about slow steps, ``say`` about a server started for the user."""
        if self._remote is None:
            servers = self.adapter.servers
            before = servers.started
            endpoint = await servers.endpoint(pod=pod, workspace=workspace, report=progress)
            assert endpoint is not None
            started = servers.started
            if say is not None and started is not None and started is not before:
                await say(
                    f"Started a Canopy server at {endpoint.url} (log: {started.log});"
                    " it stops when the debug adapter exits.\n"
                )
            self._remote = await self._open(endpoint)
        if progress is not None:
            await progress(f"starting your {pod} debug pod")
        await ensure_pod(self._remote.client, pod)
        return self._remote

    async def holding(self, execution_id: str) -> tuple[ExecutionControl, ExecutionInfo]:
        """The control that runs ``execution_id`` and the execution at a glance: this
        adapter's runtime when it runs it (another session's), else the server's pods. No
        server is started for this: with none running, no pod runs anything."""
        if self.adapter.has_embedded:
            control = await self.adapter.embedded()
            with contextlib.suppress(UnknownExecution):
                return control, await control.info(execution_id)
        remote = self._remote
        if remote is None:
            endpoint = await self.adapter.servers.endpoint(start=False)
            if endpoint is None:
                raise ControlError(
                    f"no execution {execution_id!r}: no Canopy server is running to ask"
                    " (`canopy serve` starts one)"
                )
            remote = self._remote = await self._open(endpoint)
        return remote, await remote.info(execution_id)

    async def _open(self, endpoint: Endpoint) -> HttpExecutionControl:
        client = await self._opened.enter_async_context(CanopyClient.of(endpoint))
        control = HttpExecutionControl(client)
        await control.connect()
        self._opened.push_async_callback(control.close)
        return control

    async def close(self) -> None:
        """Close the session's server connection (its executions are the session's to end
        first; the server and the embedded runtime belong to the adapter)."""
        self._remote = None
        await self._opened.aclose()
