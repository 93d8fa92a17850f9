"""Every built-in kind, built from a tree file into its real py_trees class and ticked; and the
schema kept in step with the Python table of built-ins."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import py_trees
import pytest
from py_trees.common import Status

from canopy import schemas
from canopy.server.runtime.definition import (
    AGENT_KINDS,
    BUILTINS,
    FILE_BUILTINS,
    build_tree,
    load_tree,
)
from canopy.server.runtime.definition.builtin_kinds import OPTIONAL, REQUIRED

from .helpers import tick

Write = Callable[[str, str], Path]

S, F, R = Status.SUCCESS, Status.FAILURE, Status.RUNNING


def build(write: Write, root: dict[str, Any], blackboard: dict[str, Any] | None = None) -> Any:
    """Build a tree whose file is ``{"root": root}`` (JSON is YAML), with its blackboard set."""
    path = write("tree.json", json.dumps({"root": root, "blackboard": blackboard or {}}))
    built = build_tree(load_tree(str(path)))
    for key, value in built.blackboard.items():
        py_trees.blackboard.Blackboard.set(key, value)
    return built


def leaf(kind: str, **params: Any) -> dict[str, Any]:
    return {"type": kind, "params": params} if params else {"type": kind}


def wrap(kind: str, child: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {**leaf(kind, **params), "child": child}


def group(kind: str, *children: dict[str, Any], **params: Any) -> dict[str, Any]:
    named = [{**child, "name": f"c{i}"} for i, child in enumerate(children)]
    return {**leaf(kind, **params), "children": named}


CASES: dict[str, tuple[dict[str, Any], list[Status]]] = {
    "sequence": (
        group(
            "Sequence",
            leaf("Success"),
            leaf("TickCounter", duration=1, completion_status="SUCCESS"),
        ),
        [R, S],
    ),
    "sequence_fails": (group("Sequence", leaf("Failure"), leaf("Success")), [F]),
    "selector": (group("Selector", leaf("Failure"), leaf("Success")), [S]),
    "selector_fails": (group("Selector", leaf("Failure"), leaf("Failure")), [F]),
    "parallel_all": (
        group(
            "Parallel",
            leaf("Success"),
            leaf("TickCounter", duration=1, completion_status="SUCCESS"),
        ),
        [R, S],
    ),
    "parallel_one": (
        group("Parallel", leaf("Running"), leaf("Success"), policy="SuccessOnOne"),
        [S],
    ),
    "parallel_fails": (
        group("Parallel", leaf("Running"), leaf("Failure"), policy="SuccessOnOne"),
        [F],
    ),
    "inverter": (wrap("Inverter", leaf("Success")), [F]),
    "repeat": (wrap("Repeat", leaf("Success"), num_success=2), [R, S]),  # two successes
    "retry": (wrap("Retry", leaf("Failure"), num_failures=2), [R, F]),  # two failures
    "timeout": (wrap("Timeout", leaf("Success"), duration=60), [S]),
    "one_shot": (wrap("OneShot", leaf("Failure"), policy="ON_COMPLETION"), [F, F]),
    "failure_is_success": (wrap("FailureIsSuccess", leaf("Failure")), [S]),
    "success_is_failure": (wrap("SuccessIsFailure", leaf("Success")), [F]),
    "failure_is_running": (wrap("FailureIsRunning", leaf("Failure")), [R]),
    "running_is_failure": (wrap("RunningIsFailure", leaf("Running")), [F]),
    "running_is_success": (wrap("RunningIsSuccess", leaf("Running")), [S]),
    "success_is_running": (wrap("SuccessIsRunning", leaf("Success")), [R]),
    "success": (leaf("Success"), [S]),
    "failure": (leaf("Failure"), [F]),
    "running": (leaf("Running"), [R]),
    "dummy": (leaf("Dummy"), [R]),
    "tick_counter": (leaf("TickCounter", duration=2, completion_status="FAILURE"), [R, R, F]),
    "success_every_n": (leaf("SuccessEveryN", n=2), [F, S, F, S]),
    "periodic": (leaf("Periodic", n=1), [R, S]),
}


@pytest.mark.parametrize(("root", "statuses"), CASES.values(), ids=CASES.keys())
def test_built_in_ticks_like_py_trees(
    write: Write, root: dict[str, Any], statuses: list[Status]
) -> None:
    assert tick(build(write, root), len(statuses)) == statuses


def test_built_ins_are_the_real_py_trees_classes(write: Write) -> None:
    built = build(
        write,
        group(
            "Parallel",
            leaf("Success"),
            leaf("Running"),
            policy="SuccessOnSelected",
            children=["c1"],
            synchronise=False,
        ),
    )
    parallel = built.root
    assert type(parallel) is py_trees.composites.Parallel
    assert isinstance(parallel.policy, py_trees.common.ParallelPolicy.SuccessOnSelected)
    assert parallel.policy.children == [parallel.children[1]]
    assert parallel.policy.synchronise is False
    assert tick(built) == [R]  # the selected child c1 is still running


def test_one_shot_does_not_tick_its_child_again(write: Write) -> None:
    built = build(
        write,
        wrap(
            "OneShot",
            leaf("TickCounter", duration=0, completion_status="SUCCESS"),
            policy="ON_SUCCESSFUL_COMPLETION",
        ),
    )
    assert tick(built, 2) == [S, S]
    counter = built.root.children[0]
    assert counter.counter == 1  # ticked once only


def test_blackboard_behaviours(write: Write) -> None:
    tree = group(
        "Sequence",
        leaf("SetBlackboardVariable", variable_name="level", variable_value=3, overwrite=True),
        leaf("CheckBlackboardVariableValue", variable_name="level", expected_value=2, operator=">"),
        leaf("CheckBlackboardVariableExists", variable_name="level"),
        leaf("UnsetBlackboardVariable", key="level"),
        leaf("WaitForBlackboardVariable", variable_name="level"),
    )
    built = build(write, tree)
    assert tick(built) == [R]  # set, checked, unset, now waiting for it again
    py_trees.blackboard.Blackboard.set("level", 1)
    assert tick(built) == [S]  # memory: resumes the wait, which now finds it


def test_wait_for_a_value(write: Write) -> None:
    built = build(
        write,
        leaf("WaitForBlackboardVariableValue", variable_name="door", expected_value="open"),
        {"door": "closed"},
    )
    assert tick(built) == [R]  # door closed
    py_trees.blackboard.Blackboard.set("door", "open")
    assert tick(built) == [S]


@pytest.mark.parametrize(
    ("operator", "status"),
    [("==", S), ("!=", F), ("<", F), ("<=", S), (">", F), (">=", S)],
)
def test_comparison_operators(write: Write, operator: str, status: Status) -> None:
    check = leaf(
        "CheckBlackboardVariableValue", variable_name="n", expected_value=3, operator=operator
    )
    assert tick(build(write, check, {"n": 3})) == [status]  # 3 <operator> 3


def test_set_variable_values_are_not_shared_between_builds(write: Write) -> None:
    path = write(
        "tree.json",
        json.dumps(
            {
                "root": leaf(
                    "SetBlackboardVariable",
                    variable_name="route",
                    variable_value=["a"],
                    overwrite=True,
                )
            }
        ),
    )
    definition = load_tree(str(path))
    first, second = build_tree(definition), build_tree(definition)
    value = first.root.variable_value_generator()
    assert value == ["a"]
    assert value is not second.root.variable_value_generator()  # py_trees keeps a reference


# --- the schema and the table agree -----------------------------------------------------------

SCHEMA = schemas.load("tree.schema.json")


def test_the_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_offers_exactly_the_file_built_ins() -> None:
    choices = SCHEMA["$defs"]["node"]["properties"]["type"]["anyOf"]
    consts = [choice["const"] for choice in choices if "const" in choice]
    assert consts == [*FILE_BUILTINS, *AGENT_KINDS, "Subtree"]
    assert all(choice.get("description") for choice in choices)


@pytest.mark.parametrize("name", FILE_BUILTINS)
def test_schema_params_match_the_python_table(name: str) -> None:
    builtin = BUILTINS[name]
    params = SCHEMA["$defs"]["params"][name]
    assert list(params["properties"]) == [p.name for p in builtin.params]
    assert params.get("required", []) == [p.name for p in builtin.params if p.default is REQUIRED]
    for param in builtin.params:
        described = params["properties"][param.name]
        assert described.get("description"), f"{name}.{param.name} needs a description"
        if param.choices:
            assert tuple(described["enum"]) == param.choices
        elif param.type != "any":
            assert described["type"] == param.type
        if param.default not in (REQUIRED, OPTIONAL):
            assert described["default"] == param.default
        assert described.get("minimum") == param.minimum


@pytest.mark.parametrize("name", FILE_BUILTINS)
def test_schema_roles_match_the_python_table(name: str) -> None:
    rules = SCHEMA["$defs"]["node"]["allOf"]
    rule = next(r for r in rules if r["if"]["properties"]["type"].get("const") == name)
    assert rule["then"]["allOf"] == [{"$ref": f"#/$defs/{BUILTINS[name].role.value}"}]


def test_yaml_fixtures_point_editors_at_the_schema(trees: Path) -> None:
    for path in sorted(trees.rglob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match, f"{path.name} lacks the schema modeline"
        assert (path.parent / match[1]).resolve() == Path(
            schemas.__file__
        ).parent / "tree.schema.json"
