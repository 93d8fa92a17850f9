"""The format-independent parts: looking nodes up by id and by line (what breakpoints use),
rendering problems, choosing a loader, and the runtime's import boundary."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from canopy.server.runtime.definition import DefinitionError, Problem, TreeDefinition, load_tree

from ...test_layers import imports_of
from .conftest import REGISTRY
from .helpers import at_line, node, only_problem

Write = Callable[[str, str], Path]

RUNTIME = Path(__file__).resolve().parents[3] / "server" / "runtime"


@pytest.fixture
def patrol(trees: Path) -> TreeDefinition:
    return load_tree("patrol.yaml", base_dir=trees)


def test_node_by_id(patrol: TreeDefinition) -> None:
    assert node(patrol, "patrol/route/limit_b").kind == "Timeout"
    assert patrol.node("patrol/nowhere") is None


def test_nodes_are_in_pre_order(patrol: TreeDefinition) -> None:
    assert [n.name for n in patrol.nodes()][:4] == [
        "patrol",
        "recharge_if_low",
        "battery_low",
        "recharge",
    ]


def test_breakpoint_lines(trees: Path, patrol: TreeDefinition) -> None:
    path = str(trees / "patrol.yaml")
    assert patrol.breakpoint_lines(path) == (7, 10, 13, 17, 19, 24, 29, 34, 39, 43, 46)
    assert patrol.breakpoint_lines(str(trees / "other.yaml")) == ()


def test_breakpoint_lines_of_a_range_are_where_its_lines_bind(
    trees: Path, patrol: TreeDefinition
) -> None:
    path = str(trees / "patrol.yaml")
    assert patrol.breakpoint_lines(path, 26, 26) == (24,)  # retry_a's params: retry_a
    assert patrol.breakpoint_lines(path, 20, 30) == (19, 24, 29)
    assert patrol.breakpoint_lines(path, 48, 60) == ()  # past the last node


def test_breakpoint_lines_of_hostile_arguments(trees: Path, patrol: TreeDefinition) -> None:
    """A range from far below line 1 is the range from line 1 (not a loop over 10**18 lines),
    and a path with a NUL byte names no file (rather than failing in ``realpath``)."""
    path = str(trees / "patrol.yaml")
    assert patrol.breakpoint_lines(path, -(10**18), 10) == patrol.breakpoint_lines(path, 1, 10)
    assert patrol.breakpoint_lines(path + "\0") == ()
    assert patrol.nodes_at_line("\0", 1) == ()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (1, "patrol"),  # a comment before the root: the root
        (7, "patrol"),
        (8, "patrol"),  # the root's name: line
        (9, "patrol"),  # the root's children: line
        (11, "patrol/recharge_if_low"),
        (14, "patrol/recharge_if_low/battery_low"),  # its name: line
        (16, "patrol/recharge_if_low/battery_low"),  # inside its params
        (18, "patrol/recharge_if_low/recharge"),
        (22, "patrol/route"),
        (28, "patrol/route/retry_a"),  # its child: line
        (33, "patrol/route/retry_a/go_to_a"),
        (46, "patrol/route/not_failed/failed"),
        (47, "patrol/route/not_failed/failed"),  # the last node's name: line
        (48, None),  # past the last node
    ],
)
def test_node_at_line(trees: Path, patrol: TreeDefinition, line: int, expected: str | None) -> None:
    assert at_line(patrol, str(trees / "patrol.yaml"), line) == expected


def test_lines_match_relative_and_symlinked_spellings(
    trees: Path, patrol: TreeDefinition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "linked.yaml"
    link.symlink_to(trees / "patrol.yaml")
    assert at_line(patrol, str(link), 19) == "patrol/route"
    monkeypatch.chdir(trees)
    assert at_line(patrol, "patrol.yaml", 19) == "patrol/route"


def test_a_line_of_an_included_file_hits_every_inclusion(trees: Path) -> None:
    mission = load_tree("mission.yaml", base_dir=trees)
    dock = str(trees / "parts" / "dock.yaml")
    assert [n.id for n in mission.nodes_at_line(dock, 17)] == [  # the dock node's params
        "mission/dock/dock",
        "mission/dock_again/dock",
    ]
    assert at_line(mission, dock, 17) == "mission/dock/dock"
    assert mission.breakpoint_lines(dock) == (6, 9, 15)


def test_problems_render_as_file_line_column_message() -> None:
    error = DefinitionError(
        [
            Problem("b.yaml", 3, 1, "second"),
            Problem("a.yaml", 9, 2, "first"),
            Problem("b.yaml", 3, 1, "second"),  # the same problem found twice is one problem
        ]
    )
    assert str(error) == "a.yaml:9:2: first\nb.yaml:3:1: second"
    assert [str(p) for p in error.problems] == ["a.yaml:9:2: first", "b.yaml:3:1: second"]


def test_a_line_of_a_json_node_binds_to_that_node(trees: Path, write: Write) -> None:
    blink = load_tree("blink.json", base_dir=trees)
    path = str(trees / "blink.json")
    assert at_line(blink, path, 6) == "blink"  # the root's "name" key
    assert at_line(blink, path, 7) == "blink"  # its "params"
    assert at_line(blink, path, 9) == "blink/led"
    assert at_line(blink, path, 11) == "blink"  # the closing bracket of its children
    assert at_line(blink, path, 13) is None
    spread = write(
        "spread.json",
        """
        {"root": {
          "type": "Sequence",
          "children": [
            {
              "type": "Success",
              "name": "first"
            },

            {"type": "Running", "name": "second"}
          ]
        }}
        """,
    )
    definition = load_tree(str(spread))
    assert [at_line(definition, str(spread), line) for line in (6, 7, 8, 9)] == [
        "Sequence/first",  # its "name" key
        "Sequence/first",  # its closing brace
        "Sequence",  # a blank line between children: inside the parent's block
        "Sequence/second",
    ]


def test_load_tree_dispatches_on_the_reference(trees: Path) -> None:
    assert load_tree("patrol.yaml", base_dir=trees).format == "yaml"
    assert load_tree("blink.json", base_dir=trees).format == "json"
    assert load_tree("patrol.xml", base_dir=trees, registry=REGISTRY).format == "xml"
    assert load_tree("patrol_factory.py:create_echo", base_dir=trees).format == "python"


def test_load_tree_defaults_to_the_current_directory(
    trees: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(trees)
    assert load_tree("patrol.yaml").path == str(trees / "patrol.yaml")


def test_missing_tree_file(tmp_path: Path) -> None:
    problem = only_problem(lambda: load_tree("trees/gone.yaml", base_dir=tmp_path))
    assert str(problem) == f"{tmp_path}/trees/gone.yaml:1:1: tree file not found"


def test_a_tree_file_loads_from_the_text_an_editor_holds(tmp_path: Path) -> None:
    """The text wins over the disk, and the file need not exist yet."""
    tree = tmp_path / "draft.yaml"
    tree.write_text("root:\n  type: Failure\n")
    draft = load_tree(str(tree), text="root:\n  type: Success\n  name: ok\n")
    assert (draft.root.kind, draft.root.source.line) == ("Success", 2)
    unsaved = tmp_path / "unsaved.xml"
    xml = (
        '<root BTCPP_format="4">\n<BehaviorTree ID="t">\n<AlwaysSuccess/>\n</BehaviorTree>\n</root>'
    )
    assert load_tree(str(unsaved), text=xml).root.source.line == 3
    problem = only_problem(lambda: load_tree(str(unsaved), text="<root>"))
    assert (problem.line, problem.message) == (1, "malformed XML: no element found")


def test_unsupported_reference(tmp_path: Path) -> None:
    problem = only_problem(lambda: load_tree("notes.txt", base_dir=tmp_path))
    assert (problem.path, problem.line, problem.column) == ("notes.txt", 1, 1)
    assert problem.message == (
        "cannot load 'notes.txt': expected a tree file (.yaml, .yml, .json, .xml) "
        "or a Python factory 'module:function' / 'file.py:function'"
    )


def test_non_utf8_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"root:\n  type: Success\n  name: caf\xe9\n")
    problem = only_problem(lambda: load_tree(str(path)))
    assert (problem.line, problem.column, problem.message) == (3, 12, "the file is not UTF-8 text")


def test_loading_leaves_sys_path_as_it_was(trees: Path, write: Write) -> None:
    before = list(sys.path)
    load_tree("patrol.yaml", base_dir=trees)
    load_tree("patrol.xml", base_dir=trees, registry=REGISTRY)
    load_tree("patrol_factory.py:create_patrol", base_dir=trees)
    broken = write("broken.yaml", "root:\n  type: missing_module:Thing\n")
    with pytest.raises(DefinitionError):
        load_tree(str(broken))
    assert sys.path == before


def test_a_module_of_the_same_name_elsewhere_is_not_used_silently(
    trees: Path, write: Write
) -> None:
    load_tree("patrol.yaml", base_dir=trees)  # imports trees/robot_behaviours.py
    write("robot_behaviours.py", "import py_trees\n")
    path = write("mine.yaml", "root:\n  type: robot_behaviours:BatteryLow\n")
    problem = only_problem(lambda: load_tree(str(path)))
    assert problem.message == (
        f"node 'BatteryLow': module 'robot_behaviours' was already imported from "
        f"{trees / 'robot_behaviours.py'}, so {path.parent / 'robot_behaviours.py'} is not used; "
        "rename one of them"
    )


def test_the_runtime_imports_no_protocol_or_web_framework() -> None:
    banned = ("aiohttp", "click", "dap", "lsp")
    found = [
        f"{path.relative_to(RUNTIME)} imports {name}"
        for path in sorted(RUNTIME.rglob("*.py"))
        for name in sorted(imports_of(path))
        if name.split(".")[0] in banned
    ]
    assert found == []


def test_paths_are_absolute_but_not_resolved(trees: Path, tmp_path: Path) -> None:
    """Editors send the path the user opened; a symlinked folder must keep its spelling."""
    link = tmp_path / "linked_trees"
    link.symlink_to(trees, target_is_directory=True)
    definition = load_tree("patrol.yaml", base_dir=link)
    assert definition.path == os.path.join(str(link), "patrol.yaml")
    assert definition.root.source.path == definition.path
