"""One model turn: the wire body's settings into a `ModelRequest`, the model's events into
steps (thought, model_output, function_call) through the `Emitter`, and the status it ends
with (`incomplete` at max_output_tokens; `requires_action` is derived from function calls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import RequestError
from .emitter import Emitter
from .history import content_text
from .models.base import (
    Finish,
    Message,
    Model,
    ModelRequest,
    TextDelta,
    ThoughtDelta,
    ToolCall,
    ToolSpec,
    Usage,
)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def generation_settings(body: dict[str, Any]) -> dict[str, Any]:
    """`generation_config`, with int64 fields the SDK may send as strings made ints."""
    generation = dict(body.get("generation_config") or {})
    for key in ("max_output_tokens", "seed"):
        if key in generation:
            generation[key] = _int_or_none(generation[key])
    return generation


def tool_specs(tools: Any) -> tuple[ToolSpec, ...]:
    """The function tools of a request; built-in tools are not the model's to call."""
    specs = []
    for tool in tools or []:
        if isinstance(tool, dict) and str(tool.get("type", "")).lower() == "function":
            if not tool.get("name"):
                raise RequestError("every function tool needs a name")
            specs.append(
                ToolSpec(
                    name=tool["name"],
                    description=tool.get("description") or "",
                    parameters=tool.get("parameters") or {"type": "object", "properties": {}},
                )
            )
    return tuple(specs)


def model_request(body: dict[str, Any], messages: list[Message]) -> ModelRequest:
    """What a model is asked: the conversation, with the body's system instruction, function
    tools and generation settings."""
    system = body.get("system_instruction")
    return ModelRequest(
        messages=tuple(messages),
        system_instruction=content_text(system) if system else None,
        tools=tool_specs(body.get("tools")),
        generation=generation_settings(body),
    )


async def model_turn(
    model: Model, body: dict[str, Any], messages: list[Message], emitter: Emitter
) -> str:
    _, reason = await stream_turn(model, model_request(body, messages), emitter)
    return "incomplete" if reason == "length" else "completed"


async def stream_turn(
    model: Model,
    request: ModelRequest,
    emitter: Emitter,
    on_tool_call: Callable[[ToolCall], None] | None = None,
) -> tuple[str, str]:
    """Stream one model turn as thought / model_output steps; each tool call goes to
    `on_tool_call` (default: a function_call step, where the client must act). Returns the
    turn's text and its finish reason ("stop", "length" or "tool_calls")."""
    index = -1
    open_kind = ""  # the type of the step being streamed into, if any
    reason = "stop"
    text: list[str] = []
    async for event in model.stream(request):
        if isinstance(event, TextDelta):
            if open_kind != "model_output":
                emitter.close_all()
                index, open_kind = (
                    emitter.start({"type": "model_output", "content": []}),
                    "model_output",
                )
            emitter.text(index, event.text)
            text.append(event.text)
        elif isinstance(event, ThoughtDelta):
            if open_kind != "thought":
                emitter.close_all()
                index, open_kind = emitter.start({"type": "thought", "summary": []}), "thought"
            content = {"type": "text", "text": event.text}
            emitter.delta(index, {"type": "thought_summary", "content": content})
        elif isinstance(event, ToolCall):
            if on_tool_call is None:
                emitter.close_all()
                open_kind = ""
                call = {"type": "function_call", "id": event.id, "name": event.name}
                emitter.add({**call, "arguments": event.arguments})
            else:
                on_tool_call(event)
        elif isinstance(event, Usage):
            emitter.add_usage(event.input_tokens, event.output_tokens)
        elif isinstance(event, Finish):
            reason = event.reason
        await emitter.drain()
    emitter.close_all()
    return "".join(text), reason
