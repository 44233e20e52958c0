"""`Emitter`: the step and event API every run speaks (local models, agents, upstream).

A run describes its work as steps: `start` a step (a skeleton such as
`{"type": "model_output", "content": []}`), stream `delta`s into it, `stop` it. The emitter
keeps the merged steps (what `GET /interactions/{id}` returns) and hands each SSE event, in
the documented order, to `publish`, which stores it before anyone sees it:

    interaction.created, interaction.status_update (in_progress),
    per step: step.start (a skeleton), step.delta*, step.stop,
    [interaction.status_update (requires_action)], interaction.completed

A call step's arguments never ride in its `step.start`: they follow as a delta, a function
call's as JSON text in `arguments_delta` (clients accumulate them), a built-in tool call's
as an object in a delta named like the step.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ...protocol import PAUSED, strict_loads

Publish = Callable[[dict[str, Any]], None]

_CONTENT_DELTAS = frozenset({"image", "audio", "video", "document"})


def _arguments_delta(call: dict[str, Any]) -> dict[str, Any]:
    """The delta that carries a call's arguments: JSON text for a function call (clients
    accumulate `arguments_delta`s), else the call's own fields in a delta named like it."""
    if call["type"] == "function_call":
        return {"type": "arguments_delta", "arguments": json.dumps(call["arguments"])}
    return {k: v for k, v in call.items() if k != "id"}


class Emitter:
    """Builds an interaction's steps from start/delta/stop calls and publishes the events."""

    def __init__(self, publish: Publish, drain: Callable[[], Awaitable[None]] | None = None):
        self._publish = publish
        self._drain = drain
        self.steps: list[dict[str, Any]] = []
        self.usage: dict[str, Any] = {}
        # A run may set this to end other than completed (requires_action is derived from
        # unanswered function_call steps); None means "derive it".
        self.status: str | None = None
        self._open: set[int] = set()
        self._arguments: dict[int, str] = {}

    # -- steps ---------------------------------------------------------------------------------

    def start(self, step: dict[str, Any]) -> int:
        """Open a step; returns its index (its position in `steps`)."""
        index = len(self.steps)
        self.steps.append(json.loads(json.dumps(step)))  # the caller keeps its own copy
        self._open.add(index)
        self._publish({"event_type": "step.start", "index": index, "step": step})
        return index

    def delta(self, index: int, delta: dict[str, Any]) -> None:
        if index not in self._open:
            raise ValueError(f"step {index} is not open; start it first")
        self._merge(self.steps[index], index, delta)
        self._publish({"event_type": "step.delta", "index": index, "delta": delta})

    def stop(self, index: int, **extra: Any) -> None:
        if index not in self._open:
            return
        self._open.discard(index)
        partial = self._arguments.pop(index, None)
        if partial is not None:
            try:
                self.steps[index]["arguments"] = strict_loads(partial)
            except ValueError:
                self.steps[index]["arguments"] = {"_raw": partial}
        self._publish({"event_type": "step.stop", "index": index, **extra})

    def add(self, step: dict[str, Any]) -> int:
        """A complete step at once, in the documented sequence: start and stop, with a call
        step's arguments as a delta between them; other steps' content is in the start."""
        is_call = str(step.get("type", "")).endswith("_call") and "arguments" in step
        index = self.start({**step, "arguments": {}} if is_call else step)
        if is_call:
            self.delta(index, _arguments_delta(step))
        self.stop(index)
        return index

    def close_all(self) -> None:
        for index in sorted(self._open):
            self.stop(index)

    def text(self, index: int, text: str) -> None:
        self.delta(index, {"type": "text", "text": text})

    # -- interaction-level events --------------------------------------------------------------

    def created(self, interaction: dict[str, Any]) -> None:
        """The first events of every run: the interaction as created, then its status."""
        self._publish({"event_type": "interaction.created", "interaction": interaction})
        self.status_update(interaction["id"], interaction["status"])

    def completed(self, interaction: dict[str, Any]) -> None:
        """The terminal event; a run paused for the client says so in a status update first."""
        if interaction["status"] in PAUSED:
            self.status_update(interaction["id"], interaction["status"])
        self._publish({"event_type": "interaction.completed", "interaction": interaction})

    def status_update(self, interaction_id: str, status: str) -> None:
        event: dict[str, Any] = {"event_type": "interaction.status_update"}
        event.update(interaction_id=interaction_id, status=status)
        if self.usage:
            event["usage"] = dict(self.usage)
        self._publish(event)

    def error(self, code: str, message: str) -> None:
        self._publish({"event_type": "error", "error": {"code": code, "message": message}})

    def add_usage(self, input_tokens: int = 0, output_tokens: int = 0, **other: int) -> None:
        usage = self.usage
        usage["total_input_tokens"] = usage.get("total_input_tokens", 0) + int(input_tokens)
        usage["total_output_tokens"] = usage.get("total_output_tokens", 0) + int(output_tokens)
        for key, value in other.items():
            usage[key] = usage.get(key, 0) + int(value)
        usage["total_tokens"] = sum(
            usage.get(k, 0)
            for k in (
                "total_input_tokens",
                "total_output_tokens",
                "total_thought_tokens",
                "total_tool_use_tokens",
            )
        )

    async def drain(self) -> None:
        """Await this between bursts of events: it pauses a producer that runs ahead of the
        store, and lets other streams run. Usually returns at once."""
        if self._drain is not None:
            await self._drain()

    # -- merging deltas into steps -------------------------------------------------------------

    def _merge(self, step: dict[str, Any], index: int, delta: dict[str, Any]) -> None:
        kind = delta.get("type")
        if kind == "text":
            content = step.setdefault("content", [])
            if content and content[-1].get("type") == "text":
                content[-1]["text"] = content[-1].get("text", "") + delta.get("text", "")
            else:
                content.append({"type": "text", "text": delta.get("text", "")})
        elif kind in _CONTENT_DELTAS:
            step.setdefault("content", []).append(dict(delta))
        elif kind == "text_annotation_delta":
            content = step.setdefault("content", [])
            if content and content[-1].get("type") == "text":
                content[-1].setdefault("annotations", []).extend(delta.get("annotations", []))
        elif kind == "thought_summary":
            block = delta.get("content") or {}
            summary = step.setdefault("summary", [])
            if block.get("type") == "text" and summary and summary[-1].get("type") == "text":
                summary[-1]["text"] = summary[-1].get("text", "") + block.get("text", "")
            else:
                summary.append(dict(block))
        elif kind == "thought_signature":
            step["signature"] = delta.get("signature")
        elif kind == "arguments_delta":
            self._arguments[index] = self._arguments.get(index, "") + str(
                delta.get("arguments", "")
            )
        else:
            # function_result and the tool deltas (code_execution_call, ..._result) carry the
            # step's own fields; a string result streams in pieces.
            for key, value in delta.items():
                if key == "type":
                    continue
                if key == "result" and isinstance(value, str) and isinstance(step.get(key), str):
                    step[key] += value
                else:
                    step[key] = value
