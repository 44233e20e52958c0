"""`echo`: a deterministic diagnostic model that streams the user's last input back.

It answers in several deltas (word by word, at most `chunks` of them) with no delay, so
tests and benchmarks measure the gateway, not a model. With function tools declared and an
input of the form `call NAME {json}`, it calls that tool, which makes the function-calling
round trip testable without a real model.

Its answer does not depend on sampling, so `temperature`, `top_p` and `seed` are accepted and
change nothing; `max_output_tokens` counts its deltas, and `stop_sequences` cut the answer
before the first one.

Its answers end as those of `scripted` do: `answer_events` and `tool_call_events` are both
models' turns, from the first event to the `Finish`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from ...protocol import strict_loads
from .base import (
    COMMON_GENERATION_FIELDS,
    Finish,
    Message,
    Model,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    Usage,
)

_CALL = re.compile(r"^\s*call\s+(?P<name>[A-Za-z_][\w.-]*)\s*(?P<args>\{.*\})?\s*$", re.S)


def _last(messages: tuple[Message, ...], role: str) -> Message | None:
    return next((m for m in reversed(messages) if m.role == role), None)


def answer_pieces(
    text: str, chunks: int, generation: dict[str, Any]
) -> tuple[list[str], Literal["stop", "length"]]:
    """A deterministic answer's deltas, held to `stop_sequences` and `max_output_tokens`
    (counted in deltas), and why it ends."""
    cuts = [text.find(s) for s in generation.get("stop_sequences") or () if s and s in text]
    if cuts:
        text = text[: min(cuts)]
    pieces = split_words(text, chunks)
    limit = generation.get("max_output_tokens")
    if limit is not None and len(pieces) > int(limit):
        return pieces[: int(limit)], "length"
    return pieces, "stop"


def split_words(text: str, chunks: int) -> list[str]:
    """Split text into at most `chunks` pieces on word boundaries; joined, they give `text`."""
    pieces = re.findall(r"\S+\s*|\s+", text) or [text]
    if len(pieces) <= chunks:
        return pieces
    size = -(-len(pieces) // chunks)
    return ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]


def answer_events(text: str, chunks: int, request: ModelRequest) -> Iterator[ModelEvent]:
    """The events of a deterministic text answer: its deltas (see `answer_pieces`), then
    `Usage` (words in, words out) and the `Finish` that says why it ended."""
    pieces, reason = answer_pieces(text, chunks, request.generation)
    for piece in pieces:
        yield TextDelta(piece)
    output_tokens = len("".join(pieces).split())
    yield Usage(input_tokens=_input_words(request.messages), output_tokens=output_tokens)
    yield Finish(reason)


def tool_call_events(
    call: ToolCall, request: ModelRequest, output_tokens: int
) -> Iterator[ModelEvent]:
    """The events of a deterministic turn that calls a tool: the call, `Usage`, `Finish`."""
    yield call
    yield Usage(input_tokens=_input_words(request.messages), output_tokens=output_tokens)
    yield Finish("tool_calls")


def _input_words(messages: tuple[Message, ...]) -> int:
    """A deterministic model's input token count: the conversation's words."""
    return sum(len(m.text.split()) for m in messages)


class EchoModel(Model):
    generation_fields = COMMON_GENERATION_FIELDS | {"tool_choice"}

    def __init__(self, name: str = "echo", chunks: int = 8, **options: Any) -> None:
        super().__init__(name, **options)
        self.chunks = int(chunks)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        messages = request.messages
        last = messages[-1] if messages else None
        if last is not None and last.role == "tool":
            # The answer to a function call: echo what the function returned.
            text = f"{last.name or 'tool'} returned: {last.text}"
        else:
            user = _last(messages, "user")
            text = user.text if user else ""
            call = _CALL.match(text)
            tool_names = {t.name for t in request.tools}
            arguments = _arguments(call["args"]) if call and call["name"] in tool_names else None
            if call and arguments is not None:
                asked = ToolCall(f"call_{len(messages)}", call["name"], arguments)
                for event in tool_call_events(asked, request, output_tokens=1):
                    yield event
                return
        for event in answer_events(text, self.chunks, request):
            yield event


def _arguments(text: str | None) -> dict[str, Any] | None:
    """A call's arguments, or None if they are not a JSON object (then it is plain text)."""
    try:
        value = strict_loads(text) if text else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
