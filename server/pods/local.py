"""Local process pods, the default: each pod is a worker process of its own, in its own
working directory and session, with an address-space limit, so a runaway behaviour cannot
take the server (or another user's pod) down with it.

A pod runs its user's code as the server's OS user, so it gets none of the server's
environment (the database URL, tokens) but the few variables it needs, and a Landlock
sandbox (:mod:`server.pods.sandbox`) keeps it out of the server's data directory and the
other pods' folders."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .protocol import SPARE_VARIABLE
from .provider import PodError, PodExit, PodLimits, PodProvider, PodSpec, worker_environment
from .sandbox import DENY_VARIABLE, MODE_VARIABLE, READ_VARIABLE, split_layout

__all__ = [
    "INHERITED_VARIABLES",
    "WORKER_COMMAND",
    "LocalPodProvider",
    "inherited_tracing",
    "pod_environment",
]

log = logging.getLogger(__name__)

WORKER_COMMAND: Final = (sys.executable, "-m", "canopy.server.pods.worker")
STOP_GRACE_SECONDS: Final = 5.0
"""How long a worker gets to flush its events after SIGTERM before it is killed."""
INHERITED_VARIABLES: Final = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ")
"""What a pod inherits from the server's environment unasked: where programs are, and the
language and time zone its output is in. Anything else only when the ``pod_env`` setting
names it, but for OpenTelemetry's variables (see :func:`inherited_tracing`)."""
TRACING_PREFIX: Final = "OTEL_"


@dataclass(slots=True)
class _Pod:
    process: asyncio.subprocess.Process
    workdir: Path
    exit: PodExit | None = None


def _limit_resources(memory_bytes: int) -> Callable[[], None]:
    """Runs in the child before ``exec``: cap its address space, so an allocation that would
    exceed the pod's memory fails inside the pod (a ``MemoryError`` or a crash), not on the
    machine."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    return apply


def _signal(process: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the worker with ``os.kill`` rather than ``Process.terminate``, which polls the
    child first and may collect a death that asyncio's watcher then reports as code 255."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"killed by signal {-returncode} ({name})"
    return "exited normally" if returncode == 0 else f"exited with code {returncode}"


@dataclass(slots=True)
class _Spare:
    process: asyncio.subprocess.Process
    workdir: Path
    limits: PodLimits
    layout: tuple[object, ...]
    """What :func:`split_layout` was when the spare started: its sandbox was made then."""


def pod_environment(
    server: Mapping[str, str],
    workdir: Path,
    workspace: Path,
    *,
    passed: Iterable[str] = (),
) -> dict[str, str]:
    """The environment a pod worker starts with: of the server's ``server`` environment only
    :data:`INHERITED_VARIABLES`, those of :func:`inherited_tracing` and the ``passed`` names,
    ``HOME`` and ``TMPDIR`` in the pod's
    own ``workdir``, and the workspace as its only import path. The ``CANOPY_POD_*`` variables
    that make it a user's pod come on top, from its provider."""
    names = (*INHERITED_VARIABLES, *inherited_tracing(server), *passed)
    env = {name: server[name] for name in names if name in server}
    env.setdefault("PATH", os.defpath)
    env["HOME"] = str(workdir)
    env["TMPDIR"] = str(workdir / "tmp")
    env["PYTHONPATH"] = str(workspace)
    return env


def inherited_tracing(server: Mapping[str, str]) -> list[str]:
    """The ``OTEL_*`` variables of ``server`` a pod gets unasked, so that its spans go where
    the server's go, with the same resource attributes and batching: all but the collector's
    headers (``OTEL_EXPORTER_OTLP_*HEADERS`` often carry its credentials, which the user's code
    must not read; ``pod_env`` may name them) and ``OTEL_SERVICE_NAME``, so that a pod's spans
    say they come from a pod (``canopy-pod``) rather than from the server."""
    return [
        name
        for name in server
        if name.startswith(TRACING_PREFIX)
        and not name.endswith("HEADERS")
        and name != "OTEL_SERVICE_NAME"
    ]


