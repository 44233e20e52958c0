"""Which ids run here and which go to Google's service: what the gateway serves runs here; with
a key any other id is forwarded (not only gemini-*), and the configuration can send a name
there; without a key, an id that is not served here gets a 400 saying what to do. A second
real gateway plays Google."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from jupyter_interactions._sdk import errors
from jupyter_interactions.errors import RequestError
from jupyter_interactions.gateway.models import ModelRegistry


def refused(client: Any, model: str) -> str:
    with pytest.raises(errors.BadRequestError) as refusal:
        client.interactions.create(model=model, input="hi")
    return str(refusal.value)


def test_with_a_key_any_id_not_served_here_is_forwarded(gateway_factory: Any) -> None:
    key = "AIza" + secrets.token_urlsafe(30)
    google = gateway_factory(
        token=key,
        models={"gemma-3-test": {"adapter": "echo"}, "routed-test": {"adapter": "echo"}},
    )
    front = gateway_factory(
        env={"GEMINI_API_KEY": key},
        settings={"upstream_url": google.url, "upstream_attempts": 1},
        models={"routed-test": {"adapter": "google"}, "echo": {"adapter": "echo", "chunks": 1}},
    )
    client = front.client()
    try:
        # Not a gemini-* name, and not served by the front gateway: Google's service runs it.
        forwarded = client.interactions.create(model="gemma-3-test", input="from far away")
        assert forwarded.status == "completed" and forwarded.output_text == "from far away"
        # Configured to go to Google: forwarded although the name means nothing here.
        routed = client.interactions.create(model="routed-test", input="routed there")
        assert routed.output_text == "routed there"
        # What the front serves still runs there (its echo answers in one delta).
        local = client.interactions.create(model="echo", input="stays here")
        assert local.output_text == "stays here"
    finally:
        client.close()


def test_without_a_key_ids_not_served_here_get_a_400_that_says_what_to_do(
    gateway_factory: Any,
) -> None:
    front = gateway_factory(models={"routed-test": {"adapter": "google"}})
    client = front.client()
    try:
        routed = refused(client, "routed-test")
        assert "runs on Google's service: set GEMINI_API_KEY" in routed
        unknown = refused(client, "gemma-3-test")
        assert "unknown model 'gemma-3-test'" in unknown and "GEMINI_API_KEY" in unknown
        assert "'local'" in unknown  # the models it could use instead
        with pytest.raises(errors.BadRequestError) as agent:
            client.interactions.create(agent="someone-elses-agent", input="hi")
        assert "GEMINI_API_KEY" in str(agent.value)
    finally:
        client.close()


def test_a_misspelt_model_option_is_a_400_that_names_it_and_the_gateway_stays_up(
    gateway_factory: Any,
) -> None:
    gateway = gateway_factory(models={"terse": {"adapter": "echo", "chunk": 1}})
    client = gateway.client()
    try:
        message = refused(client, "terse")
        assert "unknown options ['chunk'] under models.terse" in message
        assert "known: ['chunks']" in message
        assert client.interactions.create(model="echo", input="still here").status == "completed"
    finally:
        client.close()


def test_adapters_that_need_settings_are_offered_only_when_configured() -> None:
    registry = ModelRegistry(
        {"qwen": {"adapter": "openai", "base_url": "http://x/v1", "model": "q"}}
    )
    assert "openai" not in registry.names() and "qwen" in registry.names()
    assert {"local", "echo", "scripted"} <= set(registry.names())
    with pytest.raises(RequestError, match="unknown model 'openai'"):
        registry.get("openai")
    assert registry.get("qwen").name == "qwen"
