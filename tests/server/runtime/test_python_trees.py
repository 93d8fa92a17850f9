"""Python factories: the definition walked from the returned tree, ids with ``#n`` for repeated
sibling names, class locations, fresh trees on every build, and factories that go wrong."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import py_trees
from py_trees.common import Status

from canopy.server.runtime.definition import build_tree, load_tree, stable_id

from .helpers import node, only_problem, tick

Write = Callable[[str, str], Path]


def test_factory_file_gives_the_same_ids_as_the_tree_files(trees: Path) -> None:
    from_python = load_tree("patrol_factory.py:create_patrol", base_dir=trees)
    from_yaml = load_tree("patrol.yaml", base_dir=trees)
    assert [n.id for n in from_python.nodes()] == [n.id for n in from_yaml.nodes()]
    assert from_python.format == "python"
    assert from_python.name == "create_patrol"
    assert from_python.path == str(trees / "patrol_factory.py")
    assert from_python.factory == f"{trees / 'patrol_factory.py'}:create_patrol"


def test_kinds_are_class_paths_and_sources_are_class_definitions(trees: Path) -> None:
    definition = load_tree("patrol_factory.py:create_patrol", base_dir=trees)
    battery = node(definition, "patrol/recharge_if_low/battery_low")
    assert battery.kind == "robot_behaviours:BatteryLow"
    assert battery.source.path == str(trees / "robot_behaviours.py")
    assert battery.source.line == 13  # class BatteryLow(...)
    selector = definition.root
    assert selector.kind == "py_trees.composites:Selector"
    assert selector.source.path == inspect.getsourcefile(py_trees.composites.Selector)
    assert selector.source.line == inspect.getsourcelines(py_trees.composites.Selector)[1]


def test_classes_made_at_run_time_point_at_their_function(trees: Path) -> None:
    definition = load_tree("patrol_factory.py:create_patrol", base_dir=trees)
    failed = node(definition, "patrol/route/not_failed/failed")
    assert failed.kind == "py_trees.behaviours:Failure"  # made by py_trees.meta from a function
    assert failed.source.path == inspect.getsourcefile(py_trees.behaviours.failure)
    assert failed.source.line == inspect.getsourcelines(py_trees.behaviours.failure)[1]


def test_repeated_sibling_names_get_a_suffix(trees: Path) -> None:
    definition = load_tree("patrol_factory.py:create_echo", base_dir=trees)
    assert [n.id for n in definition.nodes()] == [
        "echo",
        "echo/Success",
        "echo/Success#2",
        "echo/Success#3",
        "echo/Success#3/Running",
    ]


def test_module_form_with_base_dir(trees: Path) -> None:
    definition = load_tree("patrol_factory:create_echo", base_dir=trees)
    assert definition.factory == "patrol_factory:create_echo"
    built = build_tree(definition)
    assert stable_id(built.behaviours["echo/Success#2"]) == "echo/Success#2"


def test_build_calls_the_factory_again(trees: Path) -> None:
    definition = load_tree("patrol_factory.py:create_patrol", base_dir=trees)
    first, second = build_tree(definition), build_tree(definition)
    assert first.root is not second.root
    assert list(first.behaviours) == [n.id for n in definition.nodes()]
    py_trees.blackboard.Blackboard.set("battery_level", 0.9)
    assert tick(first, 2) == [Status.RUNNING, Status.SUCCESS]  # go_to_a takes two ticks
    assert second.root.status == Status.INVALID  # untouched


def test_factory_that_raises_points_at_the_raise(write: Write) -> None:
    path = write(
        "raising.py",
        """
        import py_trees


        def make_tree():
            speed = 0
            return py_trees.behaviours.Success(name=str(1 / speed))
        """,
    )
    problem = only_problem(lambda: load_tree(f"{path}:make_tree"))
    assert (problem.path, problem.line) == (str(path), 6)
    assert problem.message == (
        f"factory '{path}:make_tree' raised ZeroDivisionError: division by zero"
    )


def test_factory_returning_something_else(write: Write) -> None:
    path = write("not_a_tree.py", "def make_tree():\n    return {'root': 'Success'}\n")
    problem = only_problem(lambda: load_tree("not_a_tree.py:make_tree", base_dir=path.parent))
    assert (problem.path, problem.line, problem.column) == (str(path), 1, 1)
    assert problem.message == (
        f"factory '{path}:make_tree' returned dict, not a py_trees Behaviour"
    )


def test_missing_function_module_and_file(write: Write, tmp_path: Path) -> None:
    path = write("empty_factory.py", "X = 1\n")
    problem = only_problem(lambda: load_tree("empty_factory.py:make", base_dir=tmp_path))
    assert (problem.path, problem.line, problem.column) == (str(path), 1, 1)
    assert problem.message == "module 'empty_factory' has no function 'make'"

    problem = only_problem(lambda: load_tree("empty_factory.py:X", base_dir=tmp_path))
    assert problem.message == "module 'empty_factory' has no function 'X'"

    problem = only_problem(lambda: load_tree("missing.py:make", base_dir=tmp_path))
    assert (problem.path, problem.message) == (
        str(tmp_path / "missing.py"),
        "factory file not found",
    )

    problem = only_problem(lambda: load_tree("no_such_package.trees:make", base_dir=tmp_path))
    assert (problem.path, problem.line) == ("no_such_package.trees:make", 1)
    assert (
        problem.message == f"module 'no_such_package.trees' not found in {tmp_path} or on sys.path"
    )


def test_factory_returning_a_different_tree_on_rebuild(write: Write) -> None:
    path = write(
        "moody.py",
        """
        import py_trees

        calls = []


        def make_tree():
            calls.append(1)
            name = "first" if len(calls) == 1 else "second"
            return py_trees.composites.Sequence(
                "root", memory=True, children=[py_trees.behaviours.Success(name)]
            )
        """,
    )
    definition = load_tree(f"{path}:make_tree")
    problem = only_problem(lambda: build_tree(definition))
    assert (problem.path, problem.line) == (str(path), 6)
    assert problem.message == (
        f"factory '{path}:make_tree' returned a different tree than when it was loaded "
        "(first difference at node root/first); reload the tree"
    )


def test_the_same_behaviour_twice_in_a_tree(write: Write) -> None:
    path = write(
        "shared.py",
        """
        import py_trees


        def make_tree():
            same = py_trees.behaviours.Success("same")
            root = py_trees.composites.Sequence("root", memory=True, children=[same])
            root.children.append(same)  # behind add_child's back, which would refuse
            return root
        """,
    )
    problem = only_problem(lambda: load_tree(f"{path}:make_tree"))
    assert (problem.path, problem.line) == (str(path), 4)
    assert problem.message == (
        "the same behaviour object is in the tree twice ('root/same' and 'root/same#2'); "
        "create one instance per place"
    )
