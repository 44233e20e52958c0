"""Text generation and conversations, as documented (the Interactions API overview and
Google's Python samples). Only base_url and the model name change (`gemini-3.6-flash` ->
`local`, the real SmolLM2, where speed allows; else `echo`, or `transcript`, a test model
that answers with the messages it was given).
"""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_interactions._sdk import errors


def test_simple_text_with_the_local_model(client: Any) -> None:
    interaction = client.interactions.create(
        model="local",
        input="Explain how AI works in a few words",
        generation_config={"max_output_tokens": 48},  # a short answer on a shared 2-core CI
    )
    print(interaction.output_text)
    assert interaction.status in ("completed", "incomplete")
    assert interaction.output_text.strip()
    assert interaction.usage.total_output_tokens > 0


def test_hello(client: Any) -> None:
    interaction = client.interactions.create(model="echo", input="Hello, how are you?")
    print(interaction.output_text)
    assert interaction.output_text == "Hello, how are you?"


def test_multi_turn_as_a_list_of_steps(client: Any) -> None:
    response = client.interactions.create(
        model="transcript",
        input=[
            {"type": "user_input", "content": [{"type": "text", "text": "Hello!"}]},
            {
                "type": "model_output",
                "content": [{"type": "text", "text": "Hi there! How can I help you today?"}],
            },
            {
                "type": "user_input",
                "content": [{"type": "text", "text": "What is the capital of France?"}],
            },
        ],
    )
    print(response.output_text)
    assert response.output_text == (
        "user:Hello! | assistant:Hi there! How can I help you today? | "
        "user:What is the capital of France?"
    )


def test_multi_turn_with_previous_interaction_id(client: Any) -> None:
    interaction1 = client.interactions.create(model="transcript", input="Hi, my name is Phil.")
    interaction2 = client.interactions.create(
        model="transcript",
        input="What is my name?",
        previous_interaction_id=interaction1.id,
    )
    print(interaction2.output_text)
    assert interaction2.output_text.startswith("user:Hi, my name is Phil. | assistant:")
    assert interaction2.output_text.endswith("user:What is my name?")


def test_system_instruction(client: Any) -> None:
    interaction = client.interactions.create(
        model="transcript",
        system_instruction="You are a cat. Your name is Neko.",
        input="Hello there",
    )
    assert interaction.status == "completed"


def test_get_and_delete(client: Any) -> None:
    created = client.interactions.create(model="echo", input="Say hello.")
    interaction = client.interactions.get(id=created.id)
    print(interaction.status)
    assert interaction.status == "completed"

    client.interactions.delete(id=created.id)
    print("Interaction deleted successfully.")
    with pytest.raises(errors.NotFoundError):
        client.interactions.get(id=created.id)


def test_background_and_cancel(client: Any) -> None:
    created = client.interactions.create(
        model="slow",  # a test model that takes its time, so there is something to cancel
        input="Write a long essay about the history of computing " * 20,
        background=True,
    )
    interaction = client.interactions.cancel(id=created.id)
    print(interaction.status)
    assert interaction.status == "cancelled"
