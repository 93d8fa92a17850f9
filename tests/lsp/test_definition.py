"""Go to definition: from a node to its behaviour's class, as the runtime resolves it."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import PATROL, diagnostics_of, line_of, uri


async def definition(client: LanguageClient, path: Path, line: int, character: int) -> object:
    return await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(path)),
            position=types.Position(line=line, character=character),
        )
    )


def class_line(name: str) -> types.Location:
    robot = PATROL / "robot.py"
    start = types.Position(line=line_of(robot, f"class {name}("), character=0)
    return types.Location(uri=uri(robot), range=types.Range(start=start, end=start))


async def test_a_yaml_node_goes_to_its_class(client: LanguageClient) -> None:
    tree = PATROL / "patrol.yaml"
    assert await diagnostics_of(client, tree) == []
    scan = line_of(tree, "robot:Scan")
    assert await definition(client, tree, scan, 20) == class_line("Scan")
    # Anywhere in the node's block: its `name:` line too.
    assert await definition(client, tree, scan + 1, 10) == class_line("Scan")
    move = line_of(tree, "robot:MoveTo")
    assert await definition(client, tree, move + 3, 10) == class_line("MoveTo")
    # A built-in kind has no class of the user's to go to.
    assert await definition(client, tree, line_of(tree, "type: Sequence"), 12) is None


async def test_a_groot2_tag_goes_to_the_class_canopy_toml_names(client: LanguageClient) -> None:
    tree = PATROL / "patrol.xml"
    assert await diagnostics_of(client, tree) == []
    line = line_of(tree, "<CheckBattery")
    assert await definition(client, tree, line, 10) == class_line("CheckBattery")


async def test_a_tree_that_does_not_load_has_no_definitions(
    client: LanguageClient, workspace: Path
) -> None:
    tree = workspace / "patrol.yaml"
    broken = tree.read_text().replace("robot:Scan", "robot:Nope")
    assert len(await diagnostics_of(client, tree, broken)) == 1
    assert await definition(client, tree, line_of(tree, "robot:MoveTo"), 12) is None
