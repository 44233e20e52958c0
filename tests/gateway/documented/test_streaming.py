"""Google's streaming examples (ai.google.dev/gemini-api/docs/interactions/streaming), written as
the docs write them, changing only `base_url` and the model: the documented event sequence,
text deltas, attaching to a background interaction, and resuming from an event id."""

from __future__ import annotations

from typing import Any

import pytest


def test_the_docs_streaming_example_prints_the_text(gateway: Any, capsys: Any) -> None:
    client = gateway.client()

    stream = client.interactions.create(
        model="echo",
        input="Count to from 1 to 25.",
        stream=True,
    )
    for event in stream:
        if event.event_type == "step.delta":
            if event.delta.type == "text":
                print(event.delta.text, end="", flush=True)

    assert capsys.readouterr().out == "Count to from 1 to 25."


async def test_the_documented_event_sequence(api: Any) -> None:
    """As the docs' REST transcript: created (in_progress), a status update (in_progress),
    each step as start / deltas / stop, then completed; ids in the JSON, in order."""
    events = await api.events("interactions.create", model="echo", input="one two", stream=True)
    assert [e.event_type for e in events] == [
        "interaction.created",
        "interaction.status_update",
        "step.start",
        "step.delta",
        "step.delta",
        "step.stop",
        "interaction.completed",
    ]
    created, update, start, *_, completed = events
    assert (
        created.interaction.status == "in_progress" and created.interaction.object == "interaction"
    )
    assert (update.interaction_id, update.status) == (created.interaction.id, "in_progress")
    assert start.index == 0 and start.step.type == "model_output"
    assert completed.interaction.status == "completed"
    assert completed.interaction.usage.total_tokens == 4
    assert [e.event_id for e in events] == [f"ev_{i}" for i in range(1, 8)]


async def test_attach_to_a_background_interaction_and_resume_after_a_drop(api: Any) -> None:
    started = await api.call(
        "interactions.create", model="slow", input="a b c d e f", background=True
    )
    first = await api.events("interactions.get", started.id, stream=True, limit=4)
    assert [e.event_type for e in first][:2] == ["interaction.created", "interaction.status_update"]
    rest = await api.events(
        "interactions.get", started.id, stream=True, last_event_id=first[-1].event_id
    )
    whole = first + rest
    assert [e.event_id for e in whole] == [f"ev_{i}" for i in range(1, len(whole) + 1)]
    text = "".join(e.delta.text for e in whole if e.event_type == "step.delta")
    assert text.split() == ["a", "b", "c", "d", "e", "f"]
    assert whole[-1].interaction.status == "completed"


@pytest.mark.slow
def test_the_docs_streaming_example_on_the_local_model(gateway: Any) -> None:
    client = gateway.client()
    stream = client.interactions.create(
        model="local",
        # Not counting: the local model's repeat penalty cuts a count short at temperature 0.
        input="Write a paragraph about why notebooks are useful for data science.",
        stream=True,
        generation_config={"max_output_tokens": 16, "temperature": 0},
    )
    events = list(stream)
    kinds = [e.event_type for e in events]
    assert kinds[:3] == ["interaction.created", "interaction.status_update", "step.start"]
    assert kinds[-2:] == ["step.stop", "interaction.completed"]
    assert "".join(e.delta.text for e in events if e.event_type == "step.delta").strip()
    # 16 tokens cannot hold a paragraph: the stream says it stopped early, and why.
    assert events[-1].interaction.status == "incomplete"
