"""Finding the Canopy server that runs the user's debug pods, or starting one.

Shared by every client process (the debug adapter, the language server, the CLI), below the
protocol layers so that none of them copies it. A launch in a debug pod (``pod: local`` or
``kubernetes``) needs a server, and a client must work with nothing else running. So it looks
for one the way every Canopy client does (``--url``/``--token``, then
``CANOPY_URL``/``CANOPY_TOKEN``, then ``<data-dir>/server.json``) and, when none answers,
starts ``canopy serve`` as a child process, which it stops when it exits. The server is a
separate process, never embedded: a client must not carry the web server's code, and a crash
in either must not take the other down unannounced.

A server named explicitly (an option or ``CANOPY_URL``) that does not answer is an error,
not a reason to start another one elsewhere: the user asked for that server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final

import aiohttp
import orjson

from canopy.bridge.client import (
    DISCOVERY_FILE,
    CanopyClient,
    CanopyClientError,
    Endpoint,
    ServerError,
    ServerUnreachable,
    UntrustedServer,
    discover,
    read_discovery,
)

from . import wire

__all__ = [
    "START_TIMEOUT",
    "PodMismatch",
    "Report",
    "Servers",
    "StartedServer",
    "answers",
    "ensure_pod",
]

log = logging.getLogger(__name__)

Report = Callable[[str], Awaitable[None]]
"""Tells the user what a slow step is doing (a progress message)."""

START_TIMEOUT: Final = 15.0
"""Seconds a started server has to advertise itself before the client gives up on it."""
STOP_TIMEOUT: Final = 15.0
"""Seconds a server has to stop its pods (flushing their events) before it is killed."""
PROBE_TIMEOUT: Final = 3.0
"""Seconds a discovered server has to answer ``/healthz`` before it counts as gone."""
LOG_FILE: Final = "server.log"
SERVE: Final = ("-c", "from canopy.server.cli import main; main()", "serve")
"""``canopy serve`` through the running interpreter: the same code as the client's, whether
it runs from an install or from a source tree on ``PYTHONPATH``."""


class PodMismatch(CanopyClientError):
    """The server runs pods of another kind than the launch asked for."""


async def answers(endpoint: Endpoint) -> bool:
    """Whether a Canopy server answers at ``endpoint`` within :data:`PROBE_TIMEOUT` (a stale
    ``server.json`` names a port nobody, or somebody else, listens on). A server whose TLS
    certificate is not trusted is no reason to start another: :class:`UntrustedServer`
    says so to the user."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT), CanopyClient.of(endpoint) as client:
            return (await client.health()).get("status") == "ok"
    except UntrustedServer:
        raise
    except (CanopyClientError, TimeoutError, aiohttp.ClientError, ValueError):
        return False


async def ensure_pod(client: CanopyClient, pod: str) -> dict[str, Any]:
    """Start the caller's debug pod if needed (``PUT /api/v1/pods/me``) and check that it is
    of the kind the launch asked for: a launch that says ``kubernetes`` must not quietly run
    on the developer's machine, nor the other way round. Returns the pod's description."""
    try:
        async with client.session.put(
            client.url_for("api/v1/pods/me"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        ) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ServerUnreachable(f"lost the Canopy server at {client.url}: {error!r}") from error
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if status >= 400:
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            raise wire.decode_error({**body, "message": body.get("detail", "")})
        if isinstance(body, dict):
            raise ServerError.from_problem(status, body)
        raise ServerError(status, "", raw[:200].decode("utf-8", "replace"))
    if not isinstance(body, dict):
        raise ServerError(status, "", "the server described the debug pod in a form not known")
    provider = body.get("provider")
    if provider != pod:
        raise PodMismatch(
            f"the Canopy server at {client.url} runs {provider} debug pods, not {pod} ones:"
            f" use pod: {provider}, or point the adapter at a server with {pod} pods"
            " (--url, CANOPY_URL)"
        )
    return body


class StartedServer:
    """A ``canopy serve`` child process of this client, and where it listens."""

    def __init__(self, process: Process, endpoint: Endpoint, log: Path) -> None:
        self.process = process
        self.endpoint = endpoint
        self.log = log

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    @classmethod
    async def start(
        cls,
        data_dir: Path,
        *,
        workspace: Path,
        pods: str | None = None,
        within: float = START_TIMEOUT,
    ) -> StartedServer:
        """Start ``canopy serve --data-dir <data_dir> --port 0`` in ``workspace`` (where the
        pods import the user's behaviours from) and wait until it advertises itself in
        ``server.json`` (at most ``within`` seconds). Its output goes to
        ``<data_dir>/server.log``: stdout is the DAP channel of a stdio adapter, and must
        never carry anything else."""
        log_path = data_dir / LOG_FILE
        env = dict(os.environ)
        if pods is not None:
            env["CANOPY_PODS"] = pods
        argv = [*SERVE, "--data-dir", str(data_dir), "--port", "0", "--log-level", "WARNING"]
        sink = await asyncio.to_thread(_open_log, log_path)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                cwd=workspace,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                start_new_session=True,  # a Ctrl-C meant for the editor is not for it
            )
        except OSError as error:
            raise ServerUnreachable(f"cannot start a Canopy server: {error}") from error
        finally:
            sink.close()
        try:
            endpoint = await _advertised(process, data_dir, log_path, within)
        except BaseException:
            await _stop(process, 0.0)
            raise
        log.info("started a Canopy server at %s (pid %d)", endpoint.url, process.pid)
        return cls(process, endpoint, log_path)

    async def stop(self, grace: float = STOP_TIMEOUT) -> None:
        """SIGTERM (the server ends its pods, flushing their events, and removes its
        discovery file), then SIGKILL after ``grace`` seconds."""
        await _stop(self.process, grace)


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


