"""Local process pods, the default: each pod is a worker process of its own, in its own
working directory and session, with an address-space limit, so a runaway behaviour cannot
take the server (or another user's pod) down with it."""

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .protocol import SPARE_VARIABLE
from .provider import PodError, PodExit, PodLimits, PodProvider, PodSpec, worker_environment

__all__ = ["WORKER_COMMAND", "LocalPodProvider"]

log = logging.getLogger(__name__)

WORKER_COMMAND: Final = (sys.executable, "-m", "canopy.server.pods.worker")
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


@dataclass(slots=True)
class _Spare:
    process: asyncio.subprocess.Process
    workdir: Path
    limits: PodLimits


class LocalPodProvider(PodProvider):
    """Pods as child processes of the server. Each gets a folder under ``root`` as its
    working directory (removed when the pod ends) and ``workspace`` on its import path, so
    factories like ``package.module:function`` from the user's project load as they would
    locally.

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
    ) -> None:
        self.root = root
        self.command = tuple(command)
        self.workspace = (workspace or Path.cwd()).resolve()
        self.warm = warm
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

    async def _prepare_spare(self, limits: PodLimits) -> None:
        workdir = self.root / f"spare-{secrets.token_hex(6)}"
        try:
            process = await self._spawn(workdir, limits, {SPARE_VARIABLE: "1"}, spare=True)
        except PodError as error:
            log.warning("cannot prepare a spare pod worker: %s", error)
            return
        self._spare = _Spare(process, workdir, limits)

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
        os.makedirs(workdir, exist_ok=True)
        env = {**os.environ, SPARE_VARIABLE: "1" if spare else "0", **variables}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.workspace), os.environ.get("PYTHONPATH", "")) if p
        )
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
