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
from .providers import PROVIDERS, open_model

__all__ = [
    "PROVIDERS",
    "LanguageModel",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "open_model",
]
