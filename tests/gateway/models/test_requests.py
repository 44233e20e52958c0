"""What a request asks of a model served here is honoured or refused at once (HTTP 400 naming
the field and what would work); nothing is dropped while the answer says `completed`."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_interactions._sdk import errors

TOOLS = [
    {"type": "function", "name": "add", "parameters": {"type": "object"}},
    {"type": "function", "name": "subtract", "parameters": {"type": "object"}},
]


def refusal(client: Any, **create: Any) -> str:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(input="call add {}", **create)
    return str(refused.value)


@pytest.mark.parametrize(
    ("model", "generation_config", "named"),
    [
        ("local", {"thinking_level": "high"}, "generation_config.thinking_level"),
        (
            "local",
            {"transcription_config": {"custom_vocabulary": ["Jupyter"]}},
            "generation_config.transcription_config",
        ),
        ("echo", {"speech_config": {"voice": "Kore"}}, "generation_config.speech_config"),
        ("scripted", {"thinking_level": "low"}, "generation_config.thinking_level"),
    ],
)
def test_generation_settings_a_model_cannot_honour_are_refused(
    client: Any, model: str, generation_config: dict[str, Any], named: str
) -> None:
    message = refusal(client, model=model, generation_config=generation_config)
    assert named in message and f"model {model!r}" in message


def test_a_tool_choice_the_local_model_cannot_force_is_refused(client: Any) -> None:
    message = refusal(client, model="local", tools=TOOLS, generation_config={"tool_choice": "any"})
    assert "generation_config.tool_choice 'any'" in message and "['auto', 'none']" in message


def test_json_output_with_function_tools_is_refused_for_the_local_model(client: Any) -> None:
    schema = {"type": "text", "mime_type": "application/json", "schema": {"type": "object"}}
    message = refusal(client, model="local", tools=TOOLS, response_format=schema)
    assert "response_format with function tools" in message


def test_tool_choice_none_and_allowed_tools_limit_what_the_model_may_call(client: Any) -> None:
    # echo calls a declared tool when the input says `call NAME {...}`.
    called = client.interactions.create(model="echo", input="call add {}", tools=TOOLS)
    assert called.status == "requires_action"
    none = client.interactions.create(
        model="echo", input="call add {}", tools=TOOLS, generation_config={"tool_choice": "none"}
    )
    assert none.status == "completed" and none.output_text == "call add {}"
    only_subtract = {"allowed_tools": {"mode": "auto", "tools": ["subtract"]}}
    narrowed = client.interactions.create(
        model="echo",
        input="call add {}",
        tools=TOOLS,
        generation_config={"tool_choice": only_subtract},
    )
    assert narrowed.status == "completed"  # add was not offered, so it could not be called
    unknown = {"allowed_tools": {"tools": ["multiply"]}}
    message = refusal(client, model="echo", tools=TOOLS, generation_config={"tool_choice": unknown})
    assert "multiply" in message


def test_stop_sequences_and_the_output_cap_hold_for_deterministic_models(client: Any) -> None:
    stopped = client.interactions.create(
        model="echo", input="one two. three four", generation_config={"stop_sequences": ["."]}
    )
    assert stopped.status == "completed" and stopped.output_text == "one two"
    capped = client.interactions.create(
        model="echo", input="one two three", generation_config={"max_output_tokens": 1}
    )
    assert capped.status == "incomplete" and capped.output_text == "one "


@pytest.mark.slow
def test_the_local_models_output_cap_ends_the_turn_incomplete(client: Any) -> None:
    interaction = client.interactions.create(
        model="local",
        input="Write a paragraph about why notebooks are useful for data science.",
        generation_config={"max_output_tokens": 12},
    )
    assert interaction.status == "incomplete"
    assert interaction.usage.total_output_tokens == 12
    assert interaction.output_text.strip()


@pytest.mark.slow
def test_a_configured_default_cap_bounds_a_turn_that_sets_none(gateway_factory: Any) -> None:
    gateway = gateway_factory(models={"terse": {"adapter": "local", "max_output_tokens": 7}})
    client = gateway.client()
    try:
        interaction = client.interactions.create(
            model="terse", input="Write a paragraph about why notebooks are useful."
        )
    finally:
        client.close()
    assert interaction.status == "incomplete"
    assert interaction.usage.total_output_tokens == 7


@pytest.mark.parametrize(
    "choice", ["none", "any", {"allowed_tools": {"mode": "auto", "tools": ["subtract"]}}]
)
def test_a_tool_choice_beside_tools_run_here_is_refused_not_ignored(
    client: Any, choice: Any
) -> None:
    """With code_execution among the tools, a model call runs in the gateway's tool loop,
    where the model always chooses for itself: a choice that says otherwise is refused,
    where it used to be dropped (echo called `add` although the choice was "none")."""
    tools = [{"type": "code_execution"}, *TOOLS]
    message = refusal(client, model="echo", tools=tools, generation_config={"tool_choice": choice})
    assert "generation_config.tool_choice" in message and "code_execution" in message
    auto = client.interactions.create(
        model="echo", input="call add {}", tools=tools, generation_config={"tool_choice": "auto"}
    )
    assert auto.status == "requires_action"
