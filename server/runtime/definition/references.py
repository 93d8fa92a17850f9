"""Blackboard references in BehaviorTree.CPP port values: ``{key}`` means "the blackboard entry
``key``", anything else is a literal. The loaders keep references as strings in params, so the
engine (or a behaviour) can tell them apart with these helpers."""

from __future__ import annotations

import re
from typing import Any

_REFERENCE = re.compile(r"^\{\s*([^{}\s][^{}]*?)\s*\}$")


def is_blackboard_reference(value: Any) -> bool:
    """Whether ``value`` is a ``{key}`` blackboard reference (``{=}`` included)."""
    return isinstance(value, str) and _REFERENCE.match(value) is not None


def blackboard_key(value: str) -> str:
    """The key a reference names: ``"{goal}"`` -> ``"goal"``; ValueError for a literal."""
    match = _REFERENCE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a blackboard reference '{{key}}'")
    return match.group(1)
