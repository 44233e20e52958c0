"""Every event, step and delta the gateway can emit parses into google-genai's typed classes,
as a client's SDK parses them, and never into the SDK's "unknown" fallback (`Unknown*` classes
with `is_unknown=True`, which the SDK also uses for a known type whose payload fails its
schema; on a live socket, the SDK's plain `BaseModel`). Each kind is driven for real: the echo
model (text, function calls, limits, cancel), a failing model, the local agent with the
`scripted` model (thoughts, code calls and results, images, budgets), an upstream relay played
by a second gateway, and live interactions over WebSocket."""

from __future__ import annotations

import json
import secrets
import textwrap
from typing import Any

import pydantic
import websockets
from google.genai import interactions as sdk
from pydantic import BaseModel

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
EVENT_CLASSES = {
    "interaction.created": sdk.InteractionCreatedEvent,
    "interaction.status_update": sdk.InteractionStatusUpdate,
    "step.start": sdk.StepStart,
    "step.delta": sdk.StepDelta,
    "step.stop": sdk.StepStop,
    "interaction.completed": sdk.InteractionCompletedEvent,
    "error": sdk.ErrorEvent,
}
STEP_CLASSES = {
    "user_input": sdk.UserInputStep,
    "model_output": sdk.ModelOutputStep,
    "thought": sdk.ThoughtStep,
    "function_call": sdk.FunctionCallStep,
    "code_execution_call": sdk.CodeExecutionCallStep,
    "code_execution_result": sdk.CodeExecutionResultStep,
}
LIVE_CLASSES = {
    "interaction.created": sdk.LiveInteractionCreatedEvent,
    "interaction.connected": sdk.InteractionConnectedEvent,
    "step.start": sdk.StepStart,
    "step.delta": sdk.StepDelta,
    "step.stop": sdk.StepStop,
    "interaction.completed": sdk.LiveInteractionCompletedEvent,
    "interaction.cancelled": sdk.InteractionCancelledEvent,
    "error": sdk.ErrorEvent,
}
DELTA_CLASSES = {
    "text": sdk.TextDelta,
    "thought_summary": sdk.ThoughtSummaryDelta,
    "arguments_delta": sdk.ArgumentsDelta,
    "code_execution_call": sdk.CodeExecutionCallDelta,
    "code_execution_result": sdk.CodeExecutionResultDelta,
}
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5E"
    "rkJggg=="
)


def typed(value: BaseModel) -> None:
    """Fails unless `value` is a typed SDK object that meets its schema: no unknown fallback
    anywhere in it, and it validates strictly (the SDK's lenient parse may instead construct
    a known class around a payload that fails the schema)."""
    assert not unknowns(value), unknowns(value)
    type(value).model_validate(value.model_dump(mode="json", by_alias=True, exclude_none=True))


