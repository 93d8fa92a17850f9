"""BehaviorTree.CPP v4 (Groot2) XML trees: the mapping onto py_trees, expat positions, the
registry of custom nodes, and every mistake reported at its line and column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import py_trees
from py_trees.common import Status

from canopy.server.runtime.definition import (
    TreeDefinition,
    blackboard_key,
    build_tree,
    is_blackboard_reference,
    load_tree,
)

from .conftest import REGISTRY
from .helpers import at_line, node, only_problem, problems, tick

Write = Callable[[str, str], Path]


def shape(definition: TreeDefinition) -> list[tuple[str, str, dict[str, object], list[str]]]:
    """What two definitions of the same tree must agree on, whatever their format."""
    return [
        (node.id, node.kind, node.params, [child.id for child in node.children])
        for node in definition.nodes()
    ]


def test_groot_xml_and_yaml_define_the_same_tree(trees: Path) -> None:
    from_xml = load_tree("patrol.xml", base_dir=trees, registry=REGISTRY)
    from_yaml = load_tree("patrol.yaml", base_dir=trees)
    assert shape(from_xml) == shape(from_yaml)
    assert (from_xml.name, from_xml.format, from_xml.blackboard) == ("patrol", "xml", {})


def test_groot_xml_and_yaml_build_equivalent_trees(trees: Path) -> None:
    built = [
        build_tree(load_tree(name, base_dir=trees, registry=REGISTRY))
        for name in ("patrol.xml", "patrol.yaml")
    ]
    for tree in built:
        assert [type(b).__name__ for b in tree.behaviours.values()] == [
            "Selector",
            "Sequence",
            "BatteryLow",
            "Recharge",
            "Sequence",
            "Retry",
            "MoveTo",
            "Timeout",
            "MoveTo",
            "Inverter",
            "Failure",
        ]
    xml_route, yaml_route = (tree.behaviours["patrol/route"] for tree in built)
    assert xml_route.memory is yaml_route.memory is False
    xml_timeout, yaml_timeout = (tree.behaviours["patrol/route/limit_b"] for tree in built)
    assert xml_timeout.duration == yaml_timeout.duration == 1.5


def test_xml_tree_ticks(trees: Path) -> None:
    built = build_tree(load_tree("patrol.xml", base_dir=trees, registry=REGISTRY))
    py_trees.blackboard.Blackboard.set("battery_level", 0.9)
    assert tick(built, 2) == [Status.RUNNING, Status.SUCCESS]  # go_to_a takes two ticks


def test_xml_positions_come_from_expat(trees: Path) -> None:
    definition = load_tree("patrol.xml", base_dir=trees, registry=REGISTRY)
    assert [(n.id, n.source.line, n.source.column) for n in definition.nodes()][:4] == [
        ("patrol", 5, 5),
        ("patrol/recharge_if_low", 6, 7),
        ("patrol/recharge_if_low/battery_low", 7, 9),
        ("patrol/recharge_if_low/recharge", 8, 9),
    ]
    path = str(trees / "patrol.xml")
    assert definition.breakpoint_lines(path) == (5, 6, 7, 8, 10, 11, 12, 14, 15, 17, 18)
    assert at_line(definition, path, 9) == "patrol/recharge_if_low"  # its end tag
    assert at_line(definition, path, 22) is None  # past the last node


def test_an_attribute_line_of_a_multi_line_element_binds_to_it(write: Write) -> None:
    path = write(
        "spread.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence
                name="seq">
              <AlwaysSuccess
                  _description="the first"
                  name="a > b"
                  />
              <AlwaysSuccess name="b"/>
            </Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    definition = load_tree(str(path))
    lines = {line: at_line(definition, str(path), line) for line in range(3, 12)}
    assert lines == {
        3: "seq",
        4: "seq",  # the Sequence's name attribute
        5: "seq/a > b",
        6: "seq/a > b",  # an attribute line
        7: "seq/a > b",  # a quoted ">" does not end the tag
        8: "seq/a > b",  # the end of the start tag
        9: "seq/b",
        10: "seq",  # the Sequence's end tag
        11: None,  # past the last node
    }
    assert definition.breakpoint_lines(str(path), 6, 7) == (5,)


def test_subtrees_stay_visible_and_record_their_remapping(trees: Path) -> None:
    definition = load_tree("missions.xml", base_dir=trees, registry=REGISTRY)
    assert definition.name == "Mission"
    assert [(n.id, n.kind, n.source.line) for n in definition.nodes()] == [
        ("mission", "Sequence", 4),
        ("mission/to_dock", "SubTree", 5),
        ("mission/to_dock/Repeat", "Repeat", 14),
        ("mission/to_dock/Repeat/drive", "robot_behaviours:MoveTo", 15),
        ("mission/to_home", "SubTree", 6),
        ("mission/to_home/Repeat", "Repeat", 14),
        ("mission/to_home/Repeat/drive", "robot_behaviours:MoveTo", 15),
        ("mission/report", "Parallel", 7),
        ("mission/report/beep", "Success", 8),
        ("mission/report/wiggle", "robot_behaviours:MoveTo", 9),
    ]
    to_dock = node(definition, "mission/to_dock")
    assert to_dock.params == {"ID": "GoTo", "remapping": {"goal": "{dock}"}, "autoremap": True}
    drive = node(definition, "mission/to_dock/Repeat/drive")
    assert drive.params == {"target": "{goal}"}
    assert is_blackboard_reference(drive.params["target"])
    assert blackboard_key(drive.params["target"]) == "goal"
    wiggle = node(definition, "mission/report/wiggle")
    assert wiggle.params == {"target": "here", "steps": 3}  # steps: int, as MoveTo annotates it
    assert node(definition, "mission/report").params == {"policy": "SuccessOnOne"}


def test_both_instances_of_a_subtree_share_its_breakpoint_line(trees: Path) -> None:
    definition = load_tree("missions.xml", base_dir=trees, registry=REGISTRY)
    path = str(trees / "missions.xml")
    assert [n.id for n in definition.nodes_at_line(path, 15)] == [
        "mission/to_dock/Repeat/drive",
        "mission/to_home/Repeat/drive",
    ]


def test_subtrees_run(trees: Path) -> None:
    built = build_tree(load_tree("missions.xml", base_dir=trees, registry=REGISTRY))
    assert type(built.behaviours["mission/to_dock"]).__name__ == "PassThrough"
    assert tick(built, 3) == [
        Status.RUNNING,  # to_dock: first of two successes
        Status.RUNNING,  # to_dock done; to_home: first of two
        Status.SUCCESS,  # to_home done; report: beep succeeds while wiggle runs
    ]


def test_parallel_counts_map_to_policies(write: Write) -> None:
    path = write(
        "parallel.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence>
              <Parallel name="all"><AlwaysSuccess/></Parallel>
              <Parallel name="three" success_count="3" failure_count="1">
                <AlwaysSuccess name="a"/><AlwaysSuccess name="b"/><AlwaysSuccess name="c"/>
              </Parallel>
              <Parallel name="one" success_count="1">
                <AlwaysSuccess name="a"/><AlwaysSuccess name="b"/>
              </Parallel>
            </Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    definition = load_tree(str(path))
    assert [(n.id, n.params) for n in definition.nodes() if n.kind == "Parallel"] == [
        ("Sequence/all", {"policy": "SuccessOnAll", "synchronise": True}),
        ("Sequence/three", {"policy": "SuccessOnAll", "synchronise": True}),
        ("Sequence/one", {"policy": "SuccessOnOne"}),
    ]


def test_reactive_nodes_and_leaves(write: Write) -> None:
    path = write(
        "reactive.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <ReactiveFallback>
              <ForceFailure><AlwaysSuccess/></ForceFailure>
              <ForceSuccess><AlwaysFailure/></ForceSuccess>
            </ReactiveFallback>
          </BehaviorTree>
        </root>
        """,
    )
    definition = load_tree(str(path))
    assert [(n.id, n.kind, n.params) for n in definition.nodes()] == [
        ("ReactiveFallback", "Selector", {"memory": False}),
        ("ReactiveFallback/ForceFailure", "SuccessIsFailure", {}),
        ("ReactiveFallback/ForceFailure/AlwaysSuccess", "Success", {}),
        ("ReactiveFallback/ForceSuccess", "FailureIsSuccess", {}),
        ("ReactiveFallback/ForceSuccess/AlwaysFailure", "Failure", {}),
    ]
    assert tick(build_tree(definition)) == [Status.SUCCESS]  # the forced failure falls back