class LocalPodProvider(PodProvider):
    """Pods as child processes of the server. Each gets a folder under ``root`` as its
    working directory (removed when the pod ends) and ``workspace`` on its import path, so
    factories like ``package.module:function`` from the user's project load as they would
    locally.

    The worker's environment is :func:`pod_environment` (``passed`` names the server's
    variables it may have too). Under ``sandbox`` (``auto``, ``landlock`` or ``none``, see
    :mod:`server.pods.sandbox`) it may read ``readable`` (the workspace roots; default:
    ``workspace``) but nothing under ``hidden`` (the server's data) nor ``root`` beyond its own
    folder.

    With ``warm`` on, one spare worker is kept started, imported and with its log open,
    waiting on stdin for the variables that make it someone's pod: a pod then starts in
    milliseconds rather than the second or two a Python process needs to import the runtime.
    """

    name = "local"

    def __init__(
        self,
        root: Path,
        *,
        command: Sequence[str] = WORKER_COMMAND,
        workspace: Path | None = None,
        warm: bool = False,
        sandbox: str = "auto",
        readable: Sequence[Path] = (),
        hidden: Sequence[Path] = (),
        passed: Sequence[str] = (),
    ) -> None:
        self.root = root.resolve()
        self.command = tuple(command)
        self.workspace = (workspace or Path.cwd()).resolve()
        self.warm = warm
        self.sandbox = sandbox
        self.readable = tuple(readable) or (self.workspace,)
        self.hidden = (*hidden, self.root)
        self.passed = tuple(passed)
        self._pods: dict[str, _Pod] = {}
        self._spare: _Spare | None = None
        self._refill: asyncio.Task[None] | None = None

    async def start(self, spec: PodSpec) -> None:
        if spec.pod_id in self._pods:
            raise PodError(f"pod {spec.pod_id!r} already exists")
        spare = await self._take_spare(spec)
        if spare is not None:
            process, workdir = spare.process, spare.workdir
        else:
            workdir = self.root / spec.pod_id
            process = await self._spawn(workdir, spec.limits, worker_environment(spec))
        self._pods[spec.pod_id] = _Pod(process, workdir)
        log.info(
            "pod process started",
            extra={
                "fields": {
                    "pod": spec.pod_id,
                    "pid": process.pid,
                    "user": spec.user_id,
                    "warm": spare is not None,
                }
            },
        )
        self.prepare(spec.limits)

    def prepare(self, limits: PodLimits) -> None:
        """Start a spare worker for pods with ``limits`` (when warm, and none is on its way)."""
        if self.warm and self._spare is None and (self._refill is None or self._refill.done()):
            self._refill = asyncio.create_task(self._prepare_spare(limits))

    async def _take_spare(self, spec: PodSpec) -> _Spare | None:
        """The waiting spare, now assigned to ``spec``'s pod, if it fits and still lives."""
        if self._refill is not None and not self._refill.done():
            await asyncio.gather(self._refill, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        usable = spare.process.returncode is None and spare.limits == spec.limits
        usable = usable and spare.layout == self._layout()
        if usable and spare.process.stdin is not None:
            assignment = json.dumps(worker_environment(spec)) + "\n"
            try:
                spare.process.stdin.write(assignment.encode())
                await spare.process.stdin.drain()
                spare.process.stdin.close()
                return spare
            except (BrokenPipeError, ConnectionResetError):
                pass
        await self._discard(spare)
        return None

    def _layout(self) -> tuple[object, ...]:
        if self.sandbox == "none":
            return ()
        return split_layout(self.readable, self.hidden)

    async def _prepare_spare(self, limits: PodLimits) -> None:
        workdir = self.root / f"spare-{secrets.token_hex(6)}"
        layout = self._layout()
        try:
            process = await self._spawn(workdir, limits, {SPARE_VARIABLE: "1"}, spare=True)
        except PodError as error:
            log.warning("cannot prepare a spare pod worker: %s", error)
            return
        self._spare = _Spare(process, workdir, limits, layout)

    async def _discard(self, spare: _Spare) -> None:
        if spare.process.stdin is not None:
            spare.process.stdin.close()
        _signal(spare.process, signal.SIGTERM)
        await spare.process.wait()
        shutil.rmtree(spare.workdir, ignore_errors=True)

    async def _spawn(
        self,
        workdir: Path,
        limits: PodLimits,
        variables: dict[str, str],
        *,
        spare: bool = False,
    ) -> asyncio.subprocess.Process:
        os.makedirs(workdir / "tmp", exist_ok=True)
        env = pod_environment(os.environ, workdir, self.workspace, passed=self.passed)
        env[MODE_VARIABLE] = self.sandbox
        env[READ_VARIABLE] = os.pathsep.join(str(path) for path in self.readable)
        env[DENY_VARIABLE] = os.pathsep.join(str(path) for path in self.hidden)
        env |= {SPARE_VARIABLE: "1" if spare else "0", **variables}
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.PIPE if spare else asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_limit_resources(limits.memory_bytes),
            )
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise PodError(f"cannot start the pod worker {self.command[0]!r}: {exc}") from exc
        return process

    async def wait(self, pod_id: str) -> PodExit:
        pod = self._pod(pod_id)
        returncode = await pod.process.wait()
        if pod.exit is None:
            pod.exit = PodExit(pod_id, _describe_exit(returncode), returncode)
            shutil.rmtree(pod.workdir, ignore_errors=True)
        return pod.exit

    async def stop(self, pod_id: str) -> None:
        pod = self._pods.get(pod_id)
        if pod is None or pod.process.returncode is not None:
            return
        _signal(pod.process, signal.SIGTERM)
        try:
            await asyncio.wait_for(pod.process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            _signal(pod.process, signal.SIGKILL)
            await pod.process.wait()

    async def close(self) -> None:
        if self._refill is not None:
            self._refill.cancel()
            await asyncio.gather(self._refill, return_exceptions=True)
        if self._spare is not None:
            spare, self._spare = self._spare, None
            await self._discard(spare)
        await asyncio.gather(*(self.stop(pod_id) for pod_id in list(self._pods)))
        for pod_id in list(self._pods):
            await self.wait(pod_id)
        self._pods.clear()

    def pid(self, pod_id: str) -> int:
        """The worker's process id (for operators and fault tests)."""
        return self._pod(pod_id).process.pid

    def _pod(self, pod_id: str) -> _Pod:
        try:
            return self._pods[pod_id]
        except KeyError:
            raise PodError(f"no pod {pod_id!r}") from None
