"""Function calling as the google-genai README and Google's docs write it, changing only
`base_url` and the model. The echo model calls a tool when its input reads
`call NAME {json}` (it cannot read "What is the weather ..." as a call); the rest of each
example is the docs' own: the unary loop over steps, and the streamed one that accumulates
`arguments_delta` text and watches the status updates."""

from __future__ import annotations

import json
from typing import Any

import pytest


def get_weather(location: str) -> str:
    """Gets the weather for a given location."""
    return f"The weather in {location} is sunny."


weather_tool = {
    "type": "function",
    "name": "get_weather",
    "description": "Gets the weather for a given location.",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city and state, e.g. San Francisco, CA",
            }
        },
        "required": ["location"],
    },
}
ASK = 'call get_weather {"location": "Mountain View, CA"}'


def test_the_readme_function_calling_example(gateway: Any, capsys: Any) -> None:
    client = gateway.client()

    interaction = client.interactions.create(model="echo", input=ASK, tools=[weather_tool])

    for step in interaction.steps or []:
        if step.type == "function_call":
            print(f"Tool Call: {step.name}({step.arguments})")
            result = get_weather(**step.arguments)
            interaction = client.interactions.create(
                model="echo",
                previous_interaction_id=interaction.id,
                input=[
                    {
                        "type": "function_result",
                        "name": step.name,
                        "call_id": step.id,
                        "result": result,
                    }
                ],
            )
            print(f"Response: {interaction.output_text}")

    assert capsys.readouterr().out.splitlines() == [
        "Tool Call: get_weather({'location': 'Mountain View, CA'})",
        "Response: get_weather returned: The weather in Mountain View, CA is sunny.",
    ]


def stream_calls(stream: Any) -> tuple[dict[int, dict[str, str]], list[str], Any]:
    """The docs' streaming loop: a function_call step starts with its id and name, its
    arguments arrive as arguments_delta text to accumulate; status updates say where it is."""
    calls: dict[int, dict[str, str]] = {}
    statuses: list[str] = []
    final = None
    for event in stream:
        if event.event_type == "step.start" and event.step.type == "function_call":
            calls[event.index] = {"id": event.step.id, "name": event.step.name, "arguments": ""}
        elif event.event_type == "step.delta" and event.delta.type == "arguments_delta":
            calls[event.index]["arguments"] += event.delta.arguments
        elif event.event_type == "interaction.status_update":
            statuses.append(event.status)
        elif event.event_type == "interaction.completed":
            final = event.interaction
    return calls, statuses, final


def test_streamed_function_call_then_its_result(gateway: Any) -> None:
    client = gateway.client()
    stream = client.interactions.create(model="echo", input=ASK, tools=[weather_tool], stream=True)
    calls, statuses, paused = stream_calls(stream)
    assert statuses == ["in_progress", "requires_action"]
    assert paused.status == "requires_action"
    (call,) = calls.values()
    result = get_weather(**json.loads(call["arguments"]))

    stream = client.interactions.create(
        model="echo",
        previous_interaction_id=paused.id,
        tools=[weather_tool],
        input=[
            {
                "type": "function_result",
                "name": call["name"],
                "call_id": call["id"],
                "result": result,
            }
        ],
        stream=True,
    )
    more_calls, statuses, done = stream_calls(stream)
    assert more_calls == {} and statuses == ["in_progress"] and done.status == "completed"
    answer = client.interactions.get(done.id)
    assert answer.output_text == f"get_weather returned: {result}"


async def test_an_agent_streams_its_function_call_the_same_way(api: Any) -> None:
    """A local agent pausing for a client function speaks the same sequence."""
    events = await api.events(
        "interactions.create",
        agent="local-agent",
        agent_config={"type": "dynamic", "model": "echo"},
        tools=[weather_tool],
        input=ASK,
        stream=True,
    )
    (start,) = [e for e in events if e.event_type == "step.start"]
    assert (start.step.type, start.step.name, start.step.arguments) == (
        "function_call",
        "get_weather",
        {},
    )
    text = "".join(e.delta.arguments for e in events if e.event_type == "step.delta")
    assert json.loads(text) == {"location": "Mountain View, CA"}
    updates = [e.status for e in events if e.event_type == "interaction.status_update"]
    assert updates == ["in_progress", "requires_action"]
    stored = await api.call("interactions.get", events[0].interaction.id)
    (call,) = [s for s in stored.steps if s.type == "function_call"]
    assert call.arguments == {"location": "Mountain View, CA"}


@pytest.mark.slow
def test_the_readme_example_on_the_local_model_answers_or_calls(gateway: Any) -> None:
    """SmolLM2-135M may answer in prose instead of calling the tool (tool_choice auto): the
    docs' loop then finds no function_call, and nothing is dropped silently: the answer is
    text, or a call the loop can run."""
    client = gateway.client()
    interaction = client.interactions.create(
        model="local",
        input="What is the weather in Mountain View, CA?",
        tools=[weather_tool],
        generation_config={"max_output_tokens": 48, "temperature": 0},
    )
    calls = [s for s in interaction.steps or [] if s.type == "function_call"]
    assert interaction.status in ("completed", "incomplete", "requires_action")
    if calls:
        assert interaction.status == "requires_action" and calls[0].name == "get_weather"
    else:
        assert interaction.output_text.strip()
