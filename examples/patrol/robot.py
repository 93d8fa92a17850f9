"""Behaviours of the demo patrol robot.

The robot checks its battery, drives to the next waypoint and scans there, round after round.
``Scan`` has a deliberate bug: it sets the camera exposure from the battery level in tens, and
divides by zero once the level drops below 10 -- which the battery check's threshold lets
happen. Debug it: a data breakpoint on ``battery``, a breakpoint on ``scan``, then step back
from the failure to see which round let the robot go out with too little charge.
"""

from __future__ import annotations

import py_trees
from py_trees.common import Access, Status


class CheckBattery(py_trees.behaviour.Behaviour):
    """SUCCESS while the battery is above ``threshold`` (percent), else FAILURE."""

    def __init__(self, name: str, threshold: int = 20) -> None:
        super().__init__(name)
        self.threshold = threshold
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key="battery", access=Access.READ)

    def update(self) -> Status:
        level = self.blackboard.battery
        self.feedback_message = f"battery at {level}%"
        return Status.SUCCESS if level > self.threshold else Status.FAILURE


class MoveTo(py_trees.behaviour.Behaviour):
    """Drives to the next waypoint: RUNNING for ``steps - 1`` ticks, then SUCCESS, having
    used ``cost`` percent of the battery."""

    def __init__(self, name: str, steps: int = 2, cost: int = 10) -> None:
        super().__init__(name)
        self.steps = steps
        self.cost = cost
        self.done = 0
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key="battery", access=Access.WRITE)
        self.blackboard.register_key(key="waypoint", access=Access.WRITE)

    def initialise(self) -> None:
        self.done = 0

    def update(self) -> Status:
        self.done += 1
        if self.done < self.steps:
            self.feedback_message = f"driving ({self.done}/{self.steps})"
            return Status.RUNNING
        self.blackboard.battery = self.blackboard.battery - self.cost
        self.blackboard.waypoint = self.blackboard.waypoint + 1
        self.feedback_message = f"at waypoint {self.blackboard.waypoint}"
        return Status.SUCCESS


class Scan(py_trees.behaviour.Behaviour):
    """Takes a picture at the waypoint and counts it in ``scans``."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key="battery", access=Access.READ)
        self.blackboard.register_key(key="scans", access=Access.WRITE)

    def update(self) -> Status:
        exposure_ms = 100 // (self.blackboard.battery // 10)  # the bug: battery < 10 divides by 0
        self.blackboard.scans = self.blackboard.scans + 1
        self.feedback_message = f"scan {self.blackboard.scans} at {exposure_ms} ms exposure"
        return Status.SUCCESS
