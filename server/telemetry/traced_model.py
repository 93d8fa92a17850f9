"""A language model whose every call is a ``chat {model}`` span.

Wrapping the model, rather than each caller, traces every call the same way whoever makes it
(agents, the incident pipeline) and whatever the provider; wrapped under the retry loop, each
attempt is a span of its own, so a retried call shows its failed attempts and their errors.
"""

from __future__ import annotations

from ..llm.costs import CostTable
from ..llm.model import LanguageModel, ModelRequest, ModelResponse, TextSink
from .genai import capture_message_content, chat_span, record_response

__all__ = ["TracedModel"]


class TracedModel:
    """A :class:`~canopy.server.llm.LanguageModel` that records each call of ``model`` as a
    client span: the request's parameters, the response's model, stop reason and tokens, the
    cost when ``costs`` prices the model, and an ERROR status with ``error.type`` when the call
    raises (a ModelError, or its cancellation). Content goes on the span only when
    ``capture_content`` (default: the environment's opt-in) says so."""

    def __init__(
        self,
        model: LanguageModel,
        *,
        costs: CostTable | None = None,
        capture_content: bool | None = None,
    ) -> None:
        self.model = model
        self.costs = costs
        self.capture_content = (
            capture_message_content() if capture_content is None else capture_content
        )

    @property
    def provider(self) -> str:
        """The wrapped model's provider."""
        return self.model.provider

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        """The wrapped model's answer to ``request``, inside a ``chat`` span."""
        with chat_span(request, self.provider, capture_content=self.capture_content) as span:
            response = await self.model.complete(request, on_text)
            if span.is_recording():
                cost = self.costs.cost(response.model, response.usage) if self.costs else None
                record_response(span, response, cost_usd=cost, capture_content=self.capture_content)
            return response

    async def close(self) -> None:
        """Close the wrapped model."""
        await self.model.close()
