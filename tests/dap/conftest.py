"""Every test talks to a real ``canopy dap`` process (stdio unless it says TCP) whose event log
is a real SQLite file in a temporary folder.

Importing the adapter takes most of a second, so the processes of the next tests are started
while the current test runs: each test still gets a fresh process of its own.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from .client import DapClient, spawn_stdio_adapter, speaking_to

Spawn = Callable[[], subprocess.Popen[bytes]]
AHEAD = 1


@pytest.fixture(scope="session")
def spare_adapters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawn]:
    """Hands out adapter processes, always keeping ``AHEAD`` started ahead."""
    spare: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        return spawn_stdio_adapter(tmp_path_factory.mktemp("dap"))

    def take() -> subprocess.Popen[bytes]:
        process = spare.pop(0) if spare else start()
        while len(spare) < AHEAD:
            spare.append(start())
        return process

    yield take
    for process in spare:
        process.terminate()
        process.wait()


@pytest.fixture
async def client(spare_adapters: Spawn) -> AsyncIterator[DapClient]:
    """One adapter process over pipes, for the whole test."""
    async with speaking_to(spare_adapters()) as client:
        yield client
