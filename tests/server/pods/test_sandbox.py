"""The pod trust boundary, end to end: a real server, real local pod workers, and user code
that tries to read what belongs to the server or to another user.

A token is code execution in its holder's own pod; these tests check that it is nothing more:
the pod's environment holds none of the server's secrets, the kernel (Landlock) refuses the
server's data directory and the other pods' folders, and programs outside the workspace roots
are refused before any loader opens them.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canopy.bridge import open_store
from canopy.server import app
from canopy.server.api.keys import PODS
from canopy.server.auth import Principal
from canopy.server.config import Settings
from canopy.server.pods.sandbox import (
    READ,
    READ_DIR,
    WRITE,
    SandboxError,
    landlock_abi,
    worker_policy,
)
from canopy.server.remote.client import HttpExecutionControl
from canopy.server.remote.wire import OutsideWorkspace
from canopy.server.runtime.control import LaunchSpec
from canopy.server.runtime.definition.problems import DefinitionError

from ..conftest import Running, bearer, eventually
from .remote import REPOSITORY, pod_server, remote_control

PATROL = "tests.server.runtime.factories:patrol"
PROBE = "tests.server.pods.intruder:probe"

needs_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="the kernel has no Landlock")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """A server as ``canopy serve`` leaves its data directory: the SQLite log, the discovery
    file with the admin token and the server log, all in ``.canopy``; pods must be sandboxed."""
    data = tmp_path / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data, pod_sandbox="landlock") as server,
    ):
        (data / "server.json").write_text(json.dumps({"token": server.local_token}))
        (data / "server.log").write_text("the server's log\n")
        yield server


async def ran(control: HttpExecutionControl, program: str, **blackboard: Any) -> dict[str, Any]:
    """The blackboard after one tick of ``program``."""
    info = await control.launch(LaunchSpec(program, blackboard=blackboard))
    await control.tick(info.id, 1)
    await control.settle(info.id)
    return (await control.view(info.id)).blackboard


@needs_landlock
async def test_a_pod_cannot_read_the_servers_data_nor_another_pods_folder(
    running: Running,
) -> None:
    async with remote_control(running, "bob") as bob:
        await ran(bob, PATROL, battery=100)
        bobs = running.app[PODS].current(Principal("bob", "acme", "-"))
        assert bobs is not None
        targets = [
            "{data}/events.db",
            "{data}/server.json",
            "{data}/server.log",
            "{data}",
            "{data}/pods",
            f"{{data}}/pods/{bobs.pod_id}",
            f"{{data}}/pods/{bobs.pod_id}/pod-events.db",
            f"/proc/{os.getpid()}/environ",  # the server's own environment
            "/etc/shadow",
            str(REPOSITORY / "pyproject.toml"),  # the workspace: readable
            "/etc/hosts",
        ]
        async with remote_control(running, "ann") as ann:
            if landlock_abi() >= 6:  # scoped: no signals to processes outside the sandbox
                targets.insert(0, f"signal:{os.getpid()}")
            seen = (await ran(ann, PROBE, targets=targets))["/seen"]
            assert seen == {
                **{target: "PermissionError" for target in targets[:-2]},
                targets[-2]: "read",
                targets[-1]: "read",
            }
            # A normal tree from the workspace still runs in the same sandboxed pod.
            patrol = await ran(ann, PATROL, battery=100)
            assert patrol["/battery"] == 100


@needs_landlock
async def test_code_that_reads_the_admin_token_fails_with_the_denial(running: Running) -> None:
    async with remote_control(running) as control:
        with pytest.raises(DefinitionError) as failure:
            await control.launch(LaunchSpec("tests.server.pods.intruder:steal_the_token"))
    assert "raised PermissionError: [Errno 13] Permission denied" in str(failure.value)
    assert running.local_token not in str(failure.value)


async def test_the_pod_environment_holds_none_of_the_servers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "CANOPY_DATABASE_URL": "postgresql://canopy:hunter2@db/canopy",
        "CANOPY_TOKEN": "admin-token",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "PYTHONSTARTUP": "/somewhere/else.py",
    }
    for name, value in {**secrets, "ROBOT_SITE": "lab-2", "TZ": "UTC"}.items():
        monkeypatch.setenv(name, value)
    data = tmp_path / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data, pod_env=("ROBOT_SITE",)) as running,
        remote_control(running) as control,
    ):
        found = await ran(control, "tests.server.pods.intruder:environment")
    names, where = found["/environment"], found["/where"]
    assert not set(secrets) & set(names)
    assert {"ROBOT_SITE", "TZ", "PATH"} <= set(names)
    own = {name for name in names if name.startswith("CANOPY_") and "_POD_" not in name}
    assert own == {"CANOPY_SERVER_URL", "CANOPY_LOG_LEVEL"}  # what its provider set
    assert Path(where["HOME"]).parent == (data / "pods").resolve()
    assert Path(where["TMPDIR"]) == Path(where["HOME"]) / "tmp"
    assert where["PYTHONPATH"] == str(REPOSITORY)


async def test_a_pod_gets_the_language_model_the_server_is_configured_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = {
        "CANOPY_LLM_PROVIDER": "anthropic",
        "ANTHROPIC_API_KEY": "sk-ant-for-agents",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/",
    }
    for name, value in {**model, "ANTHROPIC_ADMIN_KEY": "sk-ant-admin"}.items():
        monkeypatch.setenv(name, value)
    data = tmp_path / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data) as running,
        remote_control(running) as control,
    ):
        names = (await ran(control, "tests.server.pods.intruder:environment"))["/environment"]
    assert set(model) <= set(names)
    assert "ANTHROPIC_ADMIN_KEY" not in names


async def test_a_spare_worker_gets_the_same_scrubbed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANOPY_DATABASE_URL", "postgresql://canopy:hunter2@db/canopy")
    data = tmp_path / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data, pod_spare=True) as running,
        remote_control(running) as control,
    ):
        await ran(control, PATROL, battery=100)  # the first pod starts the spare
        async with control.client.session.delete(control.client.url_for("api/v1/pods/me")):
            pass
        async with remote_control(running, "bob") as bob:
            found = await ran(bob, "tests.server.pods.intruder:environment")
    assert "CANOPY_DATABASE_URL" not in found["/environment"]
    assert "spare-" in found["/where"]["HOME"]  # it was the spare that became bob's pod


# -- workspace roots ---------------------------------------------------------------------------


@pytest.fixture
async def rooted(tmp_path: Path) -> AsyncIterator[Running]:
    """A server whose workspace roots are ``tmp_path/ws``, with the server's data inside it,
    and the repository (where the test factories are)."""
    workspace = tmp_path / "ws"
    (workspace / "trees").mkdir(parents=True)
    (tmp_path / "secret.yaml").write_text("password: hunter2\n")
    (workspace / "trees" / "leak.yaml").symlink_to(tmp_path / "secret.yaml")
    data = workspace / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data, workspace_roots=(workspace, REPOSITORY)) as server,
    ):
        (data / "server.json").write_text(json.dumps({"token": server.local_token}))
        yield server


@pytest.mark.parametrize(
    ("program", "base", "refusal"),
    [
        ("{tmp}/secret.yaml", None, "outside the workspace roots"),
        ("../secret.yaml", "{tmp}/ws", "outside the workspace roots"),
        ("trees/leak.yaml", "{tmp}/ws", "outside the workspace roots"),  # a link out
        (".canopy/server.json", "{tmp}/ws", "in the server's own files"),
        ("secret.py:tree", "{tmp}", "outside the workspace roots"),
        ("os:getcwd", "{tmp}", "the folder '{tmp}' that 'os:getcwd' is imported from"),
    ],
)
async def test_a_program_outside_the_workspace_roots_is_refused(
    rooted: Running, tmp_path: Path, program: str, base: str | None, refusal: str
) -> None:
    program, refusal = program.format(tmp=tmp_path), refusal.format(tmp=tmp_path)
    spec = LaunchSpec(program, base_dir=base.format(tmp=tmp_path) if base else None)
    async with remote_control(rooted) as control:
        with pytest.raises(OutsideWorkspace, match=r"program|folder") as refused:
            await control.launch(spec)
    assert refusal in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert rooted.app[PODS].current(Principal("ann", "acme", "-")) is None  # no pod asked


async def test_the_refusal_is_a_403_problem(
    rooted: Running, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    token = await rooted.issue("ann", "acme")
    body = {"spec": {"program": str(tmp_path / "secret.yaml")}}
    url = f"{rooted.url}/api/v1/executions"
    async with http.post(url, json=body, headers=bearer(token)) as response:
        problem = await response.json()
    assert (response.status, problem["error"]) == (403, "OutsideWorkspace")
    assert "hunter2" not in json.dumps(problem)


@needs_landlock
async def test_the_data_directory_inside_a_workspace_root_stays_unreadable(
    rooted: Running, tmp_path: Path
) -> None:
    """The default layout: ``.canopy`` inside the workspace. The workspace is allowed around
    it; its names can be listed (Landlock cannot allow a folder without what is beneath),
    never its files."""
    workspace = tmp_path / "ws"
    (workspace / "trees" / "mine.yaml").write_text("root: {type: Success}\n")
    targets = [
        "{data}/server.json",
        "{data}/events.db",
        str(workspace / "trees" / "leak.yaml"),  # a link to a file outside the roots
        str(workspace / "trees" / "mine.yaml"),
        str(workspace / "trees"),
        "{data}",  # names only
    ]
    async with remote_control(rooted) as control:
        seen = (await ran(control, PROBE, targets=targets))["/seen"]
    assert list(seen.values()) == ["PermissionError"] * 3 + ["read"] * 3


@needs_landlock
async def test_a_spare_made_before_the_workspace_changed_is_not_used(tmp_path: Path) -> None:
    """With ``.canopy`` inside the workspace, a worker is allowed the workspace's entries as
    they were when it started: a spare started before a new folder appeared could not read
    it, so the pod that needs it starts afresh."""
    workspace = tmp_path / "ws"
    data = workspace / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data, pod_spare=True, workspace_roots=(workspace, REPOSITORY)) as running,
        remote_control(running) as ann,
    ):
        await ran(ann, PATROL, battery=100)  # ann's pod starts, and a spare after it
        provider = running.app[PODS].provider
        await eventually(lambda: provider._spare is not None, "the spare is ready")
        (workspace / "new").mkdir()
        (workspace / "new" / "tree.yaml").write_text("name: fresh\nroot: {type: Success}\n")
        async with remote_control(running, "bob") as bob:
            info = await bob.launch(LaunchSpec(str(workspace / "new" / "tree.yaml")))
            assert info.tree == "fresh"


async def test_without_the_sandbox_a_pod_reads_what_the_server_reads(tmp_path: Path) -> None:
    """``pod_sandbox = "none"`` is what it says: only the environment is scrubbed."""
    data = tmp_path / ".canopy"
    async with (
        open_store(f"sqlite:///{data / 'events.db'}") as store,
        pod_server(store, data, pod_sandbox="none") as running,
        remote_control(running) as control,
    ):
        seen = (await ran(control, PROBE, targets=["{data}/events.db"]))["/seen"]
    assert seen == {"{data}/events.db": "read"}


async def test_a_reload_onto_a_file_outside_the_roots_is_refused(
    rooted: Running, tmp_path: Path
) -> None:
    async with remote_control(rooted) as control:
        info = await control.launch(LaunchSpec(PATROL, blackboard={"battery": 100}))
        with pytest.raises(OutsideWorkspace, match="outside the workspace roots"):
            await control.reload(info.id, str(tmp_path / "secret.yaml"))
        with pytest.raises(OutsideWorkspace, match=r"may not leave the launch's folder"):
            await control.reload(info.id, "../../secret.yaml")


# -- the policy and the start-up check ---------------------------------------------------------


def test_a_hidden_folder_inside_a_readable_tree_is_allowed_around(tmp_path: Path) -> None:
    workspace, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    for folder in (workspace / "robots", workspace / ".canopy" / "pods" / "p1", elsewhere):
        folder.mkdir(parents=True)
    (workspace / "tree.yaml").write_text("root: {type: Success}\n")
    (workspace / "link").symlink_to(elsewhere)
    workdir = workspace / ".canopy" / "pods" / "p1"
    rules = worker_policy(workdir, [workspace], [workspace / ".canopy"]).rules
    assert rules[workspace / "robots"] == rules[workspace / "tree.yaml"] == READ
    assert rules[workspace] == READ_DIR  # listable, so that imports from it work
    assert rules[workdir] & WRITE == WRITE
    assert workspace / ".canopy" not in rules
    assert elsewhere not in rules  # a link out of a split tree is not followed


def test_a_required_sandbox_without_landlock_stops_the_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app, "landlock_abi", lambda: 0)  # a kernel without Landlock
    with pytest.raises(SandboxError, match="'landlock' but this kernel does not offer Landlock"):
        app.check_sandbox("landlock")
    app.check_sandbox("auto")
    assert "local pods can read every file the server can" in caplog.text
    caplog.clear()
    app.check_sandbox("none")
    assert "WARNING" not in caplog.text


def test_a_sqlite_log_outside_the_data_directory_is_hidden_too(tmp_path: Path) -> None:
    inside = Settings(data_dir=tmp_path / "data")
    assert app.server_files(inside) == (tmp_path / "data",)
    elsewhere = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/l.db")
    assert app.server_files(elsewhere) == (
        tmp_path / "data",
        *(tmp_path / f"l.db{end}" for end in ("", "-wal", "-shm", "-journal")),
    )
    shared = Settings(data_dir=tmp_path / "data", database_url="postgresql://canopy@db/canopy")
    assert app.server_files(shared) == (tmp_path / "data",)
