"""Fixtures for the runtime tests: the fixture trees, files written on the fly, and a clean
py_trees blackboard and module cache for every test (both are process-global)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import py_trees
import pytest

from canopy.bridge import open_store
from canopy.server.runtime.inprocess import InProcessControl

from ..llm.messages_server import MessagesServer, serve_messages

TREES = Path(__file__).resolve().parent / "trees"

REGISTRY = {
    "BatteryLow": "robot_behaviours:BatteryLow",
    "Recharge": "robot_behaviours:Recharge",
    "MoveTo": "robot_behaviours:MoveTo",
}
"""The BehaviorTree.CPP name -> class registry a project's config would give."""


@pytest.fixture
def trees() -> Path:
    """The folder of the fixture trees (and the behaviours they use)."""
    return TREES


@pytest.fixture(autouse=True)
def clean_process_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Forget the blackboard and the modules a test imported from the fixtures or temporary
    folders, so each test loads behaviours afresh and no key leaks into the next test."""
    before = set(sys.modules)
    yield
    py_trees.blackboard.Blackboard.clear()
    roots = (str(TREES), str(tmp_path_factory.getbasetemp()))
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(roots):
            del sys.modules[name]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented file under the test's temporary folder; returns its absolute path."""

    def write_file(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write_file


@pytest.fixture
def robot_behaviours(tmp_path: Path) -> Path:
    """A copy of the fixture behaviours in the test's temporary folder, for trees written
    there (custom classes are imported from the tree file's own folder)."""
    copy = tmp_path / "robot_behaviours.py"
    copy.write_text((TREES / "robot_behaviours.py").read_text(encoding="utf-8"), encoding="utf-8")
    return copy


@pytest.fixture
async def sqlite_control(sqlite_url: str) -> AsyncIterator[InProcessControl]:
    """Executions in this process, recorded into a fresh SQLite log."""
    async with open_store(sqlite_url) as store:
        control = InProcessControl(store, tenant_id="acme")
        yield control
        await control.close()


@pytest.fixture
async def anthropic_messages(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MessagesServer]:
    """A local server speaking Anthropic's Messages API, chosen as every agent's model (the
    real ``anthropic`` SDK talks to it); a test scripts its answers."""
    async with serve_messages() as server:
        monkeypatch.setenv("CANOPY_LLM_PROVIDER", "anthropic")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
        yield server
