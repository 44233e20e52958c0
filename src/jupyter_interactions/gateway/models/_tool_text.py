"""Tool calling written as plain text, for chat templates that know nothing of tools.

Many small GGUF models (SmolLM2 among them) have a chat template that drops `tools`,
`tool_calls` and tool results. Then the conversation is rewritten into text the template
keeps: calls as `<tool_call>{json}</tool_call>` (the Hermes convention SmolLM2 was tuned
on), results as `<tool_response>` user turns, and the tools described in the system
message. The model's own `<tool_call>` blocks are parsed back into `ToolCall`s while the
surrounding text keeps streaming.
"""

from __future__ import annotations

import json
from typing import Any

from ...protocol import strict_loads
from ._chat_completions import new_call_id
from .base import ModelEvent, TextDelta, ToolCall

OPEN, CLOSE = "<tool_call>", "</tool_call>"

_INSTRUCTIONS = (
    "You can call these functions:\n<tools>{tools}</tools>\n"
    "To call one, answer with only "
    '<tool_call>{{"name": "function_name", "arguments": {{...}}}}</tool_call>. '
    "If no function is needed, answer normally."
)


def rewrite_body(body: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions body with tools, calls and results moved into plain text."""
    body = dict(body)
    tools = body.pop("tools", None)
    body.pop("tool_choice", None)
    messages: list[dict[str, Any]] = []
    for message in body["messages"]:
        role = message["role"]
        if role == "assistant" and message.get("tool_calls"):
            calls = [
                OPEN
                + json.dumps(
                    {
                        "name": c["function"]["name"],
                        "arguments": json.loads(c["function"]["arguments"] or "{}"),
                    }
                )
                + CLOSE
                for c in message["tool_calls"]
            ]
            text = "\n".join(filter(None, [message.get("content") or "", *calls]))
            messages.append({"role": "assistant", "content": text})
        elif role == "tool":
            reply = f"<tool_response>\n{message['content']}\n</tool_response>"
            if messages and messages[-1].get("_tool_results"):
                messages[-1]["content"] += "\n" + reply  # one user turn per batch of results
            else:
                messages.append({"role": "user", "content": reply, "_tool_results": True})
        else:
            messages.append(dict(message))
    for message in messages:
        message.pop("_tool_results", None)
    if tools:
        described = json.dumps([t["function"] for t in tools])
        instructions = _INSTRUCTIONS.format(tools=described)
        if messages and messages[0]["role"] == "system":
            messages[0] = {**messages[0], "content": messages[0]["content"] + "\n\n" + instructions}
        else:
            messages.insert(0, {"role": "system", "content": instructions})
    body["messages"] = messages
    return body


def _calls_from(text: str) -> list[ToolCall] | None:
    """The calls in one `<tool_call>` block (an object or a list of them), or None if it is
    not valid: then the block is shown to the user as the text it is."""
    try:
        value = strict_loads(text)
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        arguments = item.get("arguments") or {}
        if not isinstance(arguments, dict):
            return None
        calls.append(ToolCall(id=new_call_id(), name=item["name"], arguments=arguments))
    return calls


class ToolCallText:
    """Splits streamed text into text deltas and `<tool_call>` blocks, holding back only
    what could still be the start of a block."""

    def __init__(self) -> None:
        self._buffer = ""
        self._in_call = False
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> list[ModelEvent]:
        self._buffer += text
        events: list[ModelEvent] = []
        while True:
            if self._in_call:
                end = self._buffer.find(CLOSE)
                if end < 0:
                    return events
                events += self._close(self._buffer[:end])
                self._buffer = self._buffer[end + len(CLOSE) :]
                continue
            start = self._buffer.find(OPEN)
            if start >= 0:
                if start:
                    events.append(TextDelta(self._buffer[:start]))
                self._buffer = self._buffer[start + len(OPEN) :]
                self._in_call = True
                continue
            keep = _partial_suffix(self._buffer, OPEN)
            ready = self._buffer[: len(self._buffer) - keep]
            if ready:
                events.append(TextDelta(ready))
            self._buffer = self._buffer[len(ready) :]
            return events

    def finish(self) -> list[ModelEvent]:
        """Flush: an unclosed block (the model stopped at its end token) still counts."""
        rest, self._buffer = self._buffer, ""
        if self._in_call:
            self._in_call = False
            return self._close(rest, closed=False)
        return [TextDelta(rest)] if rest else []

    def _close(self, block: str, closed: bool = True) -> list[ModelEvent]:
        self._in_call = False
        calls = _calls_from(block.strip())
        if calls is None:
            return [TextDelta(OPEN + block + (CLOSE if closed else ""))]
        self.calls += calls
        return []


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that is a proper beginning of `marker`."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0
