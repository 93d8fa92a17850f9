"""Language models behind one interface: the agents of a workflow and the incident pipeline's
reasoners call :class:`LanguageModel`, never a provider's SDK directly."""

from .model import (
    LanguageModel,
    ModelError,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolSpec,
    Usage,
)
from .providers import PROVIDERS, configured_model, open_model

__all__ = [
    "PROVIDERS",
    "LanguageModel",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "configured_model",
    "open_model",
]