def test_registry_may_name_a_built_in(write: Write) -> None:
    path = write(
        "stub.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Wait name="wait" duration="2" completion_status="SUCCESS"/>
          </BehaviorTree>
        </root>
        """,
    )
    definition = load_tree(str(path), registry={"Wait": "TickCounter"})
    assert definition.root.params == {"duration": 2, "completion_status": "SUCCESS"}
    assert tick(build_tree(definition), 3) == [Status.RUNNING, Status.RUNNING, Status.SUCCESS]


def test_main_tree_defaults_to_the_first(write: Write) -> None:
    path = write(
        "first.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="First"><AlwaysSuccess/></BehaviorTree>
          <BehaviorTree ID="Second"><AlwaysFailure/></BehaviorTree>
        </root>
        """,
    )
    definition = load_tree(str(path))
    assert (definition.name, definition.root.kind) == ("First", "Success")


# --- mistakes ---------------------------------------------------------------------------------


def test_malformed_xml_is_reported_at_the_parser_position(write: Write) -> None:
    path = write(
        "broken.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.path, problem.line, problem.column) == (str(path), 4, 5)
    assert problem.message == "malformed XML: mismatched tag"


def test_unknown_tags_list_the_known_ones(write: Write) -> None:
    path = write(
        "unknown.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence>
              <BatteryCheck threshold="0.2"/>
              <Action ID="Dock"/>
            </Sequence>
          </BehaviorTree>
          <TreeNodesModel>
            <Action ID="Dock"/>
          </TreeNodesModel>
        </root>
        """,
    )
    found = problems(lambda: load_tree(str(path), registry={"MoveTo": "robot:MoveTo"}))
    assert [(p.path, p.line, p.column) for p in found] == [(str(path), 4, 7), (str(path), 5, 7)]
    assert found[0].message == (
        "unknown node <BatteryCheck>: not a BehaviorTree.CPP built-in and not in the registry; "
        "built-in tags: AlwaysFailure, AlwaysSuccess, Fallback, ForceFailure, ForceSuccess, "
        "Inverter, Parallel, ReactiveFallback, ReactiveSequence, Repeat, RetryUntilSuccessful, "
        "Sequence, SubTree, Timeout; registry: MoveTo"
    )
    assert found[1].message == (
        "unknown node <Dock>: <TreeNodesModel> declares it as Action, but the registry has no "
        'class for it; add "Dock": "package.module:Class" to the registry'
    )


def test_registry_classes_that_do_not_exist(trees: Path, write: Write) -> None:
    path = write(
        "classes.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence>
              <Dock/>
              <Undock/>
            </Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    registry = {"Dock": "docking:Dock", "Undock": "docking:Undock"}
    found = problems(lambda: load_tree(str(path), registry=registry))
    assert [(p.line, p.column, p.message) for p in found] == [
        (4, 7, f"node 'Sequence/Dock': module 'docking' not found in {path.parent} or on sys.path"),
        (
            5,
            7,
            f"node 'Sequence/Undock': module 'docking' not found in {path.parent} or on sys.path",
        ),
    ]


def test_bad_attribute_values(write: Write) -> None:
    path = write(
        "values.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence>
              <Repeat num_cycles="many"><AlwaysSuccess/></Repeat>
              <Timeout msec="{limit}"><AlwaysSuccess/></Timeout>
              <RetryUntilSuccessful><AlwaysSuccess/></RetryUntilSuccessful>
              <Inverter times="2"><AlwaysSuccess/></Inverter>
              <AlwaysSuccess _skipIf="done"/>
            </Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (4, 7, "<Repeat> attribute num_cycles must be an integer, got 'many'"),
        (
            5,
            7,
            "<Timeout> attribute msec: a blackboard reference ({limit}) cannot be used here; "
            "give a value",
        ),
        (6, 7, "<RetryUntilSuccessful> needs the attribute num_attempts"),
        (7, 7, "<Inverter> has no attribute times; it accepts: name"),
        (8, 7, "attribute _skipIf of <AlwaysSuccess> is not supported"),
    ]


def test_custom_attribute_of_the_wrong_type(
    trees: Path, write: Write, robot_behaviours: Path
) -> None:
    text = (trees / "patrol.xml").read_text(encoding="utf-8")
    path = write("patrol.xml", text.replace('steps="2"', 'steps="two"'))
    problem = only_problem(lambda: load_tree(str(path), registry=REGISTRY))
    assert (problem.path, problem.line, problem.column) == (str(path), 12, 11)
    assert problem.message == "<MoveTo> attribute steps must be an integer, got 'two'"


def test_parallel_counts_without_an_equivalent(write: Write) -> None:
    path = write(
        "counts.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence>
              <Parallel success_count="2">
                <AlwaysSuccess name="a"/><AlwaysSuccess name="b"/><AlwaysSuccess name="c"/>
              </Parallel>
              <Parallel failure_count="2">
                <AlwaysSuccess name="a"/><AlwaysSuccess name="b"/>
              </Parallel>
            </Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (
            4,
            7,
            '<Parallel success_count="2"> with 3 children has no py_trees equivalent: '
            'use success_count="-1" (all children, SuccessOnAll) or "1" (SuccessOnOne)',
        ),
        (
            7,
            7,
            '<Parallel failure_count="2"> cannot be mapped: a py_trees Parallel fails as soon '
            'as one child fails (failure_count="1")',
        ),
    ]


def test_decorator_with_two_children(write: Write) -> None:
    path = write(
        "inverter.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Inverter>
              <AlwaysSuccess/>
              <AlwaysFailure/>
            </Inverter>
          </BehaviorTree>
        </root>
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (3, 5)
    assert problem.message == (
        "node 'Inverter': Inverter is a decorator and takes exactly one child, found 2"
    )


def test_unnamed_twins_are_numbered_and_named_twins_need_distinct_names(write: Write) -> None:
    path = write(
        "twins.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence name="main">
              <AlwaysSuccess/>
              <AlwaysSuccess/>
            </Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    definition = load_tree(str(path))
    assert [n.id for n in definition.nodes()] == [
        "main",
        "main/AlwaysSuccess",
        "main/AlwaysSuccess#2",  # unnamed siblings, as Groot2 writes them
    ]
    assert [n.name for n in definition.nodes()][1:] == ["AlwaysSuccess", "AlwaysSuccess"]
    named_alike = write(
        "named-twins.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <Sequence name="main">
              <AlwaysSuccess name="done"/>
              <AlwaysSuccess name="done"/>
            </Sequence>
          </BehaviorTree>
        </root>
        """,
    )
    problem = only_problem(lambda: load_tree(str(named_alike)))
    assert (problem.line, problem.column) == (5, 7)
    assert problem.message == (
        "duplicate id 'main/done' (also at line 4, column 7); "
        "give one of them a distinct `name` attribute"
    )


def test_subtree_problems(write: Write) -> None:
    path = write(
        "subtrees.xml",
        """
        <root BTCPP_format="4" main_tree_to_execute="A">
          <BehaviorTree ID="A">
            <Sequence>
              <SubTree ID="B"/>
              <SubTree ID="Nowhere"/>
            </Sequence>
          </BehaviorTree>
          <BehaviorTree ID="B">
            <SubTree ID="A"/>
          </BehaviorTree>
        </root>
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (5, 7, "unknown subtree ID 'Nowhere'; the file defines: A, B"),
        (9, 5, "subtree cycle: A -> B -> A"),
    ]


def test_document_level_problems(write: Write) -> None:
    path = write(
        "document.xml",
        """
        <root BTCPP_format="3" main_tree_to_execute="Main">
          <include path="other.xml"/>
          <BehaviorTree ID="Other"><AlwaysSuccess/></BehaviorTree>
        </root>
        """,
    )
    found = problems(lambda: load_tree(str(path)))
    assert [(p.line, p.column, p.message) for p in found] == [
        (1, 1, "main_tree_to_execute names 'Main', but the file defines: Other"),
        (1, 1, 'only BTCPP_format="4" is supported, found "3"'),
        (2, 3, "unexpected <include> in <root>: expected <BehaviorTree> or <TreeNodesModel>"),
    ]


def test_behavior_tree_needs_one_root(write: Write) -> None:
    path = write(
        "two_roots.xml",
        """
        <root BTCPP_format="4">
          <BehaviorTree ID="Main">
            <AlwaysSuccess/>
            <AlwaysFailure/>
          </BehaviorTree>
        </root>
        """,
    )
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column) == (2, 3)
    assert problem.message == '<BehaviorTree ID="Main"> must hold exactly one root node, found 2'


def test_blackboard_reference_helpers() -> None:
    assert is_blackboard_reference("{goal}")
    assert is_blackboard_reference("{=}")
    assert not is_blackboard_reference("goal")
    assert not is_blackboard_reference("{a}{b}")
    assert not is_blackboard_reference(3)
    assert blackboard_key("{ nested/key }") == "nested/key"
