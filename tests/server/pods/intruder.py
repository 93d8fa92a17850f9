"""Trees that try to step over a pod's fence, run in real pods by ``test_sandbox.py``.

A pod's working directory is ``<data dir>/pods/<pod id>``, so the code here finds the server's
data directory from its own folder, as any user's code could.
"""

from __future__ import annotations

import os
from pathlib import Path

import py_trees
from py_trees.common import Access, Status


def _data_dir() -> Path:
    return Path.cwd().parents[1]


class Probe(py_trees.behaviour.Behaviour):
    """Tries each path of the blackboard's ``targets`` (a folder is listed, a file read;
    ``signal:<pid>`` signals that process) and records what happened under ``seen``:
    ``"read"`` or the exception's class name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.blackboard = self.attach_blackboard_client(name)
        self.blackboard.register_key("targets", access=Access.READ)
        self.blackboard.register_key("seen", access=Access.WRITE)

    def update(self) -> Status:
        seen = {}
        for target in self.blackboard.targets:
            path = Path(target.replace("{data}", str(_data_dir())))
            try:
                if target.startswith("signal:"):
                    os.kill(int(target.removeprefix("signal:")), 0)
                elif path.is_dir():
                    os.listdir(path)
                else:
                    path.read_bytes()
                seen[target] = "read"
            except OSError as error:
                seen[target] = type(error).__name__
        self.blackboard.seen = seen
        return Status.SUCCESS


class Environment(py_trees.behaviour.Behaviour):
    """Records the names of the pod's environment variables under ``environment``, and the
    values of those that say where it lives."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.blackboard = self.attach_blackboard_client(name)
        self.blackboard.register_key("environment", access=Access.WRITE)
        self.blackboard.register_key("where", access=Access.WRITE)

    def update(self) -> Status:
        self.blackboard.environment = sorted(os.environ)
        self.blackboard.where = {
            name: os.environ.get(name, "") for name in ("HOME", "TMPDIR", "PYTHONPATH")
        }
        return Status.SUCCESS


def probe() -> py_trees.behaviour.Behaviour:
    return Probe("probe")


def environment() -> py_trees.behaviour.Behaviour:
    return Environment("environment")


def steal_the_token() -> py_trees.behaviour.Behaviour:
    """Reads the discovery file (with the admin token) at load time: the launch fails with
    what the factory raised."""
    (_data_dir() / "server.json").read_text()
    return py_trees.behaviours.Success("stolen")
