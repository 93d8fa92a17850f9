"""Diagnostics: the runtime's own loaders and schema, at the offending node or key."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import PATROL, diagnostics_of, open_document, uri


def at(diagnostic: types.Diagnostic) -> tuple[int, int]:
    return diagnostic.range.start.line, diagnostic.range.start.character


async def test_the_example_trees_are_clean(client: LanguageClient) -> None:
    assert await diagnostics_of(client, PATROL / "patrol.yaml") == []
    assert await diagnostics_of(client, PATROL / "patrol.xml") == []


async def test_a_bad_node_is_reported_at_the_node(client: LanguageClient, workspace: Path) -> None:
    tree = workspace / "patrol.yaml"
    text = tree.read_text().replace("robot:Scan", "robot:Scna").replace("steps: 2", "stepz: 2")
    found = await diagnostics_of(client, tree, text)
    assert [(at(d), d.severity, d.source) for d in found] == [
        ((23, 8), types.DiagnosticSeverity.Error, "canopy"),  # - type: robot:MoveTo
        ((28, 8), types.DiagnosticSeverity.Error, "canopy"),  # - type: robot:Scna
    ]
    assert "unknown parameter `stepz` (did you mean `steps`?)" in found[0].message
    assert "module 'robot' has no attribute 'Scna' (did you mean `Scan`?)" in found[1].message
    assert found[1].range.end == types.Position(line=28, character=12)  # the `type` key


async def test_a_schema_error_is_reported_at_its_key(
    client: LanguageClient, workspace: Path
) -> None:
    tree = workspace / "patrol.yaml"
    text = tree.read_text().replace("    name: round\n", "    nme: round\n")
    (found,) = await diagnostics_of(client, tree, text)
    assert at(found) == (15, 4)
    assert found.range.end == types.Position(line=15, character=7)
    assert found.message.startswith("unexpected field `nme` (did you mean `name`?)")


async def test_malformed_yaml_is_one_precise_diagnostic(
    client: LanguageClient, workspace: Path
) -> None:
    tree = workspace / "patrol.yaml"
    text = tree.read_text().replace("    name: round\n", "    name: [round\n")
    (found,) = await diagnostics_of(client, tree, text)
    assert found.message.startswith("malformed YAML")
    assert found.range.start.line in (15, 16)


async def test_a_broken_xml_file_is_one_precise_diagnostic(
    client: LanguageClient, workspace: Path
) -> None:
    tree = workspace / "patrol.xml"
    text = tree.read_text().replace("</Sequence>", "</Sequenc>")
    (found,) = await diagnostics_of(client, tree, text)
    assert found.message == "malformed XML: mismatched tag"
    assert at(found) == (10, 8)


async def test_an_unknown_groot2_tag_is_reported_at_its_element(
    client: LanguageClient, workspace: Path
) -> None:
    tree = workspace / "patrol.xml"
    text = tree.read_text().replace('<Scan name="scan"/>', '<Scna name="scan"/>')
    # No canopy.toml maps this copy's tags: every custom tag is unknown, each at its element.
    found = await diagnostics_of(client, tree, text)
    assert [at(d) for d in found] == [(7, 8), (8, 8), (9, 8)]
    assert "Scna" in found[2].message


async def test_an_edit_that_fixes_the_file_clears_its_diagnostics(
    client: LanguageClient, workspace: Path
) -> None:
    tree = workspace / "patrol.yaml"
    good = tree.read_text()
    assert len(await diagnostics_of(client, tree, good.replace("robot:Scan", "robot:Nope"))) == 1
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri(tree), version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=good)],
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri(tree)]) == []


async def test_an_unsaved_new_file_is_checked_from_its_text(
    client: LanguageClient, workspace: Path
) -> None:
    tree = workspace / "new.yaml"  # not on the disk
    text = "root:\n  type: Sequence\n  children:\n    - type: robot:Scan\n"
    assert await diagnostics_of(client, tree, text) == []
    assert not tree.exists()
    open_document(client, workspace / "notes.txt", "not a tree")  # not a tree file: ignored


async def test_positions_are_in_the_clients_code_units(
    client: LanguageClient, workspace: Path
) -> None:
    """The runtime counts characters; VS Code counts UTF-16 units, two per tree emoji."""
    text = 'root: {name: "🌳🌳", nme: x, type: Success}\n'
    (found,) = await diagnostics_of(client, workspace / "wide.yaml", text)
    assert found.message.startswith("unexpected field `nme`")
    assert found.range == types.Range(
        start=types.Position(line=0, character=21), end=types.Position(line=0, character=24)
    )
