"""YAML and JSON tree files: loading, ids, positions, includes, building, ticking, and every
kind of mistake reported at its file, line and column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import py_trees
import pytest
from py_trees.common import Status

from canopy.server.runtime.definition import DefinitionError, build_tree, load_tree, stable_id

from .helpers import ALIAS_BOMB, node, only_problem, problems, seed_blackboard, tick

Write = Callable[[str, str], Path]


def test_patrol_loads_with_ids_kinds_params_and_lines(trees: Path) -> None:
    definition = load_tree("patrol.yaml", base_dir=trees)
    assert definition.name == "patrol"
    assert definition.format == "yaml"
    assert definition.path == str(trees / "patrol.yaml")
    assert definition.blackboard == {"battery_level": 0.8}
    summary = [(n.id, n.kind, n.params, n.source.line, n.source.column) for n in definition.nodes()]
    assert summary == [
        ("patrol", "Selector", {"memory": True}, 7, 3),
        ("patrol/recharge_if_low", "Sequence", {"memory": True}, 10, 7),
        (
            "patrol/recharge_if_low/battery_low",
            "robot_behaviours:BatteryLow",
            {"threshold": 0.3},
            13,
            11,
        ),
        ("patrol/recharge_if_low/recharge", "robot_behaviours:Recharge", {}, 17, 11),
        ("patrol/route", "Sequence", {"memory": False}, 19, 7),
        ("patrol/route/retry_a", "Retry", {"num_failures": 3}, 24, 11),
        (
            "patrol/route/retry_a/go_to_a",
            "robot_behaviours:MoveTo",
            {"target": "A", "steps": 2},
            29,
            13,
        ),
        ("patrol/route/limit_b", "Timeout", {"duration": 1.5}, 34, 11),
        ("patrol/route/limit_b/go_to_b", "robot_behaviours:MoveTo", {"target": "B"}, 39, 13),
        ("patrol/route/not_failed", "Inverter", {}, 43, 11),
        ("patrol/route/not_failed/failed", "Failure", {}, 46, 13),
    ]


def test_patrol_builds_and_ticks(trees: Path) -> None:
    built = build_tree(load_tree("patrol.yaml", base_dir=trees))
    seed_blackboard(built)
    assert tick(built) == [Status.RUNNING]  # battery fine; go_to_a needs two ticks
    assert built.behaviours["patrol/recharge_if_low/battery_low"].status == Status.FAILURE
    assert built.behaviours["patrol/route/retry_a/go_to_a"].status == Status.RUNNING
    assert tick(built) == [Status.SUCCESS]  # go_to_a, go_to_b and not_failed succeed
    py_trees.blackboard.Blackboard.set("battery_level", 0.1)
    assert tick(built) == [Status.SUCCESS]  # battery low -> recharge
    assert built.behaviours["patrol/recharge_if_low/recharge"].status == Status.SUCCESS
    assert py_trees.blackboard.Blackboard.get("battery_level") == 1.0


def test_every_behaviour_carries_its_stable_id(trees: Path) -> None:
    definition = load_tree("patrol.yaml", base_dir=trees)
    built = build_tree(definition)
    assert list(built.behaviours) == [node.id for node in definition.nodes()]
    for node_id, behaviour in built.behaviours.items():
        assert stable_id(behaviour) == node_id
        assert built.ids[behaviour.id] == node_id
        assert behaviour.name == node(definition, node_id).name
    assert [stable_id(b) for b in built.root.iterate()][-1] == "patrol"


def test_each_build_is_a_fresh_tree(trees: Path) -> None:
    definition = load_tree("patrol.yaml", base_dir=trees)
    first, second = build_tree(definition), build_tree(definition)
    assert first.root is not second.root
    first.blackboard["battery_level"] = 0.0
    assert second.blackboard == definition.blackboard == {"battery_level": 0.8}


def test_subtrees_are_included_renamed_and_their_blackboard_merged(trees: Path) -> None:
    definition = load_tree("mission.yaml", base_dir=trees)
    dock = str(trees / "parts" / "dock.yaml")
    assert [(n.id, Path(n.source.path).name, n.source.line) for n in definition.nodes()] == [
        ("mission", "mission.yaml", 8),
        ("mission/dock", "dock.yaml", 6),
        ("mission/dock/slow_enough", "dock.yaml", 9),
        ("mission/dock/dock", "dock.yaml", 15),
        ("mission/dock_again", "dock.yaml", 6),
        ("mission/dock_again/slow_enough", "dock.yaml", 9),
        ("mission/dock_again/dock", "dock.yaml", 15),
        ("mission/mark_done", "mission.yaml", 16),
    ]
    assert definition.files() == (str(trees / "mission.yaml"), dock)
    # the including file's values win over the included file's
    assert definition.blackboard == {"speed": 2, "docked": False, "home": {"x": 0, "y": 0}}


def test_included_tree_runs(trees: Path) -> None:
    built = build_tree(load_tree("mission.yaml", base_dir=trees))
    seed_blackboard(built)
    assert tick(built) == [Status.SUCCESS]  # speed 2 < 3, dock twice, mark done
    assert py_trees.blackboard.Blackboard.get("docked") is True
    assert py_trees.blackboard.Blackboard.get("done") is True
    py_trees.blackboard.Blackboard.set("speed", 5)
    assert tick(built) == [Status.FAILURE]  # too fast to dock


def test_json_tree_has_positions_and_runs(trees: Path) -> None:
    definition = load_tree("blink.json", base_dir=trees)
    assert definition.format == "json"
    assert [(n.id, n.source.line, n.source.column) for n in definition.nodes()] == [
        ("blink", 4, 11),
        ("blink/led", 9, 7),
        ("blink/buzzer", 10, 7),
    ]
    assert definition.root.params == {
        "policy": "SuccessOnSelected",
        "children": ["led"],
        "synchronise": True,
    }
    built = build_tree(definition)
    # led succeeds every 2nd tick; buzzer keeps running; only led decides success
    assert tick(built, 4) == [Status.FAILURE, Status.SUCCESS, Status.FAILURE, Status.SUCCESS]


def test_loading_a_file_again_gives_fresh_data_and_sees_its_edits(write: Write) -> None:
    tree = """
        blackboard: {queue: [a]}
        root:
          type: Sequence
          name: main
          params: {memory: true}
          children:
            - {type: Success, name: %s}
        """
    path = write("again.yaml", tree % "first")
    loaded = load_tree(str(path))
    loaded.blackboard["queue"].append("b")  # a run changes its values, not the next load's
    assert load_tree(str(path)).blackboard == {"queue": ["a"]}
    write("again.yaml", tree % "renamed")
    assert [n.id for n in load_tree(str(path)).nodes()] == ["main", "main/renamed"]
    write("again.yaml", tree.replace("Success", "NoSuchKind") % "broken")
    with pytest.raises(DefinitionError):
        load_tree(str(path))


def test_json_with_tab_indentation_keeps_positions(write: Write) -> None:
    path = write("tabs.json", '{\n\t"root": {\n\t\t"type": "Success"\n\t}\n}\n')
    definition = load_tree(str(path))
    assert (definition.root.id, definition.root.source.line, definition.root.source.column) == (
        "Success",
        2,
        10,
    )


def test_explicit_ids_and_default_names(write: Write) -> None:
    path = write(
        "ids.yaml",
        """
        root:
          type: Sequence
          id: main
          children:
            - type: Success
            - type: Sequence
              id: second
              children:
                - type: Failure
        """,
    )
    definition = load_tree(str(path))
    assert [(n.id, n.name) for n in definition.nodes()] == [
        ("main", "Sequence"),
        ("main/Success", "Success"),
        ("second", "Sequence"),
        ("second/Failure", "Failure"),
    ]
    assert definition.name == "ids"  # the file name when the file gives none


# --- mistakes ---------------------------------------------------------------------------------


def test_malformed_yaml_is_reported_at_the_parser_position(write: Write) -> None:
    path = write(
        "broken.yaml",
        """
        root:
          type: Sequence
          children: [
            - type: Success
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.path, problem.line, problem.column) == (str(path), 4, 5)
    assert problem.message == (
        "malformed YAML: expected the node content, but found '-' (while parsing a flow node)"
    )


