"""Canopy's JSON Schemas, packaged with the code so every process validates against the same files.

The schemas are the single source of truth for formats: the Python packages and the VS Code
extension read them; nothing here knows about the code that uses them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["event_type_schemas", "load"]


@cache
def load(name: str) -> dict[str, Any]:
    """The schema file ``name``, e.g. ``"event.schema.json"`` or ``"events/TickStarted.json"``."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def event_type_schemas() -> dict[str, dict[str, Any]]:
    """Payload schema of every known event type, keyed by type name.

    A type exists exactly when ``schemas/events/<Type>.json`` exists; each declares the topic its
    events belong to in ``x-topic``.
    """
    folder = resources.files(__name__).joinpath("events")
    return {
        entry.name.removesuffix(".json"): json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }
