"""Choosing the language model a workflow's agents call.

``offline`` (the default) answers from the workflow's fixture file and needs nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from canopy.bridge import InvalidArgument

from .model import LanguageModel
from .offline import OfflineModel

__all__ = ["PROVIDERS", "open_model"]

PROVIDERS: Final = ("offline",)


def open_model(provider: str, *, fixtures: Path | None = None) -> LanguageModel:
    """The model of ``provider``; InvalidArgument naming what is missing or unknown."""
    if provider == "offline":
        if fixtures is None:
            raise InvalidArgument("the offline model needs a fixture file (model fixtures)")
        return OfflineModel(fixtures)
    raise InvalidArgument(f"unknown model provider {provider!r}; expected one of {PROVIDERS}")
