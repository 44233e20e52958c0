"""The model adapter contract: one streaming method from a conversation to model events.

The engine turns wire steps (user_input, model_output, function_call, function_result, ...)
into `Message`s, calls `Model.stream`, and turns the `ModelEvent`s back into steps and SSE
events. Adapters know nothing of HTTP, SQLite or the Interactions wire format.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ...errors import ConfigError

Role = Literal["user", "assistant", "tool"]
TEXT_ONLY = frozenset({"text"})
# The generation_config fields every adapter here honours (echo and scripted by answering the
# same whatever the sampling; they still count output tokens and stop at stop sequences).
COMMON_GENERATION_FIELDS = frozenset(
    {"temperature", "top_p", "seed", "max_output_tokens", "stop_sequences", "thinking_summaries"}
)


@dataclass(frozen=True)
class ToolCall:
    """The model asks for a tool: a client function, or (inside an agent) `run_code` etc."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One turn of the conversation as a chat model sees it."""

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role="tool": which call this answers
    name: str | None = None  # role="tool": the tool's name
    is_error: bool = False  # role="tool": the tool failed


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call (JSON Schema parameters, as on the wire)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ModelRequest:
    messages: tuple[Message, ...]
    system_instruction: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    # generation_config from the wire: temperature, top_p, seed, max_output_tokens, stop_sequences
    generation: dict[str, Any] = field(default_factory=dict)
    # response_format asked for JSON: the JSON Schema the answer must follow ({}: any JSON).
    output_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThoughtDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Queued:
    """The turn waits for the model (all its slots are busy); `place` 1 is next in line."""

    place: int


@dataclass(frozen=True)
class Finish:
    """Why the model stopped: 'stop' (done), 'length' (its output cap or its context is
    full: one limit, one meaning), 'tool_calls'."""

    reason: Literal["stop", "length", "tool_calls"] = "stop"


ModelEvent = TextDelta | ThoughtDelta | ToolCall | Usage | Queued | Finish


class Model(ABC):
    """A model adapter. One instance per configured name, shared by concurrent requests.

    `stream` must not block the event loop: adapters around blocking libraries run them in a
    thread and hand events back through the loop. Cancelling the consuming task must stop
    generation promptly (the engine cancels on `/cancel` and on client disconnect of a
    foreground stream).

    What a request may ask of an adapter is declared here, and refused by the gateway
    (runs/capabilities.py: a 400 before anything runs) rather than dropped: the `input_modalities`
    it reads, the `generation_fields` of `generation_config` it honours, `tool_choices`
    modes, and whether it can hold its answer to a JSON schema (`structured_output`), also in
    a turn that offers function tools (`schema_with_tools`).
    """

    input_modalities: ClassVar[frozenset[str]] = TEXT_ONLY
    generation_fields: ClassVar[frozenset[str]] = frozenset()
    # tool_choice modes it can honour besides "none" and `allowed_tools` (applied before it).
    tool_choices: ClassVar[frozenset[str]] = frozenset({"auto"})
    structured_output: ClassVar[bool] = False
    schema_with_tools: ClassVar[bool] = True
    # True for adapters that need settings (a server's URL...): only configured names use them.
    needs_configuration: ClassVar[bool] = False

    def __init__(self, name: str, **unknown: Any) -> None:
        """`unknown`: the configured options the adapter's own keywords did not take. Any
        is refused here, for every adapter alike, rather than dropped."""
        if unknown:
            raise ConfigError(
                f"model {name!r}: unknown options {sorted(unknown)} under models.{name} in "
                f"jupyter_interactions.json; known: {self.option_names()}"
            )
        self.name = name

    @classmethod
    def option_names(cls) -> list[str]:
        """The options a configuration may give this adapter: its constructor's keywords."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in parameters if p.kind in named and p.name not in ("self", "name")]

    @abstractmethod
    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Yield events for one model turn; end with exactly one `Finish`."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook; most adapters hold nothing
        """Release resources (threads, loaded weights). Idempotent."""
