"""The OpenAI chat-completions format: request bodies built from a `ModelRequest`, and streamed
chunks turned back into model events. Shared by the adapters that speak it: llama.cpp's
in-process handler (`local`) and OpenAI-compatible HTTP servers (`openai`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from ...protocol import strict_loads
from .base import (
    Finish,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ThoughtDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

# Interactions `tool_choice` strings -> OpenAI's ("validated" has no OpenAI equivalent, so
# adapters do not declare it and it is refused).
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def chat_message(message: Message) -> dict[str, Any]:
    """One `Message` as an OpenAI chat message."""
    if message.role == "tool":
        text = f"Error: {message.text}" if message.is_error else message.text
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": text}
    body: dict[str, Any] = {"role": message.role, "content": message.text}
    if message.role == "assistant" and message.tool_calls:
        body["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return body


def chat_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


def sampling(generation: dict[str, Any]) -> dict[str, Any]:
    """The wire's `generation_config` as chat-completions fields. Only fields an adapter
    declares it honours get here (the engine refuses the others); `thinking_summaries` is
    applied while reading (`ChunkReader`), not sent."""
    body: dict[str, Any] = {}
    for ours, theirs, cast in (
        ("temperature", "temperature", float),
        ("top_p", "top_p", float),
        ("seed", "seed", int),
        ("max_output_tokens", "max_tokens", int),
        ("thinking_level", "reasoning_effort", str),
    ):
        if generation.get(ours) is not None:
            body[theirs] = cast(generation[ours])
    stop = generation.get("stop_sequences")
    if stop:
        body["stop"] = [stop] if isinstance(stop, str) else list(stop)
    choice = generation.get("tool_choice")
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        body["tool_choice"] = _TOOL_CHOICE[choice]
    return body


def chat_body(request: ModelRequest, *, model: str | None = None) -> dict[str, Any]:
    """A complete streaming chat-completions request body."""
    messages: list[dict[str, Any]] = []
    if request.system_instruction:
        messages.append({"role": "system", "content": request.system_instruction})
    messages.extend(chat_message(m) for m in request.messages)
    body: dict[str, Any] = {
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
        **sampling(request.generation),
    }
    if model is not None:
        body["model"] = model
    schema = request.output_schema
    if schema:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": schema, "strict": True},
        }
    elif schema is not None:  # any JSON
        body["response_format"] = {"type": "json_object"}
    if request.tools:
        body["tools"] = chat_tools(request.tools)
    else:
        body.pop("tool_choice", None)
    return body


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def parse_arguments(raw: str) -> dict[str, Any]:
    """Tool-call arguments as an object; a model that wrote broken JSON keeps its text."""
    if not raw.strip():
        return {}
    try:
        value = strict_loads(raw)
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}


@dataclass
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class ChunkReader:
    """Turns streamed `chat.completion.chunk` objects into events.

    Text and reasoning stream through at once (reasoning only with `thoughts`, which
    `thinking_summaries: "none"` turns off); tool calls arrive in fragments keyed by `index`
    and are emitted whole by `finish`, followed by `Usage` (when the server reported it) and
    exactly one `Finish`.
    """

    thoughts: bool = True
    calls: dict[int, _PendingCall] = field(default_factory=dict)
    usage: Usage | None = None
    reason: str | None = None

    @classmethod
    def for_request(cls, request: ModelRequest) -> ChunkReader:
        return cls(thoughts=request.generation.get("thinking_summaries") != "none")

    def feed(self, chunk: dict[str, Any]) -> list[ModelEvent]:
        events: list[ModelEvent] = []
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            )
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            # vLLM/DeepSeek/llama.cpp say reasoning_content; Ollama and OpenRouter say reasoning.
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought and self.thoughts:
                events.append(ThoughtDelta(thought))
            text = delta.get("content")
            if isinstance(text, str) and text:
                events.append(TextDelta(text))
            for fragment in delta.get("tool_calls") or ():
                self._add_fragment(fragment)
            if choice.get("finish_reason"):
                self.reason = choice["finish_reason"]
        return events

    def _add_fragment(self, fragment: dict[str, Any]) -> None:
        index = int(fragment.get("index", len(self.calls)))
        call = self.calls.setdefault(index, _PendingCall())
        call.id = call.id or fragment.get("id") or ""
        function = fragment.get("function") or {}
        call.name += function.get("name") or ""
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # some servers (Ollama) send objects, not strings
            arguments = json.dumps(arguments)
        call.arguments += arguments or ""

    def finish(self) -> list[ModelEvent]:
        calls = [
            ToolCall(id=c.id or new_call_id(), name=c.name, arguments=parse_arguments(c.arguments))
            for _, c in sorted(self.calls.items())
            if c.name
        ]
        events: list[ModelEvent] = list(calls)
        if self.usage is not None:
            events.append(self.usage)
        events.append(Finish(finish_reason(self.reason, has_calls=bool(calls))))
        return events


def finish_reason(reason: str | None, *, has_calls: bool) -> Any:
    """Chat-completions finish_reason -> ours. Some servers (Ollama) say "stop" even when
    they called a tool, so the calls themselves decide."""
    if reason == "length":
        return "length"
    if has_calls or reason in ("tool_calls", "function_call"):
        return "tool_calls"
    return "stop"
