"""One model turn: the wire body's settings into a `ModelRequest`, the model's events into
steps (thought, model_output, function_call) through the `Emitter`, and the status it ends
with (`incomplete` when its output cap or its context ran out; `requires_action` is derived
from function calls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import RequestError, UnsupportedError
from ..models.base import (
    Finish,
    Message,
    Model,
    ModelRequest,
    Queued,
    TextDelta,
    ThoughtDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from .emitter import Emitter
from .history import content_text


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


_JSON = "application/json"
_PLAIN = (None, "text/plain")
_FORMAT_TYPES = frozenset({"text", "image", "audio", "video", "document"})


def output_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema `response_format` asks the answer to follow ({}: any JSON), or None
    for plain text. Both wire forms: `{"type": "text", "mime_type": "application/json",
    "schema": {...}}` (a list of them too), and the older raw schema with
    `response_mime_type: "application/json"`. Media formats are refused: models here answer
    in text."""
    value = body.get("response_format")
    mime = body.get("response_mime_type")
    if mime not in (*_PLAIN, _JSON):
        raise UnsupportedError(
            f"response_mime_type {mime!r}: models here answer in text/plain or application/json"
        )
    if value is None:
        return {} if mime == _JSON else None
    formats = value if isinstance(value, list) else [value]
    schema: dict[str, Any] | None = None
    for entry in formats:
        if not isinstance(entry, dict):
            raise RequestError("response_format must be an object or a list of objects")
        kind = entry.get("type")
        if kind not in _FORMAT_TYPES:  # the older form: the JSON Schema itself
            if mime != _JSON:
                raise RequestError(
                    "response_format: give {'type': 'text', 'mime_type': 'application/json', "
                    "'schema': ...}, or a schema with response_mime_type='application/json'"
                )
            schema = entry
        elif kind != "text":
            raise UnsupportedError(
                f"response_format type {kind!r}: models served here answer in text only; use "
                "a Gemini model with the gateway's key for image, audio or video output"
            )
        elif entry.get("mime_type") == _JSON or mime == _JSON:
            found = entry.get("schema")
            if found is not None and not isinstance(found, dict):
                raise RequestError("response_format.schema must be a JSON Schema object")
            schema = found or {}
        elif entry.get("mime_type") not in _PLAIN:
            raise UnsupportedError(
                f"response_format mime_type {entry.get('mime_type')!r}: use 'application/json' "
                "(with a schema) or 'text/plain'"
            )
    return schema


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


def _chosen_tools(tools: tuple[ToolSpec, ...], generation: dict[str, Any]) -> tuple[ToolSpec, ...]:
    """Apply `tool_choice` where every adapter can: an `allowed_tools` config narrows the
    tools (its mode stays as the choice), and "none" offers none. Adapters see only "auto",
    "any" or "validated"."""
    choice = generation.get("tool_choice")
    if isinstance(choice, dict):
        allowed = choice.get("allowed_tools") or {}
        names = allowed.get("tools")
        if names is not None:
            unknown = sorted(set(names) - {t.name for t in tools})
            if unknown:
                raise RequestError(
                    f"generation_config.tool_choice allows {unknown}, which are not among the "
                    "request's function tools"
                )
            tools = tuple(t for t in tools if t.name in names)
        choice = allowed.get("mode") or "auto"
    if choice == "none":
        tools, choice = (), None
    if choice is None:
        generation.pop("tool_choice", None)
    else:
        generation["tool_choice"] = choice
    return tools


def model_request(body: dict[str, Any], messages: list[Message]) -> ModelRequest:
    """What a model is asked: the conversation, with the body's system instruction, function
    tools (as `tool_choice` narrows them), generation settings and output schema. What the
    model cannot honour of it was refused at create (capabilities.py)."""
    system = body.get("system_instruction")
    generation = generation_settings(body)
    return ModelRequest(
        messages=tuple(messages),
        system_instruction=content_text(system) if system else None,
        tools=_chosen_tools(tool_specs(body.get("tools")), generation),
        generation=generation,
        output_schema=output_schema(body),
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
        if isinstance(event, Queued):
            # Shown as a thought, so a live view says why nothing streams yet.
            line = f"Waiting for model {model.name!r}: number {event.place} in line.\n"
            event = ThoughtDelta(line)
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
