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

__all__ = [
    "LanguageModel",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ToolCall",
    "ToolSpec",
    "Usage",
]
