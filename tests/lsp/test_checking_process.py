"""The checking process: behaviour modules are imported there, never in the server, so one that
hangs, exits or shadows another folder's is reported and the server goes on."""

from __future__ import annotations

import os
import re
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import diagnostics_of, session, uri
from .test_definition import definition

TREE = "root:\n  type: Sequence\n  children:\n    - type: robot:{kind}\n"
BEHAVIOUR = """\
import py_trees


class {kind}(py_trees.behaviour.Behaviour):
    def update(self) -> py_trees.common.Status:
        return py_trees.common.Status.SUCCESS
"""


def project(folder: Path, kind: str = "Scan", before: str = "") -> Path:
    """``folder`` with a ``robot.py`` defining ``kind`` (after ``before``) and a tree using it."""
    folder.mkdir(exist_ok=True)
    write(folder / "robot.py", before + BEHAVIOUR.format(kind=kind))
    tree = folder / "tree.yaml"
    tree.write_text(TREE.format(kind=kind), encoding="utf-8")
    return tree


def write(path: Path, text: str) -> None:
    """Write ``path`` and make its modification time new, even within the file system's
    timestamp resolution of the last write."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


async def saved(client: LanguageClient, tree: Path) -> list[types.Diagnostic]:
    """Save the open ``tree`` and wait for the diagnostics published for it."""
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri(tree)))
    )
    while True:
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if uri(tree) in client.diagnostics:
            return list(client.diagnostics.pop(uri(tree)))


def started(client: LanguageClient) -> list[int]:
    """The ids of the checking processes the server said it started, in order."""
    found = (re.match(r"checking process (\d+) started", m.message) for m in client.log_messages)
    return [int(match[1]) for match in found if match]


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_module_that_hangs_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    tree = project(tmp_path, before="import time\n\nwhile True:\n    time.sleep(60)\n\n")
    async with session({"checkTimeout": 1}) as (client, _):
        (found,) = await diagnostics_of(client, tree)
        assert found.message == (
            "checking tree.yaml timed out after 1 s while importing its behaviours; its checking"
            " process was stopped and the next check starts a new one"
        )
        assert found.range.start == types.Position(line=0, character=0)
        (hung,) = started(client)
        assert not running(hung)
        # The server answers at once, and the next check, in a new process, sees the fix.
        outline = await client.text_document_document_symbol_async(
            types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri(tree)))
        )
        assert [symbol.name for symbol in outline or []] == ["Sequence"]
        project(tmp_path)
        assert await saved(client, tree) == []
        assert len(started(client)) == 2


async def test_a_module_that_ends_the_process_is_reported_with_its_exit_code(
    tmp_path: Path,
) -> None:
    tree = project(tmp_path, before="import os\n\nos._exit(3)\n\n")
    async with session(None) as (client, _):
        (found,) = await diagnostics_of(client, tree)
        assert found.message == (
            "checking tree.yaml ended its checking process, which exited with code 3 while"
            " importing its behaviours; the next check starts a new one"
        )
        assert found.range.start == types.Position(line=0, character=0)
        project(tmp_path)
        assert await saved(client, tree) == []


async def test_a_module_that_raises_system_exit_is_a_plain_import_error(tmp_path: Path) -> None:
    tree = project(tmp_path, before="raise SystemExit(2)\n\n")
    async with session(None) as (client, _):
        (found,) = await diagnostics_of(client, tree)
        assert found.range.start.line == 3  # at the node, as any failed import
        assert "importing module 'robot' failed: SystemExit: 2" in found.message
        project(tmp_path, before="raise KeyboardInterrupt\n\n")
        (found,) = await saved(client, tree)
        assert "importing module 'robot' failed: KeyboardInterrupt" in found.message
        assert len(started(client)) == 1  # the process survived both


async def test_a_module_that_prints_and_reads_as_it_is_imported_loads(tmp_path: Path) -> None:
    """Its output goes to the server's stderr and its input is empty: the frames are safe."""
    tree = project(tmp_path, before="import sys\n\nprint('hello' * 100)\nsys.stdin.read()\n\n")
    async with session(None) as (client, _):
        assert await diagnostics_of(client, tree) == []


async def test_two_folders_with_their_own_robot_module_both_load(tmp_path: Path) -> None:
    first = project(tmp_path / "first", "Scan")
    second = project(tmp_path / "second", "Look")
    async with session(None) as (client, _):
        assert await diagnostics_of(client, first) == []
        assert await diagnostics_of(client, second) == []
        assert await saved(client, first) == []
        look = await definition(client, second, 3, 14)
        assert isinstance(look, types.Location)
        assert look.uri == uri(tmp_path / "second" / "robot.py")


async def test_an_edited_module_is_imported_again(tmp_path: Path) -> None:
    tree = project(tmp_path)
    write(tmp_path / "speeds.py", "SLOW = 1\n")
    write(tmp_path / "robot.py", "from speeds import SLOW\n\n" + BEHAVIOUR.format(kind="Scan"))
    async with session(None) as (client, _):
        assert await diagnostics_of(client, tree) == []
        write(tmp_path / "robot.py", BEHAVIOUR.format(kind="Scab"))
        (found,) = await saved(client, tree)
        assert "module 'robot' has no attribute 'Scan' (did you mean `Scab`?)" in found.message
        # A module the tree does not name, imported by one it does, counts too.
        write(tmp_path / "robot.py", "from speeds import SLOW\n\n" + BEHAVIOUR.format(kind="Scan"))
        assert await saved(client, tree) == []
        write(tmp_path / "speeds.py", "SLOW = 1 / 0\n")
        (found,) = await saved(client, tree)
        assert "importing module 'robot' failed: ZeroDivisionError" in found.message


async def test_no_checking_process_outlives_the_server(tmp_path: Path) -> None:
    tree = project(tmp_path, before="import time\n\nwhile True:\n    time.sleep(60)\n\n")
    async with session({"checkTimeout": 3600}) as (client, _):
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri(tree), language_id="yaml", version=1, text=tree.read_text()
                )
            )
        )
        while not started(client):  # its check hangs in the module's import
            await client.wait_for_notification(types.WINDOW_LOG_MESSAGE)
        (pid,) = started(client)
        assert running(pid)
        await client.shutdown_session()
        assert not running(pid)


async def test_a_wrong_deadline_takes_the_default() -> None:
    async with session({"checkTimeout": 0}) as (_, warnings):
        (warning,) = warnings
        assert warning.startswith("option 'checkTimeout': Expected `float` > 0.0")
        assert warning.endswith("using the default 10.0")
