"""The offline model: answers from a fixture file, so workflows run with no network and no key.

A fixture file (YAML or JSON) maps a request's :meth:`~.model.ModelRequest.fingerprint` to the
response to give::

    responses:
      "sha256:5f1c…":
        text: "billing"
        usage: {input_tokens: 42, output_tokens: 3}
        latency_ms: 250            # optional: how long the answer takes, for realistic runs
      "sha256:9a0e…":
        stop_reason: tool_use
        tool_calls: [{id: call_1, name: lookup_order, input: {order: "A-17"}}]

Answers are deterministic: the same request always gets the same response, streamed in the same
pieces. A request with no fixture fails with :class:`MissingFixture`, which names the
fingerprint and the prompt, so the entry to add is one copy away.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

from canopy.server.runtime.definition.documents import read_document
from canopy.server.runtime.definition.problems import DefinitionError

from .model import ModelError, ModelRequest, ModelResponse, TextSink, ToolCall, Usage

__all__ = ["FixtureError", "MissingFixture", "OfflineModel"]

_PIECE: Final = re.compile(r"\S+\s*|\s+")
"""Streamed pieces: a word and the space after it, as a real stream delivers text."""

_RESPONSE_FIELDS: Final = frozenset(
    {"text", "stop_reason", "usage", "tool_calls", "latency_ms", "model", "prompt"}
)


class FixtureError(ModelError):
    """The fixture file cannot be used (missing, malformed, or an entry of the wrong shape)."""

    fields: ClassVar[Mapping[str, str]] = {"reason": "reason"}

    def __init__(self, *, reason: str) -> None:
        super().__init__(reason=reason)


class MissingFixture(ModelError):
    """A request the fixture file has no response for."""

    fields: ClassVar[Mapping[str, str]] = {
        "fixtures": "fixtures",
        "fingerprint": "fingerprint",
        "prompt": "prompt",
    }

    def __init__(self, *, fixtures: str, fingerprint: str, prompt: str) -> None:
        self.fixtures = fixtures
        self.fingerprint = fingerprint
        self.prompt = prompt
        super().__init__(
            reason=(
                f"the offline model has no response for this request in {fixtures}: add "
                f"responses['{fingerprint}'] (prompt: {prompt!r})"
            )
        )


class OfflineModel:
    """A :class:`~.model.LanguageModel` answering from one fixture file, read once."""

    provider = "offline"

    def __init__(self, fixtures: Path) -> None:
        self.fixtures = fixtures
        self.calls = 0
        self._responses = _read_fixtures(fixtures)

    async def close(self) -> None:
        """Nothing to release: the fixture file was read once, and no connection is open."""

    async def complete(
        self, request: ModelRequest, on_text: TextSink | None = None
    ) -> ModelResponse:
        """The fixture's response for ``request``; MissingFixture when there is none."""
        self.calls += 1
        fingerprint = request.fingerprint()
        entry = self._responses.get(fingerprint)
        if entry is None:
            raise MissingFixture(
                fixtures=str(self.fixtures), fingerprint=fingerprint, prompt=_prompt(request)
            )
        response = _response(request.model, entry)
        latency = entry.get("latency_ms", 0) / 1000
        pieces = _PIECE.findall(response.text) if on_text is not None else []
        step = latency / (len(pieces) + 1)
        for piece in pieces:
            await asyncio.sleep(step)
            assert on_text is not None
            on_text(piece)
        await asyncio.sleep(step if pieces else latency)
        return response


def _read_fixtures(path: Path) -> dict[str, Mapping[str, Any]]:
    """The ``responses`` table of the file at ``path``, each entry checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FixtureError(reason=f"cannot read the offline fixtures {path}: {exc}") from None
    try:
        data = read_document(str(path), text, is_json=path.suffix == ".json").data
    except DefinitionError as exc:
        raise FixtureError(reason=f"the offline fixtures are malformed: {exc}") from None
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, dict):
        raise FixtureError(reason=f"{path}: expected a mapping `responses` at the top")
    for fingerprint, entry in responses.items():
        _check_entry(path, str(fingerprint), entry)
    return {str(key): value for key, value in responses.items()}


def _check_entry(path: Path, fingerprint: str, entry: Any) -> None:
    where = f"{path}: responses['{fingerprint}']"
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", fingerprint):
        raise FixtureError(reason=f"{where}: a key must be a request fingerprint (sha256:…)")
    if not isinstance(entry, dict):
        raise FixtureError(reason=f"{where}: expected a mapping")
    unknown = sorted(set(entry) - _RESPONSE_FIELDS)
    if unknown:
        raise FixtureError(reason=f"{where}: unknown field {unknown[0]!r}")
    if not isinstance(entry.get("text", ""), str):
        raise FixtureError(reason=f"{where}.text: expected a string")
    latency = entry.get("latency_ms", 0)
    if not isinstance(latency, int | float) or isinstance(latency, bool) or latency < 0:
        raise FixtureError(reason=f"{where}.latency_ms: expected a number ≥ 0")
    usage = entry.get("usage", {})
    if not isinstance(usage, dict) or not all(
        isinstance(usage.get(name, 0), int) and usage.get(name, 0) >= 0
        for name in ("input_tokens", "output_tokens")
    ):
        raise FixtureError(reason=f"{where}.usage: expected input_tokens and output_tokens ≥ 0")
    for index, call in enumerate(entry.get("tool_calls", [])):
        if not (
            isinstance(call, dict)
            and isinstance(call.get("id"), str)
            and isinstance(call.get("name"), str)
            and isinstance(call.get("input", {}), dict)
        ):
            message = "expected id, name and an input mapping"
            raise FixtureError(reason=f"{where}.tool_calls[{index}]: {message}")


def _response(model: str, entry: Mapping[str, Any]) -> ModelResponse:
    text = entry.get("text", "")
    calls = tuple(
        ToolCall(call["id"], call["name"], dict(call.get("input", {})))
        for call in entry.get("tool_calls", [])
    )
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.input)}
        for call in calls
    ]
    usage = entry.get("usage", {})
    return ModelResponse(
        model=entry.get("model", model),
        text=text,
        stop_reason=entry.get("stop_reason", "tool_use" if calls else "end_turn"),
        usage=Usage(usage.get("input_tokens", 0), usage.get("output_tokens", 0)),
        tool_calls=calls,
        content=tuple(content),
    )


def _prompt(request: ModelRequest, limit: int = 200) -> str:
    """The last user message's text, cut to ``limit`` characters, to recognise the request."""
    for message in reversed(request.messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            text = content
        else:
            text = " ".join(
                str(block.get("text") or block.get("content") or "")
                for block in content or ()
                if isinstance(block, Mapping)
            )
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""
