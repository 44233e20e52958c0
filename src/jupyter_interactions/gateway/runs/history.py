"""Turning wire inputs and stored steps into the `Message`s a model sees.

A create's `input` arrives in any form of the reference (§3.2): a string, one content block,
a list of content blocks, one step, or a list of steps. `input_steps` brings all of them to a
list of steps; `messages_from_steps` turns a conversation's steps (the whole
`previous_interaction_id` chain, then the new input) into chat messages.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ...errors import RequestError
from ...protocol import result_text
from ..models.base import Message, ToolCall

STEP_TYPES = frozenset(
    {
        "user_input",
        "model_output",
        "thought",
        "function_call",
        "function_result",
        "code_execution_call",
        "code_execution_result",
        "google_search_call",
        "google_search_result",
        "url_context_call",
        "url_context_result",
        "google_maps_call",
        "google_maps_result",
        "file_search_call",
        "file_search_result",
        "mcp_server_tool_call",
        "mcp_server_tool_result",
        "retrieval_call",
        "retrieval_result",
        "processing_call",
        "processing_result",
    }
)


def _type(item: Any) -> str:
    return str(item.get("type", "")).lower() if isinstance(item, dict) else ""


def _block(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return {"type": "text", "text": item}
    if not isinstance(item, dict):
        raise RequestError(f"input content must be objects or strings, got {type(item).__name__}")
    block = dict(item)
    block["type"] = _type(block) or ("text" if "text" in block else "")
    return block


def input_steps(value: Any) -> list[dict[str, Any]]:
    """Normalise a create's `input` to a list of wire steps."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "user_input", "content": [{"type": "text", "text": value}]}]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RequestError(
            "input must be a string, a content object, or a list of them or of steps"
        )
    steps: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    for item in value:
        kind = _type(item)
        if kind in STEP_TYPES:
            if blocks:
                steps.append({"type": "user_input", "content": blocks})
                blocks = []
            step = dict(item)
            step["type"] = kind
            if kind == "user_input":
                step["content"] = [_block(b) for b in step.get("content") or []]
            steps.append(step)
        else:
            blocks.append(_block(item))
    if blocks:
        steps.append({"type": "user_input", "content": blocks})
    return steps


# Documents a text-only model reads as text (their inline data decoded as UTF-8).
TEXT_DOCUMENT_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/yaml"}
)


def _document_mime(block: dict[str, Any]) -> str:
    return str(block.get("mime_type") or "").split(";")[0].strip().lower()


def readable_document(block: Any) -> bool:
    """Whether a content block is a text document with inline data (CSV, Markdown, JSON,
    ...), which a text-only model can read. Raises RequestError for bad base64."""
    if not isinstance(block, dict) or _type(block) != "document" or not block.get("data"):
        return False
    mime = _document_mime(block)
    if not (mime.startswith("text/") or mime in TEXT_DOCUMENT_TYPES):
        return False
    _document_text(block)  # refuse undecodable data at create, not later
    return True


def _document_text(block: dict[str, Any]) -> str:
    try:
        return base64.b64decode(str(block["data"]), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise RequestError(
            f"a {_document_mime(block)} document's data must be base64 of UTF-8 text"
        ) from None


def _placeholder(block: dict[str, Any]) -> str:
    """What a text-only model is told in place of media it cannot see (media in history,
    e.g. an agent's plots: new input with media is refused at create)."""
    kind = _type(block) or "content"
    mime = f" {block['mime_type']}" if block.get("mime_type") else ""
    uri = f" at {block['uri']}" if block.get("uri") else ""
    return f"[{kind}{mime}{uri} omitted: this model reads text only and has not seen it]"


def content_text(content: Any) -> str:
    """The text a text-only model can read from a list of content blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    parts = []
    only_text = True
    for block in content:
        if not isinstance(block, dict):
            parts.append(str(block))
        elif _type(block) == "text" or "text" in block:
            parts.append(str(block.get("text", "")))
        elif readable_document(block):
            only_text = False
            parts.append(_document_text(block))
        else:
            # A text-only model cannot see media; tell it plainly that something was there.
            only_text = False
            parts.append(_placeholder(block))
    return ("" if only_text else "\n").join(parts)


def _result_text(result: Any) -> str:
    return result_text(result, content_text)


def messages_from_steps(steps: list[dict[str, Any]]) -> list[Message]:
    messages: list[Message] = []
    for step in steps:
        kind = _type(step)
        if kind == "user_input":
            messages.append(Message("user", content_text(step.get("content"))))
        elif kind == "model_output":
            text = content_text(step.get("content"))
            if text:
                messages.append(Message("assistant", text))
        elif kind in ("function_call", "code_execution_call"):
            name = step.get("name") or ("run_code" if kind == "code_execution_call" else "tool")
            arguments = step.get("arguments") or {}
            call = ToolCall(id=str(step.get("id", "")), name=name, arguments=dict(arguments))
            # Consecutive calls belong to one assistant turn, as chat models expect.
            if messages and messages[-1].role == "assistant" and messages[-1].tool_calls:
                last = messages.pop()
                messages.append(Message("assistant", last.text, (*last.tool_calls, call)))
            else:
                messages.append(Message("assistant", tool_calls=(call,)))
        elif kind in ("function_result", "code_execution_result"):
            call_id = step.get("call_id")
            name = step.get("name") or _call_name(messages, call_id)
            messages.append(
                Message(
                    "tool",
                    _result_text(step.get("result")),
                    tool_call_id=call_id,
                    name=name,
                    is_error=bool(step.get("is_error")),
                )
            )
        # thought and server-side tool steps carry nothing a chat model replays.
    return messages


def _call_name(messages: list[Message], call_id: str | None) -> str | None:
    for message in reversed(messages):
        for call in message.tool_calls:
            if call.id == call_id:
                return call.name
    return None


def pending_calls(steps: list[dict[str, Any]]) -> set[str]:
    """Ids of function calls in `steps` that no function_result answers."""
    calls = {s.get("id") for s in steps if _type(s) == "function_call"}
    answered = {s.get("call_id") for s in steps if _type(s) == "function_result"}
    return {c for c in calls - answered if c}
