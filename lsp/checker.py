"""The language server's side of its checking process (:mod:`.worker`).

Loading a tree imports the user's behaviour modules, so ``canopy lsp`` loads trees in a
process of its own: an import that waits forever is stopped at the check's deadline, one that
ends its process (``os._exit``, a crash) is reported with the exit code or signal, and either
way the next check starts a new process while the server goes on answering. One process
serves the trees of one folder, and only while the modules it imported are unchanged on the
disk: a tree in another folder, or a check after an edit of ``robot.py`` (or of any module it
imports), gets a new process. Python cannot truly forget a module, and a new process imports
the edited code and never mixes two folders' ``robot.py``.

The process is ``python -m canopy.lsp.worker`` started with
:func:`asyncio.create_subprocess_exec`, speaking the length-prefixed JSON frames of
:mod:`.wire` on its stdin and stdout, rather than a :mod:`multiprocessing` child: the server
runs on an asyncio loop, which awaits the pipes, the deadline and the process's exit natively
(a ``multiprocessing`` connection blocks, and would need a thread per wait); the messages are
typed and checked on arrival instead of pickled; and killing it is one signal, with nothing of
``multiprocessing``'s own (its resource tracker, its ``__main__`` re-import) left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

import msgspec

from canopy.bridge import CanopyError
from canopy.bridge.errors import error_class
from canopy.server.runtime.definition import Problem, SourceLocation

from . import wire

__all__ = ["CheckFailed", "Checker"]

R = TypeVar("R", wire.Checked, wire.Located)

STARTUP_DEADLINE: Final = 120.0
"""Seconds a new checking process may take to import the runtime, before any user code."""
ENDING_GRACE: Final = 5.0
"""Seconds a process that closed its pipes may take to end before it is killed."""
_BROKEN: Final = (OSError, EOFError, ValueError, msgspec.DecodeError)
"""What reading or writing the pipes of a process that died (or wrote nonsense) raises."""


class CheckFailed(CanopyError):
    """A check its process could not finish: it ran past its deadline, or the process died."""


@dataclass
class _Process:
    process: asyncio.subprocess.Process
    folder: Path
    modules: dict[str, int] = field(default_factory=dict)
    """The files of the modules it imported, and when each was written (ns)."""

    def stale(self) -> bool:
        """Whether a module it imported changed on the disk since."""
        for path, written in self.modules.items():
            try:
                if os.stat(path).st_mtime_ns != written:
                    return True
            except OSError:
                return True
        return False


class Checker:
    """Loads trees in the checking process, one request at a time, each within a deadline.

    ``started`` is told the process id and folder of every process it starts."""

    def __init__(self, started: Callable[[int, Path], None]) -> None:
        self._started = started
        self._current: _Process | None = None
        self._turn = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The running checking process's id, if one runs."""
        return self._current.process.pid if self._current is not None else None

    async def check(self, path: Path, text: str, deadline: float) -> list[Problem]:
        """Every problem of the tree file ``path`` holding ``text`` (none: it loads).
        CheckFailed when its process could not say."""
        reply = await self._ask(path, wire.Check(str(path), text), wire.Checked, deadline)
        if isinstance(reply, wire.Failed):
            raise _rebuilt(reply)
        return reply.problems

    async def locate(
        self, path: Path, text: str, line: int, deadline: float
    ) -> SourceLocation | None:
        """Where the class of the node around ``line`` is written; None for a built-in kind or
        no node there. The CanopyError of a tree or module that no longer loads."""
        request = wire.Locate(str(path), text, line)
        reply = await self._ask(path, request, wire.Located, deadline)
        if isinstance(reply, wire.Failed):
            raise _rebuilt(reply)
        return reply.where

    async def stop(self) -> None:
        """Stop the checking process (at the server's shutdown), even in the middle of a check."""
        if self._current is not None:
            await self._end(self._current)

    def kill(self) -> None:
        """Kill the checking process now, from outside the event loop (the server's exit)."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def _ask(
        self, path: Path, request: wire.Request, expected: type[R], deadline: float
    ) -> R | wire.Failed:
        async with self._turn:
            worker = await self._process_for(path)
            try:
                reply = await asyncio.wait_for(_exchange(worker.process, request), deadline)
            except TimeoutError:
                await self._end(worker)
                raise CheckFailed(
                    f"checking {path.name} timed out after {deadline:g} s while importing its "
                    "behaviours; its checking process was stopped and the next check starts "
                    "a new one"
                ) from None
            except _BROKEN:
                status = await self._end(worker, grace=ENDING_GRACE)
                raise CheckFailed(
                    f"checking {path.name} ended its checking process, which {_ending(status)} "
                    "while importing its behaviours; the next check starts a new one"
                ) from None
            if isinstance(reply, wire.Checked):
                worker.modules = reply.modules
            if not isinstance(reply, (expected, wire.Failed)):
                await self._end(worker)
                raise CheckFailed(f"the checking process answered {request!r} with {reply!r}")
            return reply

    async def _process_for(self, path: Path) -> _Process:
        """The checking process for the tree ``path``: the current one unless it serves another
        folder, ended, or imported modules that changed since; else a new one, ready."""
        current = self._current
        if current is not None and (
            current.folder != path.parent
            or current.process.returncode is not None
            or current.stale()
        ):
            await self._end(current)
            current = None
        if current is not None:
            return current
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # the server's working folder is not where modules come from
            "-m",
            "canopy.lsp.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=wire.MAX_FRAME,
        )
        current = self._current = _Process(process, path.parent)
        self._started(process.pid, path.parent)
        try:
            ready = await asyncio.wait_for(_read(process), STARTUP_DEADLINE)
        except (TimeoutError, *_BROKEN):
            ready = None
        if not isinstance(ready, wire.Ready):
            status = await self._end(current, grace=ENDING_GRACE)
            raise CheckFailed(
                f"checking {path.name} needs a checking process, and the one started "
                f"{_ending(status)} before it was ready (the server's log may say why)"
            )
        return current

    async def _end(self, worker: _Process, grace: float = 0) -> int:
        """Kill ``worker`` unless it ends within ``grace`` seconds, and wait for it; its exit
        status. (Killing a process that has just ended reaps it behind asyncio's back, which
        then reports 255: a process that closed its pipes is given the time to end.)"""
        if self._current is worker:
            self._current = None
        if grace and worker.process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.process.wait(), grace)
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
        return await worker.process.wait()


async def _exchange(process: asyncio.subprocess.Process, request: wire.Request) -> wire.Reply:
    """Send one request and read its reply; EOFError when the process ends first."""
    if process.stdin is None:
        raise EOFError("the checking process has no stdin")
    process.stdin.write(wire.encode(request))
    await process.stdin.drain()
    return await _read(process)


async def _read(process: asyncio.subprocess.Process) -> wire.Reply:
    """The process's next frame; EOFError when it ends first."""
    if process.stdout is None:
        raise EOFError("the checking process has no stdout")
    try:
        header = await process.stdout.readexactly(wire.HEADER_SIZE)
        body = await process.stdout.readexactly(wire.frame_size(header))
    except asyncio.IncompleteReadError:
        raise EOFError("the checking process ended") from None
    return wire.decode_reply(body)


def _ending(status: int) -> str:
    """How a process ended, from its exit status."""
    if status >= 0:
        return f"exited with code {status}"
    try:
        return f"was killed by signal {signal.Signals(-status).name}"
    except ValueError:
        return f"was killed by signal {-status}"


def _rebuilt(failed: wire.Failed) -> CanopyError:
    """The error the checking process raised, as its code travels."""
    kind = error_class(failed.code) or CanopyError
    return kind.rebuild(failed.message, failed.details)
