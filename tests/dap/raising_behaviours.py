"""A tree whose one behaviour raises in a helper of the user's, with locals worth looking at:
the exception's frames and locals as a debugger shows them (tests/dap/test_raised_frames.py)."""

from __future__ import annotations

import py_trees
from py_trees.common import Access, Status


class BrokenRepr:
    """A value whose ``repr`` raises: showing it must not break the stop."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class Expose(py_trees.behaviour.Behaviour):
    """Computes an exposure from ``/battery``: divides by zero when the battery is empty."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.scale = 100
        self.blackboard = self.attach_blackboard_client(name=name)
        self.blackboard.register_key(key="battery", access=Access.READ)

    def update(self) -> Status:
        battery = self.blackboard.battery
        huge = 2**70
        broken = BrokenRepr()
        readings = [battery, "dark"]
        self.feedback_message = f"{readings} {huge} {type(broken).__name__}"
        return Status.SUCCESS if exposure(self.scale, battery) else Status.FAILURE


def exposure(scale: int, battery: int) -> int:
    steps = battery // 10
    return scale // steps  # RAISES: an empty battery has no steps


def tree() -> py_trees.behaviour.Behaviour:
    return py_trees.composites.Sequence("camera", memory=False, children=[Expose("expose")])
