"""Small real trees for the engine tests, built by Python factories (``module:function``)."""

from __future__ import annotations

import py_trees
from py_trees.common import Access, Status


class Drain(py_trees.behaviour.Behaviour):
    """Uses ``amount`` of battery each tick it runs."""

    def __init__(self, name: str, amount: int = 10) -> None:
        super().__init__(name)
        self.amount = amount
        self.blackboard = self.attach_blackboard_client(name)
        self.blackboard.register_key("battery", access=Access.WRITE)

    def update(self) -> Status:
        self.blackboard.battery = self.blackboard.battery - self.amount
        self.feedback_message = f"battery {self.blackboard.battery}"
        return Status.SUCCESS


class CheckBattery(py_trees.behaviour.Behaviour):
    """Fails below ``threshold``... and raises below zero: the deliberate bug."""

    def __init__(self, name: str, threshold: int = 20) -> None:
        super().__init__(name)
        self.threshold = threshold
        self.blackboard = self.attach_blackboard_client(name)
        self.blackboard.register_key("battery", access=Access.READ)

    def update(self) -> Status:
        level = self.blackboard.battery
        if level < 0:
            raise ValueError(f"battery level {level} is negative")
        return Status.SUCCESS if level >= self.threshold else Status.FAILURE


class Wait(py_trees.behaviour.Behaviour):
    """RUNNING for ``ticks`` ticks, then SUCCESS."""

    def __init__(self, name: str, ticks: int = 2) -> None:
        super().__init__(name)
        self.ticks = ticks
        self.count = 0

    def initialise(self) -> None:
        self.count = 0

    def update(self) -> Status:
        self.count += 1
        return Status.SUCCESS if self.count >= self.ticks else Status.RUNNING


def patrol() -> py_trees.behaviour.Behaviour:
    """patrol (Repeat forever) > round (Sequence, no memory): check_battery, move, drain.

    A round takes two ticks (move waits one) and drains 30. Starting from 100: rounds end at
    70, 40, 10, then check_battery fails (tick 7) and the tree fails. Starting from 50: 20,
    then -10, and check_battery raises on tick 5.
    """
    round_ = py_trees.composites.Sequence("round", memory=False)
    round_.add_children([CheckBattery("check_battery"), Wait("move", ticks=2), Drain("drain", 30)])
    return py_trees.decorators.Repeat("patrol", child=round_, num_success=-1)


def forever() -> py_trees.behaviour.Behaviour:
    """A tree that never completes: a Running leaf under a Parallel with a counter."""
    root = py_trees.composites.Parallel(
        "forever", policy=py_trees.common.ParallelPolicy.SuccessOnAll(synchronise=False)
    )
    root.add_children([py_trees.behaviours.Running("spin"), Drain("drain", 1)])
    return root


def big() -> py_trees.behaviour.Behaviour:
    """About 1,500 nodes with long names: a description of over 256 KiB."""
    root = py_trees.composites.Parallel(
        "a_rather_large_mission_control_tree",
        policy=py_trees.common.ParallelPolicy.SuccessOnAll(synchronise=False),
    )
    for group in range(50):
        sequence = py_trees.composites.Sequence(
            f"subsystem_with_a_long_name_{group:03d}", memory=False
        )
        sequence.add_children(
            [
                py_trees.behaviours.Running(f"component_check_number_{leaf:03d}")
                for leaf in range(29)
            ]
        )
        root.add_child(sequence)
    return root


def idle() -> py_trees.behaviour.Behaviour:
    """One leaf that is RUNNING for ever: after the first tick, nothing changes."""
    return py_trees.behaviours.Running("spin")


def widening() -> py_trees.behaviour.Behaviour:
    """One leaf that adds 2**64 to ``battery`` each tick: a value no 64-bit integer holds."""
    return Drain("widen", amount=-(2**64))
