"""Hostile or malformed input gets a diagnostic or an error answer, and the server goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from .conftest import PATROL, diagnostics_of, uri


async def still_serving(client: LanguageClient) -> None:
    """The server still checks a tree after what the test sent it."""
    assert await diagnostics_of(client, PATROL / "patrol.yaml") == []


async def test_deep_nesting_is_refused_where_it_starts(
    client: LanguageClient, workspace: Path
) -> None:
    text = "root:\n  type: Sequence\n  params: " + "[" * 5000 + "]" * 5000 + "\n"
    (found,) = await diagnostics_of(client, workspace / "deep.yaml", text)
    assert found.message.startswith("nested deeper than")
    assert found.range.start.line == 2
    xml = '<root BTCPP_format="4">' + "<Sequence>" * 3000 + "</Sequence>" * 3000 + "</root>"
    (found,) = await diagnostics_of(client, workspace / "deep.xml", xml)
    assert found.message.startswith("nested deeper than")
    await still_serving(client)


async def test_a_huge_file_is_refused_before_it_is_parsed(
    client: LanguageClient, workspace: Path
) -> None:
    text = "root:\n  type: Sequence\n" + "# padding\n" * 200_000
    (found,) = await diagnostics_of(client, workspace / "huge.yaml", text)
    assert found.message.startswith(f"the file is {len(text)} bytes, over the limit of")
    assert found.range.start == types.Position(line=0, character=0)
    symbols = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(
            text_document=types.TextDocumentIdentifier(uri=uri(workspace / "huge.yaml"))
        )
    )
    assert symbols == []
    await still_serving(client)


async def test_garbage_and_aliases_are_diagnostics(client: LanguageClient, workspace: Path) -> None:
    (found,) = await diagnostics_of(client, workspace / "nul.yaml", "root:\n  type: \x00\n")
    assert found.message == "malformed YAML: character 0x0000 is not allowed in YAML"
    assert found.range.start == types.Position(line=1, character=8)
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nroot: *b\n"
    (found,) = await diagnostics_of(client, workspace / "bomb.yaml", bomb)
    assert found.message == "an anchor (&a) is not allowed in a tree file"
    (found,) = await diagnostics_of(client, workspace / "list.json", "[1, 2")
    assert found.message.startswith("malformed JSON")
    (found,) = await diagnostics_of(client, workspace / "empty.xml", "")
    assert found.message.startswith("malformed XML: no element found")
    await still_serving(client)


async def test_a_request_on_a_missing_file_is_an_error_answer(
    client: LanguageClient, workspace: Path
) -> None:
    missing = types.TextDocumentIdentifier(uri=uri(workspace / "never-written.yaml"))
    with pytest.raises(JsonRpcException, match=r"never-written\.yaml"):
        await client.text_document_document_symbol_async(
            types.DocumentSymbolParams(text_document=missing)
        )
    await still_serving(client)
