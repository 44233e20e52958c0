"""Transcript: the state of one interaction rebuilt from its SSE events or its final resource.

It holds what a reader needs (answer text, thoughts, tool activity, status, ids, usage) and
renders it as Markdown and plain text. It never does I/O, so the live view, the final
display and background jobs all share it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..protocol import SETTLED, STOPPED_EARLY, moves_head, result_text


@dataclass
class Part:
    """One step as shown to the reader. `kind`: answer, thought, call, code, result, other."""

    kind: str
    title: str = ""
    text: str = ""
    language: str = ""
    call_id: str = ""
    name: str = ""
    arguments: dict[str, Any] | None = None
    images: list[dict[str, str]] = field(default_factory=list)  # {"mime_type", "data" (base64)}
    partial: str = ""  # a function call's arguments as streamed so far (JSON text)


@dataclass
class Transcript:
    interaction_id: str | None = None
    status: str | None = None
    model: str | None = None
    agent: str | None = None
    environment_id: str | None = None  # an agent's sandbox, reused by the thread's next turn
    created: str | None = None  # the server's times (ISO 8601), as the resource gives them
    updated: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    parts: dict[int, Part] = field(default_factory=dict)
    last_event_id: str | None = None
    error: str | None = None
    events: int = 0
    earlier: list[Part] = field(default_factory=list)  # parts of previous tool rounds
    counted_steps: int = 0  # steps a watcher counted (the gateway's job row) but did not read

    # --- feeding -------------------------------------------------------------------------

    def feed(self, event: Any) -> None:
        """Apply one SDK stream event (google.genai.interactions.*Event objects)."""
        self.events += 1
        event_id = getattr(event, "event_id", None)
        if event_id:
            self.last_event_id = event_id
        kind = getattr(event, "event_type", None)
        if kind in ("interaction.created", "interaction.completed"):
            self._take_interaction(event.interaction)
        elif kind == "interaction.status_update":
            self.status = event.status or self.status
            self._take_usage(event.usage)
        elif kind == "step.start":
            self.parts[event.index] = _part_from_step(_dump(event.step))
        elif kind == "step.delta":
            part = self.parts.setdefault(event.index, Part(kind="answer"))
            _apply_delta(part, _dump(event.delta))
        elif kind == "step.stop":
            self._take_usage(getattr(event, "usage", None))
        elif kind == "error":
            error = getattr(event, "error", None)
            message = getattr(error, "message", None) or "the interaction failed"
            self.error = message
            self.status = "failed"

    def _take_interaction(self, interaction: Any) -> None:
        self.interaction_id = getattr(interaction, "id", None) or self.interaction_id
        self.status = getattr(interaction, "status", None) or self.status
        self.model = getattr(interaction, "model", None) or self.model
        self.agent = getattr(interaction, "agent", None) or self.agent
        self.environment_id = getattr(interaction, "environment_id", None) or self.environment_id
        self.created = getattr(interaction, "created", None) or self.created
        self.updated = getattr(interaction, "updated", None) or self.updated
        self._take_usage(getattr(interaction, "usage", None))
        steps = getattr(interaction, "steps", None)
        if steps and not self.parts:
            self.parts = {i: _part_from_step(_dump(s)) for i, s in enumerate(steps)}
        elif steps:
            # Images of code results come only with the whole step (deltas carry text).
            for index, step in enumerate(steps):
                part = self.parts.get(index)
                if part is not None and part.kind == "result" and not part.images:
                    part.images = _images_of(_dump(step).get("result"))

    def _take_usage(self, usage: Any) -> None:
        if usage:
            self.usage = {k: v for k, v in _dump(usage).items() if isinstance(v, int)}

    @classmethod
    def from_interaction(cls, interaction: Any) -> Transcript:
        """A transcript from a whole Interaction (a unary create/get result)."""
        transcript = cls()
        transcript._take_interaction(interaction)
        errors = getattr(interaction, "errors", None)
        if errors:
            transcript.error = "; ".join(getattr(e, "message", "") or "" for e in errors) or None
        return transcript

    # --- reading -------------------------------------------------------------------------

    @property
    def answered(self) -> bool:
        """An answer the thread moves on from: completed, paused or stopped by a limit,
        without an error."""
        return moves_head(self.status, bool(self.error))

    @property
    def done(self) -> bool:
        return self.status in SETTLED

    def ordered(self) -> list[Part]:
        return [*self.earlier, *(p for _, p in sorted(self.parts.items()))]

    @property
    def text(self) -> str:
        """The answer: the text of the model_output steps, in order."""
        return "".join(p.text for p in self.ordered() if p.kind == "answer")

    @property
    def steps(self) -> int:
        return max(len(self.earlier) + len(self.parts), self.counted_steps)

    def lacks_result_images(self) -> bool:
        """True if code results may carry images the stream could not: deltas carry only
        text, the whole steps (GET) carry images too."""
        return any(p.kind == "result" and not p.images for p in self.parts.values())

    def take_steps(self, interaction: Any) -> None:
        """Merge a fetched interaction's whole steps (their images) into this transcript."""
        self._take_interaction(interaction)

    def function_calls(self) -> list[Part]:
        return [p for _, p in sorted(self.parts.items()) if p.kind == "call" and p.call_id]

    def markdown(self, note: bool = True) -> str:
        """Thoughts and tool activity set apart from the answer, which comes last; then the
        note on why it ended (unless not `note`)."""
        return "\n\n".join(self._told(note, markdown=True))

    def note(self) -> tuple[str, str] | None:
        """Why it ended, if not plainly: the error, or the limit that stopped it (as
        Markdown, and as plain text)."""
        if self.error:
            return f"**Error:** {self.error}", f"[error] {self.error}"
        if self.status in STOPPED_EARLY:
            why = STOPPED_EARLY[self.status]
            return f"*({self.status}: {why})*", f"[{self.status}] {why}"
        return None

    def plain(self, note: bool = True) -> str:
        """Deterministic plain text (nbval compares it): steps in brackets, then the answer."""
        return "\n".join(self._told(note, markdown=False))

    def _told(self, note: bool, *, markdown: bool) -> list[str]:
        """The parts in order, as Markdown blocks or plain lines: an answer as its text
        (nothing while it has none), any other step as `_markdown_blocks` or `_plain_line`
        tells it; then, unless not `note`, why it ended."""
        told: list[str] = []
        for part in self.ordered():
            if part.kind != "answer":
                told.extend(_markdown_blocks(part) if markdown else [_plain_line(part)])
            elif part.text:
                told.append(part.text)
        ending = self.note() if note else None
        if ending:
            told.append(ending[0] if markdown else ending[1])
        return told


