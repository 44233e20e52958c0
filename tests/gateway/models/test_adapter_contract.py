"""One conformance suite for every adapter in this folder: the `Model.stream` contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from adapter_checks import LLAMA_KEY, assert_contract, collect

from jupyter_interactions.errors import ConfigError
from jupyter_interactions.gateway.models import ModelRegistry
from jupyter_interactions.gateway.models.base import (
    Finish,
    Message,
    Model,
    ModelRequest,
    TextDelta,
    Usage,
)
from jupyter_interactions.gateway.models.echo import EchoModel
from jupyter_interactions.gateway.models.llamacpp import LlamaCppModel
from jupyter_interactions.gateway.models.openai_compat import OpenAICompatibleModel
from jupyter_interactions.gateway.models.scripted import ScriptedModel

ADAPTERS = [
    "scripted",
    pytest.param("local", marks=pytest.mark.slow),
    pytest.param("openai", marks=pytest.mark.slow),
]


@pytest.fixture(params=ADAPTERS)
async def model(request: pytest.FixtureRequest) -> AsyncIterator[Model]:
    if request.param == "scripted":
        yield ScriptedModel(chunks=50)
    elif request.param == "local":
        yield request.getfixturevalue("local_model")  # shared per module, closed by its fixture
    else:
        server = request.getfixturevalue("llama_server")
        remote = OpenAICompatibleModel(
            "smol", base_url=f"{server.url}/v1", model="smol", api_key=LLAMA_KEY
        )
        yield remote
        await remote.aclose()


def long_request() -> ModelRequest:
    # The scripted model answers "Would run ..." with the (long) block; the real models write.
    code = "\n".join(f"print({i})" for i in range(40))
    return ModelRequest(
        (Message("user", f"Write a long essay about the history of Rome.\n```\n{code}\n```"),),
        generation={"temperature": 0, "max_output_tokens": 1000},
    )


async def test_text_then_usage_then_exactly_one_finish(model: Model) -> None:
    request = ModelRequest(
        (Message("user", "Say hello.\n```python\nprint('hello')\n```"),),
        generation={"temperature": 0, "max_output_tokens": 8},
    )
    events = await collect(model, request)
    assert_contract(events)
    assert any(isinstance(e, TextDelta) and e.text for e in events)
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 1 and usage[0].input_tokens > 0 and usage[0].output_tokens > 0
    assert events.index(usage[0]) == len(events) - 2  # reported just before Finish


async def test_cancelling_the_consumer_returns_at_once(model: Model) -> None:
    first = asyncio.Event()
    seen = []

    async def consume() -> None:
        async for event in model.stream(long_request()):
            seen.append(event)
            first.set()
            await asyncio.sleep(0.01)  # a consumer slower than the model

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()  # released by the cancel, before the model finished:
    assert not any(isinstance(e, Finish) for e in seen)
    # The model is still usable afterwards.
    events = await collect(
        model, ModelRequest((Message("user", "Hi"),), generation={"max_output_tokens": 3})
    )
    assert_contract(events)


def test_built_in_adapters_are_found_through_entry_points() -> None:
    registry = ModelRegistry()
    assert isinstance(registry.get("local"), LlamaCppModel)  # constructing it loads nothing
    assert isinstance(registry.get("scripted"), ScriptedModel)
    assert {"local", "scripted"} <= set(registry.names())
    asyncio.run(registry.aclose())


@pytest.mark.parametrize("adapter", ["echo", "scripted", "local", "openai"])
def test_every_adapter_refuses_an_option_it_does_not_take(adapter: str) -> None:
    """A misspelt option in jupyter_interactions.json is an error that names the known ones,
    for every adapter (the base checks it), not a setting silently dropped."""
    registry = ModelRegistry({"mine": {"adapter": adapter, "chunkz": 3}})
    found = registry.adapter("mine")
    assert found is not None
    with pytest.raises(ConfigError) as caught:
        registry.get("mine")
    message = str(caught.value)
    assert "unknown options ['chunkz'] under models.mine" in message
    assert f"known: {found[1].option_names()}" in message


def test_an_adapters_options_are_its_constructors_keywords() -> None:
    assert EchoModel.option_names() == ["chunks"]
    assert LlamaCppModel.option_names()[:2] == ["path", "n_ctx"]
    assert OpenAICompatibleModel.option_names() == [
        "base_url", "model", "api_key", "timeout", "headers",
    ]  # fmt: skip
