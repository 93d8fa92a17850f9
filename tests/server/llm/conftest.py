"""Each language model under one test suite: a :class:`Harness` scripts an answer the way its
model gets one (a fixture file, or the local Messages API server) and then opens the model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from canopy.server.llm import LanguageModel, ModelRequest, ToolCall, Usage
from canopy.server.llm.anthropic_model import AnthropicModel
from canopy.server.llm.offline import OfflineModel

from .messages_server import (
    USAGE,
    MessagesServer,
    Reply,
    message,
    message_events,
    serve_messages,
)

KEY = "sk-ant-test-key"


@dataclass(frozen=True)
class Answer:
    """What the model is to answer to a request. A ``slow`` answer streams its first piece
    of text, then takes its time (long enough for a test to cancel the call)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = USAGE
    stop_reason: str | None = None
    slow: bool = False


class Harness(Protocol):
    name: str

    def answer(self, request: ModelRequest, answer: Answer) -> None:
        """Make the model answer ``request`` with ``answer``."""

    def model(self) -> LanguageModel:
        """The model, answering what was scripted so far."""

    async def abandoned(self) -> None:
        """Return once the provider saw a call given up mid-stream."""


class OfflineHarness:
    name = "offline"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "fixtures.yaml"
        self.responses: dict[str, dict[str, Any]] = {}

    def answer(self, request: ModelRequest, answer: Answer) -> None:
        entry: dict[str, Any] = {
            "text": answer.text,
            "usage": {
                "input_tokens": answer.usage.input_tokens,
                "output_tokens": answer.usage.output_tokens,
            },
            "tool_calls": [
                {"id": call.id, "name": call.name, "input": dict(call.input)}
                for call in answer.tool_calls
            ],
        }
        if answer.stop_reason is not None:
            entry["stop_reason"] = answer.stop_reason
        if answer.slow:
            entry["latency_ms"] = 1000 * (len(answer.text.split()) + 1)  # a piece a second
        self.responses[request.fingerprint()] = entry

    def model(self) -> LanguageModel:
        self.path.write_text(yaml.safe_dump({"responses": self.responses}), encoding="utf-8")
        return OfflineModel(self.path)

    async def abandoned(self) -> None:
        """Nothing is on the other side of an offline call."""


class AnthropicHarness:
    name = "anthropic"

    def __init__(self, server: MessagesServer) -> None:
        self.server = server
        self.opened: list[AnthropicModel] = []

    def answer(self, request: ModelRequest, answer: Answer) -> None:
        sent = message(
            answer.text,
            model=request.model,
            tool_calls=answer.tool_calls,
            usage=answer.usage,
            stop_reason=answer.stop_reason,
        )
        hold = None
        if answer.slow:  # through the first piece of text, then hold the stream open
            names = [name for name, _ in message_events(sent)]
            hold = names.index("content_block_delta") + 1
        self.server.script(request, Reply(message=sent, hold_after=hold))

    def model(self) -> LanguageModel:
        model = AnthropicModel(api_key=KEY, base_url=self.server.url, timeout=30)
        self.opened.append(model)
        return model

    async def abandoned(self) -> None:
        await self.server.wait_abandoned()


@pytest.fixture
async def messages() -> AsyncIterator[MessagesServer]:
    """The local Messages API server."""
    async with serve_messages() as server:
        yield server


@pytest.fixture
async def anthropic_model(messages: MessagesServer) -> AsyncIterator[AnthropicModel]:
    """An Anthropic model calling the local server."""
    model = AnthropicModel(api_key=KEY, base_url=messages.url, timeout=30)
    yield model
    await model.close()


@pytest.fixture(params=["offline", "anthropic"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """Each model in turn, to run one suite against all of them."""
    if request.param == "offline":
        yield OfflineHarness(tmp_path)
        return
    async with serve_messages() as server:
        anthropic = AnthropicHarness(server)
        yield anthropic
        for model in anthropic.opened:
            await model.close()
