"""What was wrong with a tree definition, and where.

Every loader collects :class:`Problem` values instead of stopping at the first one, so a user
fixing a tree file sees all of its unknown classes or duplicate ids at once; the editor, the
debug adapter and the CLI all render the same ``file:line:column: message`` lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from canopy.bridge import CanopyError

from .model import SourceLocation


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a definition; ``line`` and ``column`` are 1-based."""

    path: str
    line: int
    column: int
    message: str

    @classmethod
    def at(cls, where: SourceLocation, message: str) -> Problem:
        """A problem at a node's (or any other) source location."""
        return cls(where.path, where.line, where.column, message)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class DefinitionError(CanopyError):
    """A tree could not be loaded or built; ``problems`` says every reason found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems))
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def details(self) -> dict[str, Any]:
        return {"problems": [asdict(problem) for problem in self.problems]}

    @classmethod
    def rebuild(cls, message: str, details: Mapping[str, Any]) -> DefinitionError:
        return cls(
            Problem(p["path"], p["line"], p["column"], p["message"])
            for p in details.get("problems", ())
        )


def raise_if_any(problems: Iterable[Problem]) -> None:
    """Raise :class:`DefinitionError` when ``problems`` is not empty."""
    found = list(problems)
    if found:
        raise DefinitionError(found)
