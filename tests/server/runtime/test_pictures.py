"""Pictures of a tree at a point of its history: DOT, JSON model and (with Graphviz) SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import pytest

from canopy.bridge import EventStore
from canopy.server.runtime import pictures
from canopy.server.runtime.history import ExecutionHistory, ExecutionState, TreeNode
from canopy.server.runtime.pictures import (
    PictureError,
    render_svg,
    to_dot,
    to_json_model,
    to_svg,
)

from .test_history import CHECK, MOVE, PATROL, ROOT, TENANT, Recording, patrol

NASTY_NAME = 'say "hi"\n<b>&amp; \\N end\\'
NASTY_ID = 'patrol/"quoted" \\ id'


def node_line(dot: str, node_id: str) -> str:
    """The DOT statement declaring ``node_id`` (ids here need no escaping)."""
    (line,) = [line for line in dot.splitlines() if line.startswith(f'  "{node_id}" [')]
    return line


def attribute(line: str, name: str) -> str:
    found = re.search(rf'\b{name}=("(?:[^"\\]|\\.)*"|[^,\]]+)', line)
    assert found, (name, line)
    return found.group(1).strip('"')


async def patrol_history(store: EventStore) -> tuple[Recording, ExecutionHistory]:
    rec = patrol()
    await rec.append(store)
    return rec, ExecutionHistory(store, TENANT, "e1")


# -- DOT ---------------------------------------------------------------------------------------


async def test_colours_follow_the_statuses(store: EventStore) -> None:
    _, history = await patrol_history(store)
    at_five = to_dot(await history.state_at_tick(5))
    assert at_five.startswith('digraph "e1" {')
    assert attribute(node_line(at_five, ROOT), "fillcolor") == pictures.COLOURS["FAILURE"][0]
    assert attribute(node_line(at_five, CHECK), "fillcolor") == pictures.COLOURS["SUCCESS"][0]
    at_four = to_dot(await history.state_at_tick(4))
    assert attribute(node_line(at_four, MOVE), "fillcolor") == pictures.COLOURS["RUNNING"][0]
    at_zero = to_dot(await history.state_at_tick(0))
    for node in (ROOT, CHECK, MOVE):
        assert attribute(node_line(at_zero, node), "fillcolor") == pictures.COLOURS["INVALID"][0]
    assert 'label="move\\nMove\\nINVALID"' in node_line(at_zero, MOVE)
    assert f'"{ROOT}" -> "{CHECK}";' in at_zero
    assert f'"{ROOT}" -> "{MOVE}";' in at_zero
    assert "penwidth=4" not in at_five  # between ticks there is no current node


async def test_the_current_node_is_highlighted(store: EventStore) -> None:
    rec, history = await patrol_history(store)
    state = await history.state_at_offset(rec.offset(f"{MOVE} RUNNING 4"))
    dot = to_dot(state)
    assert "penwidth=4" in node_line(dot, MOVE)
    assert attribute(node_line(dot, MOVE), "color") == pictures.CURRENT_BORDER
    assert "penwidth=4" not in node_line(dot, ROOT)
    assert "tick 4 (in progress)" in dot


def test_composites_decorators_and_leaves_have_distinct_shapes() -> None:
    nodes = (
        TreeNode("root", "root", "Selector"),
        TreeNode("par", "par", "Parallel", "root"),
        TreeNode("inv", "inv", "Inverter", "par"),
        TreeNode("leaf", "leaf", "pkg.mod:Check", "inv"),
        TreeNode("seq", "seq", "py_trees.composites.Sequence", "root"),
        TreeNode("sub", "sub", "SubTree", "root"),
        TreeNode("inner", "inner", "Success", "sub"),
        TreeNode("mine", "mine", "py_trees.decorators:Custom", "root"),
        TreeNode("guard", "guard", "my.lib:Guard", "mine"),
    )
    statuses = dict.fromkeys(node.id for node in nodes if node.id != "inner")
    state = ExecutionState(
        "shapes", 1, 1, {k: "SUCCESS" for k in statuses}, {}, nodes, "SUCCESS", None
    )
    dot = to_dot(state)
    shapes = {node.id: attribute(node_line(dot, node.id), "shape") for node in nodes}
    assert shapes == {
        "root": "octagon",
        "par": "parallelogram",
        "inv": "hexagon",
        "leaf": "ellipse",
        "seq": "box",
        "sub": "box3d",
        "inner": "ellipse",
        "mine": "hexagon",
        "guard": "ellipse",
    }
    # "inner" is not in the statuses: it does not exist at this point
    assert attribute(node_line(dot, "inner"), "style") == "filled,dashed"
    assert "absent" in attribute(node_line(dot, "inner"), "label")


async def test_names_are_escaped(store: EventStore) -> None:
    nodes = [
        {**PATROL[0], "name": NASTY_NAME},
        {**PATROL[1], "id": NASTY_ID, "name": "<script>alert(1)</script>"},
    ]
    rec = Recording("nasty", nodes, snapshot_every=None)
    rec.tick((NASTY_ID, "FAILURE"), (ROOT, "FAILURE"))
    await rec.append(store)
    state = await ExecutionHistory(store, TENANT, "nasty").state_at_tick(1)
    dot = to_dot(state)
    body = dot.splitlines()
    assert len(body) == 4 + 2 + 1 + 1  # header, 2 nodes, 1 edge, closing brace: no stray lines
    assert 'label="say \\"hi\\"\\n&lt;b&gt;&amp;amp; \\\\N end\\\\\\nSequence\\nFAILURE"' in dot
    assert '"patrol/\\"quoted\\" \\\\ id" [' in dot
    assert '"patrol" -> "patrol/\\"quoted\\" \\\\ id";' in dot
    assert "<script>" not in dot


# -- JSON --------------------------------------------------------------------------------------


async def test_json_model(store: EventStore) -> None:
    rec, history = await patrol_history(store)
    state = await history.state_at_offset(rec.offset(f"{MOVE} RUNNING 4"))
    model = to_json_model(state)
    assert {key: model[key] for key in ("execution_id", "tick", "in_tick", "current")} == {
        "execution_id": "e1",
        "tick": 4,
        "in_tick": True,
        "current": MOVE,
    }
    assert model["offset"] == rec.offset(f"{MOVE} RUNNING 4")
    assert model["root_status"] == "SUCCESS"
    assert model["nodes"][2] == {
        "id": MOVE,
        "name": "move",
        "kind": "robot.behaviours:Move",
        "kind_short": "Move",
        "shape": "behaviour",
        "parent": ROOT,
        "status": "RUNNING",
        "source": {"path": "trees/patrol.yaml", "line": 7, "column": 5},
    }
    assert model["nodes"][0]["parent"] is None
    assert model["nodes"][0]["shape"] == "sequence"
    assert model["edges"] == [{"from": ROOT, "to": CHECK}, {"from": ROOT, "to": MOVE}]


# -- SVG ---------------------------------------------------------------------------------------


async def test_svg_without_graphviz_says_so(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, history = await patrol_history(store)
    monkeypatch.setattr(pictures.shutil, "which", lambda name: None)
    with pytest.raises(PictureError, match="Graphviz 'dot' is not installed; DOT is available"):
        await to_svg(await history.state_at_tick(3))


@pytest.mark.needs_dot
async def test_svg(store: EventStore) -> None:
    rec, history = await patrol_history(store)
    svg = await to_svg(await history.state_at_offset(rec.offset(f"{MOVE} RUNNING 4")))
    root = ElementTree.fromstring(svg)
    texts = [element.text for element in root.iter("{http://www.w3.org/2000/svg}text")]
    assert {"patrol", "check_battery", "move", "RUNNING", "Move"} <= set(texts)
    assert pictures.COLOURS["RUNNING"][0] in svg
    assert pictures.CURRENT_BORDER in svg


@pytest.mark.needs_dot
async def test_svg_shows_names_as_written(store: EventStore) -> None:
    nodes = [{**PATROL[0], "name": NASTY_NAME}, {**PATROL[1], "name": "<b>&lt;x&gt;</b>"}]
    rec = Recording("nasty-svg", nodes, snapshot_every=None)
    await rec.append(store)
    state = await ExecutionHistory(store, TENANT, "nasty-svg").state_at_tick(0)
    root = ElementTree.fromstring(await to_svg(state))
    texts = [element.text for element in root.iter("{http://www.w3.org/2000/svg}text")]
    assert 'say "hi"' in texts
    assert "<b>&amp; \\N end\\" in texts
    assert "<b>&lt;x&gt;</b>" in texts


@pytest.mark.needs_dot
async def test_a_failing_graphviz_is_reported() -> None:
    with pytest.raises(PictureError, match=r"Graphviz 'dot' failed \(exit \d+\)"):
        await render_svg("digraph { this is not dot")