async def _advertised(process: Process, data_dir: Path, log_path: Path, within: float) -> Endpoint:
    """The endpoint the server ``process`` writes to ``server.json`` (an older file left by
    another server does not count: its ``pid`` is not this one)."""
    deadline = time.monotonic() + within
    while True:
        found = read_discovery(data_dir)
        if found is not None and found.pid == process.pid:
            return Endpoint(found.url, found.token, found.ca_file)
        if process.returncode is not None:
            raise ServerUnreachable(
                f"the Canopy server the adapter started exited with status {process.returncode}"
                f" before it was ready{_last_words(log_path)}"
            )
        if time.monotonic() >= deadline:
            raise ServerUnreachable(
                f"the Canopy server the adapter started did not write"
                f" {data_dir / DISCOVERY_FILE} within {within:g} s{_last_words(log_path)}"
            )
        await asyncio.sleep(0.05)


async def _stop(process: Process, grace: float) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(max(grace, 0.01)):
                await process.wait()
        except TimeoutError:
            log.warning("the Canopy server (pid %d) did not stop; killing it", process.pid)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _last_words(log_path: Path) -> str:
    """The last line of the server's log (a traceback's last line names the error; click's
    one-line errors are the whole story), and where the rest is: an editor shows this message
    in a small box."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    if not text:
        return f" (its log, {log_path}, is empty)"
    return f": {text.splitlines()[-1].strip()} (more in {log_path})"


class Servers:
    """The server this client's pod sessions talk to: found once per request for one, started
    at most once while it lives, and stopped by :meth:`close`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        url: str | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.url = url
        self.token = token
        self.ca_file = ca_file
        self._environ = os.environ if environ is None else environ
        self._lock = asyncio.Lock()
        self.started: StartedServer | None = None

    @property
    def explicit(self) -> str | None:
        """The server URL the user named, if any."""
        return self.url or self._environ.get("CANOPY_URL") or None

    async def endpoint(
        self,
        *,
        pod: str | None = None,
        workspace: Path | None = None,
        start: bool = True,
        report: Report | None = None,
    ) -> Endpoint | None:
        """A server that answers; with ``start``, one started for ``pod`` pods in
        ``workspace`` when none does (None without ``start`` and no server)."""
        async with self._lock:
            if self.started is not None:
                if self.started.alive:
                    return self.started.endpoint
                log.warning("the Canopy server the adapter started has exited")
                self.started = None
            try:
                found: Endpoint | None = discover(
                    self.data_dir,
                    url=self.url,
                    token=self.token,
                    ca_file=self.ca_file,
                    environ=self._environ,
                )
            except ServerUnreachable:
                if self.explicit:
                    raise  # e.g. a URL without a token: the user has to fix that
                found = None
            if found is not None:
                if await answers(found):
                    return found
                if self.explicit:
                    raise ServerUnreachable(f"no Canopy server answers at {found.url}")
            if not start:
                return None
            if report is not None:
                await report("starting a Canopy server")
            self.started = await StartedServer.start(
                self.data_dir, workspace=workspace or Path.cwd(), pods=pod
            )
            return self.started.endpoint

    async def close(self) -> None:
        """Stop the server this client started (a found one belongs to someone else)."""
        started, self.started = self.started, None
        if started is not None:
            await started.stop()
