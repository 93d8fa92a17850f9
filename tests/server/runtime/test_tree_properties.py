"""Property tests of tree loading: any bytes, any text and any tree-shaped document, in each
format (YAML, JSON, Groot2 XML), from a file or as an upload's content, either load as a tree
or are refused with a ``DefinitionError`` whose every problem has a file, line and column;
never another exception. (A hang would be stopped by the suite's per-test timeout.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from canopy.server.runtime.definition import (
    FILE_BUILTINS,
    DefinitionError,
    TreeDefinition,
    load_tree,
)
from canopy.server.trees import check_definition

from ...jsonvalues import deep, texts, values

SUFFIXES = (".yaml", ".json", ".xml")
KINDS = st.sampled_from(FILE_BUILTINS) | st.sampled_from(
    ["robot_behaviours:MoveTo", "Subtree", "nope:Nope", "", "os:system"]
)
XML_TAGS = st.sampled_from(
    ["root", "BehaviorTree", "Sequence", "Fallback", "Action", "SubTree", "Retry", "MoveTo", "x"]
)


LEAF = {"name": texts, "id": texts, "params": values(max_leaves=4), "file": texts}


def node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": KINDS},
        optional={**LEAF, "children": st.lists(children, max_size=3), "child": children},
    )


nodes = st.recursive(st.fixed_dictionaries({"type": KINDS}, optional=LEAF), node, max_leaves=8)
trees = st.fixed_dictionaries(
    {"root": nodes | values(max_leaves=4)},
    optional={"name": texts, "blackboard": values(max_leaves=4)},
)


@st.composite
def xml_elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(XML_TAGS)
    attributes = draw(st.dictionaries(st.sampled_from(["ID", "name", "num_attempts", "x"]), texts))
    text = " ".join(f"{k}={quoteattr(_xml_safe(v))}" for k, v in attributes.items())
    inner = "" if depth > 3 else "".join(draw(st.lists(xml_elements(depth + 1), max_size=3)))
    return f"<{tag} {text}>{inner}</{tag}>"


def _xml_safe(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)


def _text(document: Any, suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(document)
    return yaml.safe_dump(document) if suffix == ".yaml" else document


def assert_refused_precisely(error: DefinitionError) -> None:
    assert error.problems, error
    for problem in error.problems:
        assert problem.path, problem
        assert min(problem.line, problem.column) >= 1, problem
        assert problem.message, problem


def load(path: Path) -> None:
    try:
        assert isinstance(load_tree(str(path)), TreeDefinition)
    except DefinitionError as error:
        assert_refused_precisely(error)


@settings(max_examples=150)
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=300))
def test_any_bytes_in_a_tree_file(tmp_path: Path, suffix: str, data: bytes) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    load(path)


@settings(max_examples=200)
@given(
    suffix=st.sampled_from(SUFFIXES),
    document=trees | deep() | values() | xml_elements() | st.text(max_size=200),
)
def test_any_tree_shaped_document(tmp_path: Path, suffix: str, document: Any) -> None:
    try:
        text = _text(document, suffix) if suffix != ".xml" or isinstance(document, str) else ""
        encoded = text.encode("utf-8")
    except (UnicodeEncodeError, yaml.YAMLError):
        return  # no file can hold it (a lone surrogate)
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(encoded)
    load(path)
    try:
        check_definition("fuzz", suffix[1:], text)
    except DefinitionError as error:
        assert_refused_precisely(error)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_the_shipped_trees_still_load(suffix: str) -> None:
    """The generators above reach real trees too: the shipped examples load."""
    trees_dir = Path(__file__).parent / "trees"
    for path in sorted(trees_dir.glob(f"*{suffix}")):
        assert isinstance(load_tree(str(path), registry=XML_REGISTRY), TreeDefinition)


XML_REGISTRY = {
    "BatteryLow": "robot_behaviours:BatteryLow",
    "MoveTo": "robot_behaviours:MoveTo",
    "Recharge": "robot_behaviours:Recharge",
}
