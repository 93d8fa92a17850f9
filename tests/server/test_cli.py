"""The ``canopy`` command as a user runs it: real subprocesses, a real server on a real port,
the discovery file on disk, signals for shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from canopy.bridge.client import CanopyClient, Discovery, ServerError, read_discovery
from canopy.server.discovery import write_discovery

from .conftest import WAIT, eventually, tick

CANOPY = Path(sys.executable).with_name("canopy")


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without any CANOPY_* setting the developer may have, and
    without a spare pod worker per server (one per test would only cost CPU)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANOPY_")}
    return env | {"CANOPY_POD_SPARE_WORKER": "0"} | extra


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


async def spawn(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: int = asyncio.subprocess.DEVNULL,
    sigint_ignored: bool = False,
) -> asyncio.subprocess.Process:
    """Start a canopy command; ``sigint_ignored`` starts it the way a script's background job
    starts (SIGINT ignored, inherited from the shell)."""
    return await asyncio.create_subprocess_exec(
        str(CANOPY),
        *args,
        cwd=cwd,
        env=env or environment(),
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def stop(process: asyncio.subprocess.Process, how: int = signal.SIGTERM) -> int:
    """End ``process`` by signal (killing it if it does not go); its exit code."""
    if process.returncode is None:
        process.send_signal(how)
        try:
            await asyncio.wait_for(process.wait(), WAIT)
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode  # type: ignore[return-value]


async def canopy(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> Done:
    """Run a canopy command to completion."""
    pipe = asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL
    process = await spawn(*args, cwd=cwd, env=env, stdin=pipe)
    try:
        data = stdin.encode() if stdin is not None else None
        out, err = await asyncio.wait_for(process.communicate(data), 2 * WAIT)
    finally:
        await stop(process, signal.SIGKILL)
    return Done(process.returncode or 0, out.decode(), err.decode())


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), WAIT)
    assert line, "the process closed its output"
    return line.decode()


@dataclass
class Served:
    process: asyncio.subprocess.Process
    workspace: Path
    discovery: Discovery
    banner: str


@pytest.fixture
async def served(store_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    """``canopy serve --port 0`` in ``tmp_path`` (data in ./.canopy), up and advertised."""
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(CANOPY),
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / ".canopy"),
            cwd=tmp_path,
            env=environment(CANOPY_DATABASE_URL=store_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        banner = ""
        while "Press Ctrl-C" not in banner:
            line = await read_line(process)
            banner += line
        discovery = read_discovery(tmp_path / ".canopy")
        assert discovery is not None, log.read_text()
        yield Served(process, tmp_path, discovery, banner)
    finally:
        await stop(process)


def offsets(text: str) -> list[int]:
    return [int(line) for line in text.split()]


async def test_serve_append_replay_tail_and_stop(served: Served) -> None:
    here = served.workspace
    assert served.discovery.url in served.banner
    assert not served.discovery.url.endswith(":0")  # the port the OS picked
    assert served.discovery.token in served.banner
    assert served.discovery.pid == served.process.pid
    assert (here / ".canopy" / "server.json").stat().st_mode & 0o777 == 0o600

    one = await canopy(
        *("events", "append", "--type", "TickStarted", "--stream", "execution/e1"),
        *("--payload", '{"execution_id": "e1", "tick": 1}'),
        cwd=here,
    )
    assert one.returncode == 0, one.stderr
    [first] = offsets(one.stdout)
    ndjson = "".join(json.dumps(tick("e1", n)) + "\n" for n in (2, 3))
    more = await canopy("events", "append", cwd=here, stdin=ndjson)
    assert offsets(more.stdout) == [first + 1, first + 2], more.stderr

    replay = await canopy("events", "replay", "--json", "--type", "TickStarted", cwd=here)
    replayed = [json.loads(line) for line in replay.stdout.splitlines()]
    assert [(e["offset"], e["payload"]["tick"]) for e in replayed] == [
        (first, 1),
        (first + 1, 2),
        (first + 2, 3),
    ]
    human = await canopy("events", "replay", "--stream", "execution/e1", cwd=here)
    lines = human.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[0] == str(first)
    assert "execution/e1  TickStarted" in lines[0]
    assert '"tick":1' in lines[0]

    # Started as by a script's background job: even so, SIGINT ends it cleanly.
    tail = await spawn(
        *("events", "tail", "--json", "--after", str(first + 2)), cwd=here, sigint_ignored=True
    )
    try:
        late = await canopy(
            *("events", "append", "--type", "TickStarted", "--stream", "execution/e1"),
            *("--payload", '{"execution_id": "e1", "tick": 4}'),
            cwd=here,
        )
        followed = json.loads(await read_line(tail))
        assert (followed["offset"], followed["payload"]["tick"]) == (offsets(late.stdout)[0], 4)
    finally:
        # Stopped whatever happened, but asserted on only after the lines above passed, so that
        # their failure is the one reported.
        tail_exit = await stop(tail, signal.SIGINT)
    assert tail_exit == 0

    assert await stop(served.process, signal.SIGTERM) == 0
    assert not (here / ".canopy" / "server.json").exists()


async def test_a_token_issued_from_the_shell_is_for_its_tenant_only(
    served: Served, store_url: str
) -> None:
    here = served.workspace
    issued = await canopy(
        "tokens",
        "issue",
        *("--user", "bob", "--tenant", "globex"),
        cwd=here,
        env=environment(CANOPY_DATABASE_URL=store_url),
    )
    assert issued.returncode == 0, issued.stderr
    bob = issued.stdout.strip()

    async with CanopyClient(served.discovery.url, bob) as client:

        async def accepted() -> bool:
            try:
                await client.read(limit=1)
            except ServerError as refused:
                if refused.status != 401:
                    raise
                return False
            return True

        await eventually(accepted, "the server accepts the token issued from the shell")
        await client.append([tick("globex-only")])

    as_bob = await canopy("events", "replay", "--json", "--token", bob, cwd=here)
    as_local = await canopy("events", "replay", "--json", cwd=here)
    assert {json.loads(line)["tenant_id"] for line in as_bob.stdout.splitlines()} == {"globex"}
    assert {json.loads(line)["tenant_id"] for line in as_local.stdout.splitlines()} == {"local"}

    assert await stop(served.process, signal.SIGINT) == 0  # Ctrl-C is a clean stop too
    assert not (here / ".canopy" / "server.json").exists()


async def test_without_a_server_the_error_is_one_clear_line(tmp_path: Path) -> None:
    missing = await canopy("events", "replay", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no Canopy server found" in missing.stderr
    assert "Traceback" not in missing.stderr

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    write_discovery(tmp_path / ".canopy", Discovery(url, "token", 1, "0"))
    for command in (["replay"], ["tail"], ["append", "--type", "TickStarted", "--stream", "x/y"]):
        gone = await canopy("events", *command, cwd=tmp_path)
        assert gone.returncode == 1
        assert (
            gone.stderr.strip()
            == f"Error: no Canopy server at {url}: start one with `canopy serve`"
        )


async def test_bad_settings_and_busy_ports_stop_serve_with_a_reason(tmp_path: Path) -> None:
    bad_env = await canopy("serve", cwd=tmp_path, env=environment(CANOPY_PORT="eighty"))
    assert bad_env.returncode == 1
    assert "port (from environment variable CANOPY_PORT)" in bad_env.stderr
    (tmp_path / "canopy.toml").write_text('[server]\nlog_level = "chatty"\n', encoding="utf-8")
    bad_file = await canopy("serve", "--port", "0", cwd=tmp_path)
    assert bad_file.returncode == 1
    assert "log_level (from canopy.toml [server] log_level)" in bad_file.stderr
    (tmp_path / "canopy.toml").unlink()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = await canopy("serve", "--port", port, cwd=tmp_path)
    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert not (tmp_path / ".canopy" / "server.json").exists()


async def test_usage_mistakes_are_explained(tmp_path: Path) -> None:
    no_type = await canopy("events", "append", "--stream", "execution/e1", cwd=tmp_path)
    assert no_type.returncode == 2
    assert "need --type" in no_type.stderr
    unknown = await canopy(
        "events", "append", "--type", "Nope", "--stream", "execution/e1", cwd=tmp_path
    )
    assert unknown.returncode == 2
    assert "give --topic" in unknown.stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["events"],
        ["events", "append"],
        ["events", "replay"],
        ["events", "tail"],
        ["tokens"],
        ["tokens", "issue"],
        ["audit"],
        ["lsp"],
        ["evidence"],
        ["evidence", "ingest"],
    ],
)
async def test_every_command_explains_itself(tmp_path: Path, command: list[str]) -> None:
    shown = await canopy(*command, "--help", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("Usage: canopy")
    assert len(shown.stdout.splitlines()) > 4


async def test_version(tmp_path: Path) -> None:
    shown = await canopy("--version", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("canopy, version ")
