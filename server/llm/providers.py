"""Choosing the language model a workflow's agents call.

``offline`` (the default) answers from the workflow's fixture file and needs nothing else;
``anthropic`` calls Anthropic's Messages API with the key in ``ANTHROPIC_API_KEY``. Users pick
one with ``CANOPY_LLM_PROVIDER``, which :func:`configured_model` reads. Agents run in debug
pods, whose environment is scrubbed, so the server hands pods the variables of
:data:`MODEL_VARIABLES` it has (:func:`model_environment`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from canopy.bridge import InvalidArgument

from .model import LanguageModel
from .offline import OfflineModel

__all__ = [
    "MODEL_VARIABLES",
    "PROVIDERS",
    "PROVIDER_VARIABLE",
    "TIMEOUT_VARIABLE",
    "configured_model",
    "model_environment",
    "open_model",
]

PROVIDERS: Final = ("offline", "anthropic")
PROVIDER_VARIABLE: Final = "CANOPY_LLM_PROVIDER"
"""Which provider a workflow's agents call: one of :data:`PROVIDERS`, ``offline`` if unset."""
TIMEOUT_VARIABLE: Final = "CANOPY_LLM_TIMEOUT"
"""Seconds a model call may take in all (default: the provider's own deadline)."""
MODEL_VARIABLES: Final = (
    PROVIDER_VARIABLE,
    TIMEOUT_VARIABLE,
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
)
"""What a pod needs of the server's environment to call the model its user chose."""


def open_model(
    provider: str,
    *,
    fixtures: Path | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> LanguageModel:
    """The model of ``provider``; InvalidArgument naming what is missing or unknown.

    ``fixtures`` is the offline model's file; ``environ`` holds the Anthropic key and base URL
    (the process's environment when None); ``timeout`` is each call's deadline in seconds
    (None: the provider's default)."""
    if provider == "offline":
        if fixtures is None:
            raise InvalidArgument("the offline model needs a fixture file (model fixtures)")
        return OfflineModel(fixtures)
    if provider == "anthropic":
        # Imported here: the SDK takes seconds to import, which a server or a pod that never
        # calls Anthropic should not pay.
        from .anthropic_model import DEFAULT_TIMEOUT, AnthropicModel

        return AnthropicModel.from_environment(
            os.environ if environ is None else environ,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        )
    raise InvalidArgument(f"unknown model provider {provider!r}; expected one of {PROVIDERS}")


def configured_model(environ: Mapping[str, str], fixtures: Path | None = None) -> LanguageModel:
    """The model the user chose in ``environ`` (``CANOPY_LLM_PROVIDER``, ``CANOPY_LLM_TIMEOUT``
    and the provider's own variables); InvalidArgument names a bad variable."""
    provider = environ.get(PROVIDER_VARIABLE) or "offline"
    if provider not in PROVIDERS:
        raise InvalidArgument(
            f"{PROVIDER_VARIABLE}={provider!r} is not a model provider; expected one of "
            f"{', '.join(PROVIDERS)}"
        )
    return open_model(provider, fixtures=fixtures, environ=environ, timeout=_timeout(environ))


def model_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of :data:`MODEL_VARIABLES` that ``environ`` sets, for a pod's worker."""
    return {name: environ[name] for name in MODEL_VARIABLES if environ.get(name)}


def _timeout(environ: Mapping[str, str]) -> float | None:
    raw = environ.get(TIMEOUT_VARIABLE)
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidArgument(f"{TIMEOUT_VARIABLE}={raw!r}: expected a number of seconds > 0")
    return seconds
