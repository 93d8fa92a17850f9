"""Behaviours of a small pretend robot, kept next to the trees that use them (as users do).

The YAML, XML and Python versions of the patrol tree all use these classes, so the tests can
check that the three formats build the same tree.
"""

from __future__ import annotations

import py_trees
from py_trees.common import Access, Status


class BatteryLow(py_trees.behaviour.Behaviour):
    """SUCCESS when the battery level on the blackboard is below ``threshold``, else FAILURE."""

    def __init__(self, name: str, threshold: float = 0.2, key: str = "battery_level") -> None:
        super().__init__(name)
        self.threshold = threshold
        self.key = key
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key=key, access=Access.READ)

    def update(self) -> Status:
        level = self.blackboard.get(self.key)
        return Status.SUCCESS if level < self.threshold else Status.FAILURE


class Recharge(py_trees.behaviour.Behaviour):
    """Fills the battery up (sets the level to 1.0) and succeeds."""

    def __init__(self, name: str, key: str = "battery_level") -> None:
        super().__init__(name)
        self.key = key
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key=key, access=Access.WRITE)

    def update(self) -> Status:
        self.blackboard.set(self.key, 1.0)
        return Status.SUCCESS


class MoveTo(py_trees.behaviour.Behaviour):
    """Drives to ``target``: RUNNING for ``steps - 1`` ticks, SUCCESS on the ``steps``-th."""

    def __init__(self, name: str, target: str, steps: int = 1) -> None:
        super().__init__(name)
        self.target = target
        self.steps = steps
        self.done = 0

    def initialise(self) -> None:
        self.done = 0

    def update(self) -> Status:
        self.done += 1
        return Status.SUCCESS if self.done >= self.steps else Status.RUNNING


class Twice(py_trees.decorators.Decorator):
    """A custom decorator: SUCCESS only after its child succeeded twice (RUNNING in between)."""

    def __init__(self, name: str, child: py_trees.behaviour.Behaviour) -> None:
        super().__init__(name=name, child=child)
        self.successes = 0

    def update(self) -> Status:
        if self.decorated.status == Status.SUCCESS:
            self.successes += 1
            return Status.SUCCESS if self.successes >= 2 else Status.RUNNING
        return self.decorated.status
