"""What every kind of node (built-in or a user's class) must answer, whatever defines it.

A kind knows its role (how many children it takes), how to check and normalise the params a
tree file gives it, and how to construct the py_trees behaviour. Loaders check with it; the
builder constructs with it; neither needs to know whether the kind is built in.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from py_trees.behaviour import Behaviour

from canopy.bridge import CanopyError

from .model import NodeSpec


class Role(enum.Enum):
    """How many children a node takes: what py_trees allows for its base class."""

    COMPOSITE = "composite"
    """Zero or more children (py_trees composites accept an empty list)."""
    DECORATOR = "decorator"
    """Exactly one child."""
    BEHAVIOUR = "behaviour"
    """A leaf: no children."""

    def child_count_error(self, kind: str, count: int) -> str | None:
        """Why ``count`` children are wrong for a ``kind`` node, or None when they are fine."""
        if self is Role.DECORATOR and count != 1:
            return f"{kind} is a decorator and takes exactly one child, found {count}"
        if self is Role.BEHAVIOUR and count:
            return f"{kind} is a behaviour (a leaf) and takes no children, found {count}"
        return None


class Kind(Protocol):
    """A node kind, resolved from the ``kind`` text of a :class:`NodeSpec`."""

    @property
    def name(self) -> str:
        """The kind as written in a definition: ``Sequence`` or ``package.module:Class``."""
        ...

    @property
    def role(self) -> Role: ...

    def normalize(
        self, params: Mapping[str, Any], children: Sequence[NodeSpec]
    ) -> tuple[dict[str, Any], list[str]]:
        """The params with defaults filled in, and what is wrong with them (empty when fine)."""
        ...

    def construct(
        self, name: str, params: Mapping[str, Any], children: Sequence[Behaviour]
    ) -> Behaviour:
        """A fresh py_trees behaviour; may raise whatever the class's constructor raises."""
        ...


class ResolutionError(CanopyError):
    """A kind could not be resolved (unknown name, missing module or class); the message says
    why, and the caller adds where."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean `x`?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""
