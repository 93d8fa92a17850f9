"""Choosing the model: by name, or from the variables a user sets, which also reach pods."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.bridge import InvalidArgument
from canopy.server.app import pod_policy
from canopy.server.config import Settings
from canopy.server.llm import PROVIDERS, ModelRequest, open_model
from canopy.server.llm.anthropic_model import DEFAULT_TIMEOUT, AnthropicModel
from canopy.server.llm.offline import OfflineModel
from canopy.server.llm.providers import MODEL_VARIABLES, configured_model, model_environment

from .messages_server import MODEL, MessagesServer, reply


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    path = tmp_path / "fixtures.yaml"
    path.write_text("responses: {}\n", encoding="utf-8")
    return path


def test_the_providers_are_offline_and_anthropic() -> None:
    assert PROVIDERS == ("offline", "anthropic")
    with pytest.raises(InvalidArgument, match=r"unknown model provider 'openai'; expected one of"):
        open_model("openai")
    with pytest.raises(InvalidArgument, match="needs a fixture file"):
        open_model("offline")


async def test_open_model_anthropic_takes_the_key_and_base_url_from_the_environment() -> None:
    environ = {"ANTHROPIC_API_KEY": "sk-1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/"}
    model = open_model("anthropic", environ=environ, timeout=12.5)
    assert isinstance(model, AnthropicModel)
    assert (model.provider, model.base_url, model.timeout) == (
        "anthropic",
        "http://127.0.0.1:9/",
        12.5,
    )
    await model.close()
    with pytest.raises(InvalidArgument, match="needs an API key: set ANTHROPIC_API_KEY"):
        open_model("anthropic", environ={"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/"})


async def test_the_configured_model_is_offline_unless_the_user_chose(
    fixtures: Path, messages: MessagesServer
) -> None:
    assert isinstance(configured_model({}, fixtures), OfflineModel)
    assert isinstance(configured_model({"CANOPY_LLM_PROVIDER": ""}, fixtures), OfflineModel)
    chosen = {
        "CANOPY_LLM_PROVIDER": "anthropic",
        "ANTHROPIC_API_KEY": "sk-2",
        "ANTHROPIC_BASE_URL": messages.url,
    }
    model = configured_model(chosen, fixtures)
    assert isinstance(model, AnthropicModel)
    assert model.timeout == DEFAULT_TIMEOUT
    request = ModelRequest(model=MODEL, messages=({"role": "user", "content": "hello"},))
    messages.script(request, reply("hi there"))
    try:
        assert (await model.complete(request)).text == "hi there"
    finally:
        await model.close()
    timed = configured_model({**chosen, "CANOPY_LLM_TIMEOUT": "45"}, fixtures)
    assert isinstance(timed, AnthropicModel)
    assert timed.timeout == 45.0
    await timed.close()


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"CANOPY_LLM_PROVIDER": "Anthropic"}, "CANOPY_LLM_PROVIDER='Anthropic' is not a model"),
        ({"CANOPY_LLM_PROVIDER": "anthropic"}, "set ANTHROPIC_API_KEY"),
        ({"CANOPY_LLM_TIMEOUT": "soon"}, "CANOPY_LLM_TIMEOUT='soon': expected a number of seconds"),
        ({"CANOPY_LLM_TIMEOUT": "0"}, "CANOPY_LLM_TIMEOUT='0': expected a number of seconds > 0"),
        ({"CANOPY_LLM_TIMEOUT": "inf"}, "CANOPY_LLM_TIMEOUT='inf'"),
    ],
)
def test_a_bad_choice_names_its_variable(
    fixtures: Path, environ: dict[str, str], words: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        configured_model(environ, fixtures)
    assert words in str(raised.value)


def test_pods_get_the_model_variables_the_server_has() -> None:
    server = {
        "CANOPY_LLM_PROVIDER": "anthropic",
        "ANTHROPIC_API_KEY": "sk-3",
        "ANTHROPIC_BASE_URL": "",
        "ANTHROPIC_ADMIN_KEY": "sk-admin",
        "CANOPY_DATABASE_URL": "postgresql://secret@db/canopy",
    }
    chosen = {"CANOPY_LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-3"}
    assert model_environment(server) == chosen
    assert set(MODEL_VARIABLES) >= set(chosen)
    worker_env = dict(pod_policy(Settings(), server).worker_env)
    assert {name: worker_env.get(name) for name in chosen} == chosen
    assert not {"ANTHROPIC_ADMIN_KEY", "ANTHROPIC_BASE_URL", "CANOPY_DATABASE_URL"} & set(
        worker_env
    )