def unknowns(value: Any, path: str = "") -> list[str]:
    """Where in a parsed SDK object the unknown fallback was used."""
    found = []
    if getattr(value, "is_unknown", False) is True:
        found.append(f"{path or 'event'}: {type(value).__name__} {getattr(value, 'raw', '')}")
    if isinstance(value, BaseModel):
        for name, item in {**vars(value), **(value.model_extra or {})}.items():
            found.extend(unknowns(item, f"{path}.{name}"))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found.extend(unknowns(item, f"{path}[{i}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(unknowns(item, f"{path}.{key}"))
    return found


class Seen:
    """Checks each parsed object and records which kinds were seen."""

    def __init__(self) -> None:
        self.events: set[str] = set()
        self.steps: set[str] = set()
        self.deltas: set[str] = set()
        self.statuses: set[str] = set()

    def event(self, event: Any, classes: dict[str, type] = EVENT_CLASSES) -> None:
        typed(event)
        kind = event.event_type
        assert isinstance(event, classes[kind]), (kind, type(event))
        self.events.add(kind)
        if kind == "step.start":
            self.step(event.step)
        elif kind == "step.delta":
            assert isinstance(event.delta, DELTA_CLASSES[event.delta.type]), event.delta
            self.deltas.add(event.delta.type)
        elif kind == "interaction.completed" and classes is EVENT_CLASSES:
            self.statuses.add(event.interaction.status)
        elif kind == "interaction.status_update":
            self.statuses.add(event.status)

    def step(self, step: Any) -> None:
        assert isinstance(step, STEP_CLASSES[step.type]), (step.type, type(step))
        self.steps.add(step.type)

    def interaction(self, interaction: Any) -> None:
        assert isinstance(interaction, sdk.Interaction)
        typed(interaction)
        for step in interaction.steps or []:
            self.step(step)

    async def drive(self, aio: Any, **create: Any) -> Any:
        """Stream a create, replay its stored events, get it: every object is checked."""
        events = [e async for e in await aio.interactions.create(**create, stream=True)]
        for event in events:
            self.event(event)
        return await self.check_stored(aio, events[0].interaction.id)

    async def function_call_round_trip(self, aio: Any, model: str) -> None:
        """A function call streamed, paused, then answered by a continuation."""
        ask = 'call get_weather {"city": "Oslo"}'
        paused = await self.drive(aio, model=model, input=ask, tools=[WEATHER])
        call = next(s for s in paused.steps if s.type == "function_call")
        assert call.arguments == {"city": "Oslo"}
        result = {"type": "function_result", "call_id": call.id, "result": "sunny"}
        done = await self.drive(
            aio, model=model, previous_interaction_id=paused.id, tools=[WEATHER], input=[result]
        )
        assert done.output_text == "get_weather returned: sunny"

    async def check_stored(self, aio: Any, interaction_id: str) -> Any:
        async for event in await aio.interactions.get(interaction_id, stream=True):
            self.event(event)
        interaction = await aio.interactions.get(interaction_id)
        self.interaction(interaction)
        return interaction


def fence(code: str) -> str:
    return f"```python\n{textwrap.dedent(code).strip()}\n```"


async def test_every_local_event_step_and_delta_is_typed(gateway_factory: Any) -> None:
    # The `limits` tier makes the agent say so in a thought step before its first code.
    gateway = gateway_factory(settings={"sandbox_options": {"tier": "limits"}})
    seen = Seen()
    async with gateway.aio() as aio:
        await seen.drive(aio, model="echo", input="one two three")
        await seen.function_call_round_trip(aio, "echo")
        await seen.drive(
            aio, model="echo", input="a b c d", generation_config={"max_output_tokens": 2}
        )
        await seen.drive(aio, model="broken", input="hi")
        code = "\n\n".join(
            [
                fence("print('hello')"),
                fence(f"""
                    import base64
                    from IPython.display import Image, display
                    display(Image(data=base64.b64decode("{PNG}")))
                """),
                fence("1 / 0"),
            ]
        )
        scripted = {"type": "dynamic", "model": "scripted"}
        agent = await seen.drive(aio, agent="local-agent", agent_config=scripted, input=code)
        assert agent.status == "completed"
        tiny = {**scripted, "max_total_tokens": 1}
        await seen.drive(aio, agent="local-agent", agent_config=tiny, input=fence("print(1)"))
        running = await aio.interactions.create(model="slow", input="x " * 200, background=True)
        await aio.interactions.cancel(running.id)
        await seen.check_stored(aio, running.id)

    assert seen.events == set(EVENT_CLASSES)
    assert seen.steps == set(STEP_CLASSES) - {"user_input"}  # user_input: live interactions
    assert seen.deltas == set(DELTA_CLASSES)
    assert seen.statuses == {
        "in_progress",
        "requires_action",
        "completed",
        "incomplete",
        "failed",
        "budget_exceeded",
        "cancelled",
    }


async def test_events_relayed_from_upstream_are_typed(gateway_factory: Any) -> None:
    key = "AIza" + secrets.token_urlsafe(30)
    google = gateway_factory(token=key, models={"gemini-test": {"adapter": "echo"}})
    front = gateway_factory(
        env={"GEMINI_API_KEY": key},
        settings={"upstream_url": google.url, "upstream_attempts": 1},
    )
    seen = Seen()
    async with front.aio() as aio:
        await seen.drive(aio, model="gemini-test", input="hi from afar")
        await seen.function_call_round_trip(aio, "gemini-test")
        await seen.drive(aio, model="gemini-unknown-to-google", input="hi")
    assert seen.events == set(EVENT_CLASSES)
    assert seen.steps == {"model_output", "function_call"}
    assert seen.deltas == {"text", "arguments_delta"}


async def test_every_live_event_is_typed(gateway: Any) -> None:
    seen = Seen()

    def live(event: Any) -> None:
        seen.event(event, LIVE_CLASSES)

    async with gateway.aio() as aio:
        first = await aio.interactions.create(model="echo", background=True)
        async with aio.interactions.connect(first.id) as connection:
            await connection.send("hello there")
            await connection.send({"event_type": "input", "content": [{"type": "audio"}]})
            await connection.complete()
            async for event in connection.receive():
                live(event)
        second = await aio.interactions.create(model="echo", background=True)
        async with aio.interactions.connect(second.id) as connection:
            await aio.interactions.cancel(second.id)
            async for event in connection.receive():
                live(event)
    # interaction.created comes only to a socket that creates the interaction itself, which
    # the SDK's connect() never does: its frames are parsed with the SDK's own ServerEvent.
    url = gateway.url.replace("http://", "ws://").rstrip("/") + "/v1/interactions/live"
    headers = {"x-goog-api-key": gateway.token}
    events = [{"event_type": "interaction.create", "model": "echo"}]
    events += [{"event_type": "input", "content": [{"type": "text", "text": "hi"}]}]
    events += [{"event_type": "interaction.complete"}]
    async with websockets.connect(url, additional_headers=headers) as socket:
        await socket.send(json.dumps({"events": events}))
        async for frame in socket:
            live(pydantic.TypeAdapter(sdk.ServerEvent).validate_json(frame))
    assert seen.events == set(LIVE_CLASSES)
    assert seen.steps == {"model_output"}  # the client's own input is not echoed back
    assert seen.deltas == {"text"}
