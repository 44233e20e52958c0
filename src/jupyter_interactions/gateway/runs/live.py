"""A live interaction's turns (`LiveConversation`) and `open_live`, which decides whether a
create is a live interaction and refuses what a live text model cannot honour. The socket
that carries it is http/live.py."""

from __future__ import annotations

import asyncio
from typing import Any

from ...errors import RequestError, UnsupportedError
from ..models.base import Message, Model
from .emitter import Emitter
from .history import content_text
from .model_turn import model_request, stream_turn

IDLE_SECONDS = 600.0
_MEDIA_CONFIG = ("speech_config", "image_config", "video_config", "transcription_config")


def waits_for_input(body: dict[str, Any]) -> bool:
    """True for a create that asks for a live interaction: in the background, with no input."""
    return (
        body.get("background") is True
        and body.get("input") is None
        and not body.get("stream")
        and not body.get("continuation_token")
    )


def open_live(body: dict[str, Any], required: bool) -> LiveConversation | None:
    """The engine's `open_live`: the turns of a live interaction if `body` is one, after
    refusing what a live text model cannot honour."""
    if not (required or waits_for_input(body)):
        return None
    if body.get("tools"):
        raise UnsupportedError(
            "live interactions here take no tools (their results cannot come back over the "
            "socket); leave tools out, or use interactions.create with tools"
        )
    modalities = [str(m).lower() for m in body.get("response_modalities") or []]
    media = [m for m in modalities if m != "text"]
    media += [k for k in _MEDIA_CONFIG if (body.get("generation_config") or {}).get(k)]
    if media or body.get("response_format"):
        refused = ", ".join(media) or "response_format"
        raise UnsupportedError(
            f"live interactions here answer in text only; {refused} cannot be honoured: "
            "leave it out"
        )
    return LiveConversation()


class LiveConversation:
    """A live interaction's turns (engine.LiveTurns): inputs queue up and are answered in
    order, on the interaction's own model, until the client completes it."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._inputs: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue()
        self._completing = False

    def send(self, content: Any) -> None:
        """Queue one input: text content blocks (a string is one)."""
        if self._completing:
            raise RequestError("interaction.complete was sent: this interaction takes no input")
        items = [content] if isinstance(content, (str, dict)) else content
        if not isinstance(items, list) or not items:
            raise RequestError("an input event needs content: [{'type': 'text', 'text': ...}]")
        blocks: list[dict[str, Any]] = []
        for item in items:
            block = {"type": "text", "text": item} if isinstance(item, str) else item
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            if kind != "text" or not isinstance(block.get("text"), str):
                raise UnsupportedError(
                    f"{kind} input is not supported by this gateway's live models, which read "
                    "text; send {'type': 'text', 'text': ...} content"
                )
            blocks.append(block)
        self._inputs.put_nowait(blocks)

    def complete(self) -> None:
        """No more input: the interaction ends once the queued turns are answered."""
        if not self._completing:
            self._completing = True
            self._inputs.put_nowait(None)

    async def run(
        self, model: Model, body: dict[str, Any], messages: list[Message], emitter: Emitter
    ) -> str:
        history = list(messages)
        cut = False
        while True:
            try:
                content = await asyncio.wait_for(self._inputs.get(), self.idle_seconds)
            except asyncio.TimeoutError:
                return "incomplete"
            if content is None:
                return "incomplete" if cut else "completed"
            emitter.add({"type": "user_input", "content": content})
            history.append(Message("user", content_text(content)))
            text, reason = await stream_turn(model, model_request(body, history), emitter)
            cut = cut or reason == "length"
            if text:
                history.append(Message("assistant", text))
            await emitter.drain()
