"""The offline model's own contract: a request without a fixture names what to add, and a
fixture file that cannot be used is refused with where it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.server.llm import ModelRequest
from canopy.server.llm.offline import FixtureError, MissingFixture, OfflineModel

FINGERPRINT = "sha256:" + "ab" * 32


async def test_a_missing_fixture_names_the_fingerprint_and_the_prompt(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures.yaml"
    fixtures.write_text("responses: {}\n", encoding="utf-8")
    request = ModelRequest(
        model="claude-haiku-4-5",
        messages=(
            {"role": "user", "content": "an earlier question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": [{"type": "text", "text": "Route ticket 4411, please"}]},
        ),
    )
    model = OfflineModel(fixtures)
    with pytest.raises(MissingFixture) as raised:
        await model.complete(request)
    missing = raised.value
    assert (missing.fingerprint, missing.prompt) == (
        request.fingerprint(),
        "Route ticket 4411, please",
    )
    assert f"responses['{request.fingerprint()}']" in missing.reason
    assert "'Route ticket 4411, please'" in missing.reason
    assert str(fixtures) in missing.reason
    assert not missing.retryable
    assert model.calls == 1


async def test_a_long_prompt_is_cut_in_the_message(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text('{"responses": {}}', encoding="utf-8")
    request = ModelRequest(model="m", messages=({"role": "user", "content": "x" * 500},))
    with pytest.raises(MissingFixture) as raised:
        await OfflineModel(fixtures).complete(request)
    assert raised.value.prompt == "x" * 199 + "…"


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        (
            "bad-key.yaml",
            "responses:\n  route-ticket: {text: hi}\n",
            "a key must be a request fingerprint",
        ),
        ("no-table.yaml", "answers: {}\n", "expected a mapping `responses` at the top"),
        ("list.yaml", "responses: [1, 2]\n", "expected a mapping `responses` at the top"),
        ("entry.yaml", f"responses:\n  '{FINGERPRINT}': hi\n", "expected a mapping"),
        ("field.yaml", f"responses:\n  '{FINGERPRINT}': {{txt: hi}}\n", "unknown field 'txt'"),
        ("text.yaml", f"responses:\n  '{FINGERPRINT}': {{text: 3}}\n", ".text: expected a string"),
        (
            "latency.yaml",
            f"responses:\n  '{FINGERPRINT}': {{latency_ms: -5}}\n",
            ".latency_ms: expected a number ≥ 0",
        ),
        (
            "usage.yaml",
            f"responses:\n  '{FINGERPRINT}': {{usage: {{input_tokens: '12'}}}}\n",
            ".usage: expected input_tokens and output_tokens ≥ 0",
        ),
        (
            "calls.yaml",
            f"responses:\n  '{FINGERPRINT}': {{tool_calls: [{{id: c1, input: {{}}}}]}}\n",
            ".tool_calls[0]: expected id, name and an input mapping",
        ),
        (
            "alias.yaml",
            f"base: &b {{text: hi}}\nresponses:\n  '{FINGERPRINT}': *b\n",
            "is not allowed",
        ),
        ("broken.json", '{"responses": {', "malformed"),
        ("broken.yaml", "responses: {text: [\n", "malformed"),
    ],
)
def test_a_malformed_fixture_file_is_refused_with_where(
    tmp_path: Path, name: str, text: str, words: str
) -> None:
    fixtures = tmp_path / name
    fixtures.write_text(text, encoding="utf-8")
    with pytest.raises(FixtureError) as raised:
        OfflineModel(fixtures)
    assert words in raised.value.reason
    assert name in raised.value.reason
    assert not raised.value.retryable


def test_a_missing_fixture_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match=r"cannot read the offline fixtures .*absent\.yaml"):
        OfflineModel(tmp_path / "absent.yaml")
