"""Document symbols: the tree's nodes as written, nested, each spanning its block."""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import PATROL, open_document


def shape(symbols: list[Any]) -> list[Any]:
    """Name, kind, detail, first and last line of each symbol, and those of its children."""
    return [
        (s.name, s.kind, s.detail, s.range.start.line, s.range.end.line, shape(s.children or []))
        for s in symbols
    ]


async def symbols(client: LanguageClient, name: str) -> list[Any]:
    address = open_document(client, PATROL / name)
    found = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=address))
    )
    assert found is not None
    return list(found)


async def test_the_outline_of_the_yaml_patrol(client: LanguageClient) -> None:
    found = await symbols(client, "patrol.yaml")
    Class, Function = types.SymbolKind.Class, types.SymbolKind.Function
    assert shape(found) == [
        ("patrol", Class, "Repeat", 9, 29, [
            ("round", Class, "Sequence", 14, 29, [
                ("check_battery", Function, "robot:CheckBattery", 19, 22, []),
                ("move", Function, "robot:MoveTo", 23, 27, []),
                ("scan", Function, "robot:Scan", 28, 29, []),
            ]),
        ]),
    ]  # fmt: skip
    scan = found[0].children[0].children[2]
    assert scan.selection_range.start == types.Position(line=28, character=8)
    assert scan.range.end == types.Position(line=29, character=len("        name: scan"))


async def test_the_outline_of_the_groot2_patrol(client: LanguageClient) -> None:
    found = await symbols(client, "patrol.xml")
    Class, Function = types.SymbolKind.Class, types.SymbolKind.Function
    assert shape(found) == [
        ("patrol", types.SymbolKind.Module, "BehaviorTree", 4, 12, [
            ("patrol", Class, "Repeat", 5, 11, [
                ("round", Class, "Sequence", 6, 10, [
                    ("check_battery", Function, "CheckBattery", 7, 7, []),
                    ("move", Function, "MoveTo", 8, 8, []),
                    ("scan", Function, "Scan", 9, 9, []),
                ]),
            ]),
        ]),
    ]  # fmt: skip
    scan = found[0].children[0].children[0].children[2]
    assert scan.selection_range.start == types.Position(line=9, character=8)
    assert scan.selection_range.end == types.Position(line=9, character=13)  # <Scan
