"""The one place where the runtime's positions become the protocol's.

The runtime counts lines and columns from 1, in characters; LSP counts from 0, in the code
units the client chose (UTF-16 unless it said otherwise), which the document's codec converts.
"""

from __future__ import annotations

import os
import re
from typing import Final

from lsprotocol import types
from pygls.uris import from_fs_path
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from canopy.server.runtime.definition import Problem, SourceLocation

from .trees import Symbol

__all__ = ["diagnostic", "document_symbol", "location"]

SOURCE: Final = "canopy"
_TOKEN: Final = re.compile(r"<?[\w.#@{}\-]+(?::[\w.]+)?|\S")
"""What a problem's position starts: a key, a node type, a tag, or one character."""


def diagnostic(problem: Problem, document: TextDocument) -> types.Diagnostic:
    """An error at the problem's key or value in ``document``; a problem found in another
    file (an included tree, ``canopy.toml``, a behaviour module) is put on the first line,
    saying where it is."""
    if _same_file(problem.path, document.path):
        start = _position(document, problem.line, problem.column)
        message = problem.message
    else:
        start = ServerTextPosition(0, 0)
        message = str(problem)
    return types.Diagnostic(
        range=document.range_to_client_units(ServerTextRange(start, _token_end(document, start))),
        message=message,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
    )


def document_symbol(symbol: Symbol, document: TextDocument) -> types.DocumentSymbol:
    """An outline entry spanning the node's block, its type as detail."""
    start = _position(document, symbol.source.line, symbol.source.column)
    last = max((symbol.source.end_line or symbol.source.line) - 1, start.line)
    last = min(last, max(len(document.lines) - 1, 0))
    end_text = document.lines[last].rstrip("\r\n") if document.lines else ""
    whole = ServerTextRange(start, ServerTextPosition(last, len(end_text)))
    if symbol.kind == "BehaviorTree":
        kind = types.SymbolKind.Module
    else:
        kind = types.SymbolKind.Function if symbol.leaf else types.SymbolKind.Class
    return types.DocumentSymbol(
        name=symbol.name,
        kind=kind,
        detail=symbol.kind,
        range=document.range_to_client_units(whole),
        selection_range=document.range_to_client_units(
            ServerTextRange(start, _token_end(document, start))
        ),
        children=[document_symbol(child, document) for child in symbol.children],
    )


def location(where: SourceLocation) -> types.Location:
    """A place in a file that may not be open (a behaviour class): its line and column."""
    position = types.Position(line=where.line - 1, character=where.column - 1)
    return types.Location(
        uri=from_fs_path(where.path) or where.path,
        range=types.Range(start=position, end=position),
    )


def _position(document: TextDocument, line: int, column: int) -> ServerTextPosition:
    """The 0-based position of a 1-based line and column, kept inside the document."""
    row = min(max(line - 1, 0), max(len(document.lines) - 1, 0))
    text = document.lines[row].rstrip("\r\n") if document.lines else ""
    return ServerTextPosition(row, min(max(column - 1, 0), len(text)))


def _token_end(document: TextDocument, start: ServerTextPosition) -> ServerTextPosition:
    """The end of the key, type or tag that starts at ``start`` (``start`` at a line's end)."""
    line = document.lines[start.line] if start.line < len(document.lines) else ""
    token = _TOKEN.match(line, start.character)
    return ServerTextPosition(start.line, token.end() if token else start.character)


def _same_file(path: str, other: str | None) -> bool:
    if other is None or "\0" in path:
        return False
    return os.path.realpath(path) == os.path.realpath(other)
