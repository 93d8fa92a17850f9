"""Completion of node types, where a tree file expects one."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import open_document


async def complete(client: LanguageClient, path: Path, text: str, line: int) -> dict[str, str]:
    """Labels and details offered at the end of ``line`` of ``text``."""
    address = open_document(client, path, text)
    column = len(text.splitlines()[line])
    found = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=address),
            position=types.Position(line=line, character=column),
        )
    )
    assert isinstance(found, types.CompletionList)
    return {item.label: item.detail or "" for item in found.items}


async def test_yaml_types_are_built_ins_agents_and_classes_beside_the_tree(
    client: LanguageClient, workspace: Path
) -> None:
    text = "root:\n  type: Sequence\n  children:\n    - type: rob"
    found = await complete(client, workspace / "new.yaml", text, 3)
    assert found["Sequence"] == "py_trees built-in"
    assert found["llm"] == "workflow agent"
    assert found["robot:Scan"] == "behaviour class"
    assert {"robot:CheckBattery", "robot:MoveTo", "Subtree"} <= found.keys()


async def test_the_typed_prefix_is_replaced(client: LanguageClient, workspace: Path) -> None:
    text = "root:\n  type: robot:Sc"
    address = open_document(client, workspace / "edit.yaml", text)
    found = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=address),
            position=types.Position(line=1, character=len("  type: robot:Sc")),
        )
    )
    assert isinstance(found, types.CompletionList)
    (scan,) = [item for item in found.items if item.label == "robot:Scan"]
    assert isinstance(scan.text_edit, types.TextEdit)
    assert scan.text_edit.range == types.Range(
        start=types.Position(line=1, character=8), end=types.Position(line=1, character=16)
    )


async def test_json_and_groot2_files_complete_their_own_types(
    client: LanguageClient, workspace: Path
) -> None:
    found = await complete(client, workspace / "tree.json", '{"root": {"type": "Se', 0)
    assert "Selector" in found
    assert "robot:MoveTo" in found
    xml = '<root BTCPP_format="4">\n  <BehaviorTree ID="t">\n    <'
    tags = await complete(client, workspace / "tree.xml", xml, 2)
    assert tags["Fallback"] == "BehaviorTree.CPP built-in"
    assert "ReactiveSequence" in tags


async def test_nothing_is_offered_where_no_type_goes(
    client: LanguageClient, workspace: Path
) -> None:
    text = "root:\n  type: Sequence\n  name: rou"
    assert await complete(client, workspace / "new.yaml", text, 2) == {}
