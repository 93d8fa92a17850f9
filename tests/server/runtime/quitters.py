"""Behaviours and a factory that leave the way user code sometimes does: ``sys.exit()``,
``KeyboardInterrupt``, a ``BaseException`` of their own, or ``os._exit()``, which ends the
process running the tree (only ever run in a pod worker); or that start a thread that never
ends (``linger``), or never return at all (``hanging_factory``)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import py_trees
from py_trees.common import Status


class Fatal(BaseException):
    """A user's exception that is not an ``Exception``."""


def _quit(how: str) -> None:
    if how == "exit":
        sys.exit(3)
    if how == "interrupt":
        raise KeyboardInterrupt("interrupted by the behaviour")
    if how == "base":
        raise Fatal("a BaseException of the user's own")
    if how == "os_exit":
        os._exit(3)
    if how == "linger":  # not a quit: a thread that would keep the process alive for ever
        threading.Thread(target=threading.Event().wait, name="lingering").start()


class Quit(py_trees.behaviour.Behaviour):
    """Quits ``how`` in ``where`` (``constructor``, ``initialise``, ``update``,
    ``terminate``); otherwise succeeds."""

    def __init__(self, name: str, how: str = "exit", where: str = "update") -> None:
        super().__init__(name)
        self.how, self.where = how, where
        if where == "constructor":
            _quit(how)

    def initialise(self) -> None:
        if self.where == "initialise":
            _quit(self.how)

    def update(self) -> Status:
        if self.where == "update":
            _quit(self.how)
        return Status.SUCCESS

    def terminate(self, new_status: Status) -> None:
        if self.where == "terminate":
            _quit(self.how)


def exiting_factory() -> py_trees.behaviour.Behaviour:
    sys.exit("no tree today")


def hanging_factory() -> py_trees.behaviour.Behaviour:
    """Never returns: a factory waiting on something that never comes."""
    threading.Event().wait()
    raise AssertionError("unreachable")


def _quitting(how: str) -> py_trees.behaviour.Behaviour:
    root = py_trees.composites.Sequence("seq", memory=False)
    root.add_child(Quit("quit", how))
    return root


def os_exiting() -> py_trees.behaviour.Behaviour:
    """``seq/quit`` calls ``os._exit(3)`` in its first update (for a pod: a factory, since a
    pod loads tree files from its workspace only)."""
    return _quitting("os_exit")


def lingering() -> py_trees.behaviour.Behaviour:
    """``seq/quit`` starts a thread that never ends, then succeeds."""
    return _quitting("linger")


def quitting_tree(folder: Path, how: str, where: str = "update") -> str:
    """Write a tree of one ``Quit`` leaf (``seq/quit``) under a sequence; its path."""
    tree = folder / f"quit_{how}_{where}.yaml"
    tree.write_text(
        "name: quitting\nroot:\n  type: Sequence\n  name: seq\n  children:\n"
        f"    - type: {__name__}:Quit\n      name: quit\n"
        f"      params: {{how: {how}, where: {where}}}\n"
    )
    return str(tree)