def test_malformed_json_is_reported_at_the_parser_position(write: Write) -> None:
    path = write("broken.json", '{\n  "root": {"type": "Success",}\n}\n')
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.path, problem.line, problem.column) == (str(path), 2, 29)
    assert problem.message == "malformed JSON: trailing comma is not allowed"


def test_duplicate_keys_are_reported(write: Write) -> None:
    path = write(
        "dup.yaml",
        """
        root:
          type: Success
          name: a
          name: b
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (4, 3)
    assert problem.message == "duplicate key 'name' (first at line 3)"


def test_empty_file_is_reported(write: Write) -> None:
    path = write("empty.yaml", "# nothing yet\n")
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message == "the tree file is empty; it needs at least a `root` node"


def test_schema_violations_are_reported_where_the_fix_goes(write: Write) -> None:
    path = write(
        "schema.yaml",
        """
        root:
          type: Sequence
          chidlren:
            - type: Success
          params:
            memory: "yes"
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (
            3,
            3,
            "unexpected field `chidlren` (did you mean `children`?); "
            "expected one of: type, name, id, params, children, child, file",
        ),
        (6, 13, "`memory` must be a boolean, got 'yes'"),
    ]


@pytest.mark.parametrize("name", ["shadow.yaml", "shadow.json"])
def test_a_file_that_is_no_tree_is_refused_without_quoting_it(write: Write, name: str) -> None:
    """A launch pointed at some other file (a password list) must not echo its lines back as
    "unexpected field" problems, one per line."""
    text = (
        "root:$6$salt$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
        if name.endswith(".yaml")
        else '{"password": "hunter2", "token": "s3cret"}'
    )
    path = write(name, text)
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message == (
        "not a tree file: it has none of the fields `name`, `blackboard`, `root`"
    )


