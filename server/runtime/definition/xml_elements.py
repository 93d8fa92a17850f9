"""A small element tree that remembers where each element starts.

``xml.etree.ElementTree`` drops line numbers, and editors need them (breakpoints by line,
diagnostics), so elements are built here from ``xml.parsers.expat`` callbacks, which know the
position of every start and end tag. Like YAML and JSON tree files, an XML file is bounded in
size and nesting (expat itself refuses entity expansion bombs).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Final
from xml.parsers import expat

from canopy.bridge.jsondata import MAX_DEPTH

from .documents import check_size
from .model import SourceLocation
from .problems import DefinitionError, Problem


@dataclass
class Element:
    """An XML element: tag, attributes, children and where its start tag begins (1-based);
    ``source.end_line`` is the line where the element ends (its end tag, or the end of a
    self-closing start tag whose attributes span several lines)."""

    tag: str
    attributes: dict[str, str]
    source: SourceLocation
    children: list[Element] = field(default_factory=list)


_START_TAG: Final = re.compile(rb"""<[^\s/>]+(?:[^>"']|"[^"]*"|'[^']*')*>""")
"""A start tag: attribute values may hold ``>`` inside their quotes."""


def parse_xml(path: str, data: bytes) -> Element:
    """The document element of ``data``; DefinitionError at the parser's position if malformed,
    too large or nested deeper than :data:`MAX_DEPTH`."""
    check_size(path, len(data))
    parser = expat.ParserCreate()
    stack: list[Element] = []
    top: list[Element] = []

    def start(tag: str, attributes: dict[str, str]) -> None:
        line = parser.CurrentLineNumber
        # expat reports where a tag begins only; a self-closing element whose attributes span
        # several lines ends where its start tag does.
        found = _START_TAG.match(data, parser.CurrentByteIndex)
        end_line = line + (found.group().count(b"\n") if found else 0)
        where = SourceLocation(path, line, parser.CurrentColumnNumber + 1, end_line)
        if len(stack) >= MAX_DEPTH:
            message = f"nested deeper than {MAX_DEPTH} levels"
            raise DefinitionError([Problem(path, where.line, where.column, message)])
        element = Element(tag, attributes, where)
        (stack[-1].children if stack else top).append(element)
        stack.append(element)

    def end(tag: str) -> None:
        element = stack.pop()
        end_line = max(element.source.end_line or 0, parser.CurrentLineNumber)
        element.source = dataclasses.replace(element.source, end_line=end_line)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        message = f"malformed XML: {expat.errors.messages[exc.code]}"
        raise DefinitionError([Problem(path, exc.lineno, exc.offset + 1, message)]) from None
    return top[0]
