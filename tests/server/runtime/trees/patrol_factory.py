"""Python factories: the patrol tree built in code, and a tree whose siblings share names."""

from __future__ import annotations

import py_trees
from py_trees.behaviour import Behaviour
from robot_behaviours import BatteryLow, MoveTo, Recharge


def create_patrol() -> Behaviour:
    """The same tree as patrol.yaml and patrol.xml."""
    recharge_if_low = py_trees.composites.Sequence(
        "recharge_if_low",
        memory=True,
        children=[BatteryLow("battery_low", threshold=0.3), Recharge("recharge")],
    )
    route = py_trees.composites.Sequence(
        "route",
        memory=False,
        children=[
            py_trees.decorators.Retry("retry_a", MoveTo("go_to_a", "A", steps=2), num_failures=3),
            py_trees.decorators.Timeout("limit_b", MoveTo("go_to_b", "B"), duration=1.5),
            py_trees.decorators.Inverter("not_failed", py_trees.behaviours.Failure("failed")),
        ],
    )
    return py_trees.composites.Selector("patrol", memory=True, children=[recharge_if_low, route])


def create_echo() -> Behaviour:
    """Three children named alike: their ids get #2 and #3."""
    return py_trees.composites.Sequence(
        "echo",
        memory=True,
        children=[
            py_trees.behaviours.Success(),
            py_trees.behaviours.Success(),
            py_trees.composites.Sequence(
                "Success", memory=True, children=[py_trees.behaviours.Running()]
            ),
        ],
    )