def test_unknown_built_in_type_suggests_the_closest(write: Write) -> None:
    path = write(
        "typo.yaml",
        """
        root:
          type: Sequense
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (2, 9)
    assert problem.message.startswith("unknown node type 'Sequense' (did you mean `Sequence`?): ")
    assert "or a custom class 'package.module:Class'" in problem.message


def test_decorator_without_child_and_leaf_with_children(write: Write) -> None:
    path = write(
        "children.yaml",
        """
        root:
          type: Sequence
          children:
            - type: Inverter
            - type: Success
              children:
                - type: Failure
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (4, 7, "Inverter: missing required field `child`"),
        (6, 7, "a behaviour is a leaf and takes no `children`"),
    ]


def test_wrong_and_unknown_built_in_params(write: Write) -> None:
    path = write(
        "params.yaml",
        """
        root:
          type: Repeat
          params:
            num_sucess: 2
          child:
            type: Parallel
            params:
              policy: SuccessOnSome
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (3, 3, "Repeat: missing parameter `num_success`"),
        (
            4,
            5,
            "unknown parameter `num_sucess` (did you mean `num_success`?); accepted: num_success",
        ),
        (
            8,
            15,
            "`policy` must be one of SuccessOnAll, SuccessOnOne, SuccessOnSelected; "
            "got 'SuccessOnSome'",
        ),
    ]


def test_parallel_policy_rules_in_the_schema(write: Write) -> None:
    path = write(
        "parallel.yaml",
        """
        root:
          type: Sequence
          children:
            - type: Parallel
              params: {policy: SuccessOnOne, synchronise: false}
            - type: Parallel
              params: {children: [a]}
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (5, 38, "`synchronise` does not apply to policy SuccessOnOne"),
        (7, 16, "`children` applies only to policy SuccessOnSelected"),
    ]


def test_parallel_selected_children_must_exist(write: Write) -> None:
    path = write(
        "selected.yaml",
        """
        root:
          type: Parallel
          params: {policy: SuccessOnSelected, children: [ghost, rael]}
          children:
            - type: Success
              name: real
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (
            2,
            3,
            "node 'Parallel': Parallel: `children` names 'ghost', which is not a direct child",
        ),
        (
            2,
            3,
            "node 'Parallel': Parallel: `children` names 'rael', which is not a direct child "
            "(did you mean `real`?)",
        ),
    ]


def test_missing_params_of_a_built_in(write: Write) -> None:
    path = write("no_params.yaml", "root:\n  type: TickCounter\n")
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (2, 3)
    assert (
        problem.message == "TickCounter: missing `params` (it needs: duration, completion_status)"
    )


def test_unknown_custom_classes_are_all_reported(write: Write) -> None:
    write("helpers.py", "def helper():\n    return 1\n\nclass Plain:\n    pass\n")
    path = write(
        "custom.yaml",
        """
        root:
          type: Sequence
          children:
            - type: nowhere.behaviours:Move
            - type: helpers:Missing
            - type: helpers:helper
            - type: helpers:Plain
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.path, p.line, p.column) for p in found] == [
        (str(path), 4, 7),
        (str(path), 5, 7),
        (str(path), 6, 7),
        (str(path), 7, 7),
    ]
    assert [p.message for p in found] == [
        f"node 'Sequence/Move': module 'nowhere.behaviours' not found in {path.parent} "
        "or on sys.path",
        "node 'Sequence/Missing': module 'helpers' has no attribute 'Missing'",
        "node 'Sequence/helper': 'helpers:helper' is a function, "
        "not a subclass of py_trees.behaviour.Behaviour",
        "node 'Sequence/Plain': 'helpers:Plain' is a class Plain, "
        "not a subclass of py_trees.behaviour.Behaviour",
    ]