def _markdown_blocks(part: Part) -> list[str]:
    """A step (not the answer) as Markdown: a thought quoted, code and tool calls fenced, a
    result fenced with its images inline."""
    if part.kind == "thought":
        quoted = "\n".join(f"> {line}" for line in (part.text or "…").splitlines())
        return [f"> **Thought**\n>\n{quoted}"]
    if part.kind == "code":
        return [f"**{part.title}**\n\n```{part.language}\n{part.text}\n```"]
    if part.kind == "call":
        return [f"**Tool call** `{part.title}`\n\n```json\n{part.text}\n```"]
    if part.kind == "result":
        text = part.text.rstrip()
        # An image-only result (a plot) shows the image, not an empty fence.
        fenced = text or not part.images
        shown = f"**{part.title}**\n\n```\n{text}\n```" if fenced else f"**{part.title}**"
        images = [
            f"![{image['mime_type']} output](data:{image['mime_type']};base64,{image['data']})"
            for image in part.images
        ]
        return [shown, *images]
    return [f"*{part.title}* {part.text}".strip()] if part.text or part.title else []


def _plain_line(part: Part) -> str:
    """A step (not the answer) as one plain line: what it is in brackets, then its text."""
    what = "thought" if part.kind == "thought" else part.title
    return f"[{what}] {part.text}".rstrip()


def _dump(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.model_dump(mode="json", exclude_none=True)


def _text_of(content: Any) -> str:
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(_text_of(c) for c in content)
    return "" if content is None else str(content)


def _part_from_step(step: dict[str, Any]) -> Part:
    kind = step.get("type", "")
    if kind == "model_output":
        error = step.get("error") or {}
        text = _text_of(step.get("content"))
        if error.get("message"):
            return Part(kind="other", title="error", text=error["message"])
        return Part(kind="answer", text=text)
    if kind == "thought":
        return Part(kind="thought", text=_text_of(step.get("summary")))
    if kind == "function_call":
        arguments = step.get("arguments") or {}
        return Part(
            kind="call",
            title=step.get("name", "function"),
            name=step.get("name", ""),
            call_id=step.get("id", ""),
            arguments=dict(arguments),
            text=json.dumps(arguments, sort_keys=True) if arguments else "",
        )
    if kind == "code_execution_call":
        arguments = step.get("arguments") or {}
        return Part(
            kind="code",
            title="Code",
            text=arguments.get("code", ""),
            language=arguments.get("language", "python"),
        )
    if kind.endswith("_result"):
        title = "Output" if kind == "code_execution_result" else kind.replace("_", " ")
        result = step.get("result")
        return Part(
            kind="result", title=title, text=_result_text(result), images=_images_of(result)
        )
    if kind == "user_input":
        return Part(kind="other", title="input", text=_text_of(step.get("content")))
    if kind.endswith("_call"):
        arguments = step.get("arguments")
        text = json.dumps(arguments, sort_keys=True) if arguments else ""
        return Part(kind="call", title=step.get("name") or kind.replace("_", " "), text=text)
    return Part(kind="other", title=kind or "step")


def _images_of(result: Any) -> list[dict[str, str]]:
    if not isinstance(result, list):
        return []
    return [
        {"mime_type": str(block.get("mime_type", "image/png")), "data": str(block["data"])}
        for block in result
        if isinstance(block, dict) and block.get("type") == "image" and block.get("data")
    ]


def _result_text(result: Any) -> str:
    return "" if result is None else result_text(result, _text_of)


def _apply_delta(part: Part, delta: dict[str, Any]) -> None:
    kind = delta.get("type", "")
    if kind == "text":
        part.text += delta.get("text", "")
    elif kind == "thought_summary":
        part.text += _text_of(delta.get("content"))
    elif kind == "arguments_delta":
        part.partial += delta.get("arguments") or ""
        try:
            part.arguments = json.loads(part.partial)
        except ValueError:
            part.text = part.partial  # still partial JSON: shown as it comes
        else:
            part.text = json.dumps(part.arguments, sort_keys=True)
    elif kind == "code_execution_call":
        arguments = delta.get("arguments") or {}
        part.kind, part.title = "code", "Code"
        part.text += arguments.get("code", "")
        part.language = arguments.get("language", part.language or "python")
    elif kind.endswith("_result"):
        part.kind = "result"
        part.title = part.title or ("Output" if kind == "code_execution_result" else kind)
        part.text += _result_text(delta.get("result"))
    elif kind.endswith("_call"):
        arguments = delta.get("arguments")
        part.kind = "call"
        part.title = part.title or delta.get("name") or kind.replace("_", " ")
        part.text += json.dumps(arguments, sort_keys=True) if arguments else ""
