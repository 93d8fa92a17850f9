"""Local process pods, the default: each pod is a worker process of its own, in its own
working directory and session, with an address-space limit, so a runaway behaviour cannot
take the server (or another user's pod) down with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .provider import PodError, PodExit, PodProvider, PodSpec, worker_environment

__all__ = ["WORKER_COMMAND", "LocalPodProvider"]

log = logging.getLogger(__name__)

WORKER_COMMAND: Final = (sys.executable, "-m", "server.pods.worker")
STOP_GRACE_SECONDS: Final = 5.0
"""How long a worker gets to flush its events after SIGTERM before it is killed."""


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


class LocalPodProvider(PodProvider):
    """Pods as child processes of the server. Each gets ``<root>/<pod_id>`` as its working
    directory (removed when the pod ends) and ``workspace`` on its import path, so factories
    like ``package.module:function`` from the user's project load as they would locally."""

    name = "local"

    def __init__(
        self,
        root: Path,
        *,
        command: Sequence[str] = WORKER_COMMAND,
        workspace: Path | None = None,
    ) -> None:
        self.root = root
        self.command = tuple(command)
        self.workspace = (workspace or Path.cwd()).resolve()
        self._pods: dict[str, _Pod] = {}

    async def start(self, spec: PodSpec) -> None:
        if spec.pod_id in self._pods:
            raise PodError(f"pod {spec.pod_id!r} already exists")
        workdir = self.root / spec.pod_id
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **worker_environment(spec)}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.workspace), os.environ.get("PYTHONPATH", "")) if p
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_limit_resources(spec.limits.memory_bytes),
            )
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise PodError(f"cannot start the pod worker {self.command[0]!r}: {exc}") from exc
        self._pods[spec.pod_id] = _Pod(process, workdir)
        log.info(
            "pod process started",
            extra={"fields": {"pod": spec.pod_id, "pid": process.pid, "user": spec.user_id}},
        )

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