def test_a_module_that_fails_to_import_is_reported(write: Write) -> None:
    write("broken_behaviours.py", "import py_trees\nraise RuntimeError('no robot attached')\n")
    path = write("uses_broken.yaml", "root:\n  type: broken_behaviours:Move\n")
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (2, 3)
    assert problem.message == (
        "node 'Move': importing module 'broken_behaviours' failed: RuntimeError: no robot attached"
    )


def test_bad_custom_params_name_the_parameter_and_the_node(
    write: Write, robot_behaviours: Path
) -> None:
    path = write(
        "bad_params.yaml",
        """
        root:
          type: Sequence
          children:
            - type: robot_behaviours:BatteryLow
              params: {treshold: 0.5}
            - type: robot_behaviours:MoveTo
              name: go
            - type: robot_behaviours:Recharge
              params: {name: other}
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (
            4,
            7,
            "node 'Sequence/BatteryLow': robot_behaviours:BatteryLow: unknown parameter "
            "`treshold` (did you mean `threshold`?); the constructor accepts: threshold, key",
        ),
        (6, 7, "node 'Sequence/go': robot_behaviours:MoveTo: missing parameter `target`"),
        (
            8,
            7,
            "node 'Sequence/Recharge': `name` cannot be a parameter: it is set from the "
            "node's `name`",
        ),
    ]


def test_custom_decorator_with_two_children(write: Write, robot_behaviours: Path) -> None:
    path = write(
        "twice.yaml",
        """
        root:
          type: Sequence
          children:
            - type: robot_behaviours:Twice
              children:
                - type: Success
                - type: Success
                  name: other
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (4, 7)
    assert problem.message == (
        "node 'Sequence/Twice': robot_behaviours:Twice is a decorator and takes exactly one "
        "child, found 2"
    )


def test_custom_decorator_builds_and_ticks(write: Write, robot_behaviours: Path) -> None:
    path = write(
        "twice.yaml",
        """
        root:
          type: robot_behaviours:Twice
          child:
            type: Success
        """,
    )
    built = build_tree(load_tree(str(path)))
    assert tick(built, 2) == [Status.RUNNING, Status.SUCCESS]  # needs two child successes


def test_constructor_errors_are_reported_at_build(write: Write) -> None:
    write(
        "fussy.py",
        """
        import py_trees


        class Fussy(py_trees.behaviour.Behaviour):
            def __init__(self, name: str, speed: float) -> None:
                super().__init__(name)
                if speed <= 0:
                    raise ValueError(f"speed must be positive, got {speed}")

            def update(self) -> py_trees.common.Status:
                return py_trees.common.Status.SUCCESS
        """,
    )
    path = write(
        "fussy.yaml",
        """
        root:
          type: Sequence
          children:
            - type: fussy:Fussy
              params: {speed: 1}
            - type: fussy:Fussy
              name: stuck
              params: {speed: 0}
        """,
    )
    definition = load_tree(str(path))  # the signature fits
    problem = only_problem(lambda: build_tree(definition))
    assert (problem.path, problem.line, problem.column) == (str(path), 6, 7)
    assert problem.message == (
        "node 'Sequence/stuck': constructing fussy:Fussy failed: "
        "ValueError: speed must be positive, got 0"
    )


def test_duplicate_ids_name_both_places_and_suggest_an_id(write: Write) -> None:
    path = write(
        "twins.yaml",
        """
        root:
          type: Sequence
          children:
            - type: Success
            - type: Success
            - type: Failure
              id: Sequence/Success
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (
            5,
            7,
            "duplicate id 'Sequence/Success' (also at line 4, column 7); "
            "add a distinct `id` to one of them",
        ),
        (
            6,
            7,
            "duplicate id 'Sequence/Success' (also at line 4, column 7); "
            "add a distinct `id` to one of them",
        ),
    ]


def test_duplicate_ids_across_included_files(write: Write) -> None:
    write("part.yaml", "root:\n  type: Success\n  name: same\n")
    path = write(
        "whole.yaml",
        """
        root:
          type: Sequence
          name: whole
          children:
            - type: Success
              name: same
            - type: Subtree
              file: part.yaml
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.path, problem.line, problem.column) == (str(path.parent / "part.yaml"), 2, 3)
    assert problem.message == (
        "duplicate id 'whole/same' (also at whole.yaml:5:7); add a distinct `id` to one of them"
    )


def test_missing_subtree_file(write: Write) -> None:
    path = write(
        "outer.yaml",
        """
        root:
          type: Sequence
          children:
            - type: Subtree
              file: parts/missing.yaml
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.path, problem.line, problem.column) == (str(path), 4, 7)
    assert problem.message == (
        f"subtree file not found: parts/missing.yaml (looked for {path.parent}/parts/missing.yaml)"
    )


def test_include_cycles_show_the_chain_of_files(write: Write) -> None:
    write("a.yaml", "root:\n  type: Subtree\n  file: sub/b.yaml\n")
    write(
        "sub/b.yaml",
        "root:\n  type: Sequence\n  children:\n    - {type: Subtree, file: ../a.yaml}\n",
    )
    path = write("top.yaml", "root:\n  type: Subtree\n  file: a.yaml\n")
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.path, problem.line, problem.column) == (
        str(path.parent / "sub" / "b.yaml"),
        4,
        7,
    )
    assert problem.message == "include cycle: a.yaml -> sub/b.yaml -> a.yaml"


def test_problems_of_several_included_files_are_collected(write: Write) -> None:
    write("one.yaml", "root:\n  type: Succes\n")
    write("two.yaml", "root: [\n")
    path = write(
        "both.yaml",
        """
        root:
          type: Sequence
          children:
            - {type: Subtree, file: one.yaml}
            - {type: Subtree, file: two.yaml}
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(Path(p.path).name, p.line) for p in found] == [("one.yaml", 2), ("two.yaml", 2)]


def test_custom_node_with_both_child_and_children(write: Write) -> None:
    path = write(
        "both.yaml",
        """
        root:
          type: robot.nodes:Guard
          child: {type: Success}
          children: []
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (2, 3)
    assert problem.message == (
        "give either `child` (a decorator class) or `children` (a composite class), not both"
    )


def test_python_tags_are_refused_not_executed(write: Write) -> None:
    path = write(
        "unsafe.yaml",
        """
        root:
          type: Success
          params: !!python/object/apply:os.getpid []
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (3, 11)
    assert problem.message == (
        "malformed YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.getpid'"
    )


def test_anchors_are_refused_even_recursive_ones(write: Write) -> None:
    path = write(
        "recursive.yaml",
        """
        root: &node
          type: Sequence
          children:
            - *node
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (1, 7)
    assert problem.message == "an anchor (&node) is not allowed in a tree file"


def test_an_alias_bomb_is_refused_at_its_first_anchor(write: Write) -> None:
    path = write("bomb.yaml", ALIAS_BOMB)
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (1, 4)
    assert problem.message == "an anchor (&a) is not allowed in a tree file"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            "root: {type: Success}\nx: &a [1]\n",
            (2, 4),
            "an anchor (&a) is not allowed in a tree file",
        ),
        (
            "root: {type: Success, params: {<<: *base}}\n",
            (1, 36),
            "an alias (*base) is not allowed in a tree file",
        ),
        ("root: " + "[" * 129 + "]" * 129 + "\n", (1, 134), "nested deeper than 128 levels"),
        (
            "root:\n" + "".join(f"{'  ' * i}- \n" for i in range(200)),
            (129, 255),
            "nested deeper than 128 levels",
        ),
    ],
)
def test_anchors_aliases_and_deep_nesting_are_refused_where_written(
    write: Write, text: str, where: tuple[int, int], message: str
) -> None:
    path = write("refused.yaml", text)
    problem = only_problem(lambda: load_tree(str(path)))
    assert ((problem.line, problem.column), problem.message) == (where, message)


@pytest.mark.parametrize("suffix", ["yaml", "json", "xml"])
def test_a_tree_file_over_1_mib_is_refused_before_parsing(write: Write, suffix: str) -> None:
    path = write(f"huge.{suffix}", "x" * (1024 * 1024 + 1))
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message == f"the file is {1024 * 1024 + 1} bytes, over the limit of 1048576"


def test_a_character_yaml_may_not_hold_is_refused_where_it_is(write: Write) -> None:
    path = write("control.yaml", "root:\n  type: Success\n  name: a\x03b\n")
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (3, 10)
    assert problem.message == "malformed YAML: character 0x0003 is not allowed in YAML"


def test_a_json_tree_with_a_character_yaml_may_not_hold_still_loads(write: Write) -> None:
    """JSON allows a raw DEL in a string; YAML, composed only for positions, does not."""
    path = write("del.json", '{"root": {"type": "Success", "name": "a\x7fb"}}')
    assert load_tree(str(path)).root.name == "a\x7fb"
