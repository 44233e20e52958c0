"""`scripted`: a deterministic model that runs the code blocks of the user's message, one per turn.

Every fenced code block in the latest user message is one step: ```python, ```py,
```python3 and a bare ``` are Python; ```bash, ```sh and ```shell are bash; blocks in other
languages are not code to run. With a `run_code` tool in the request (as the local agent
offers), each model turn calls it for the next block:
`ToolCall(id="call_<turn>_<step>", name="run_code", arguments={"code": ..., "language":
"python" | "bash"})` then `Finish("tool_calls")`. The agent runs it and appends a
role="tool" message; the model counts those results after the latest user message to know
which block comes next. When every block has run (or there was none) it answers, in a few
text deltas, "Ran N code blocks. Last output:" and the last result in a fence (if it has
text), mentioning any step that failed (the following blocks still run), then `Usage` and
`Finish("stop")`.

Without a `run_code` tool (plain model use) nothing can run, so it answers with the blocks
it would run, or "No code blocks to run." The same request always gives the same events,
ids included; token counts are whitespace-separated words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .base import COMMON_GENERATION_FIELDS, Message, Model, ModelEvent, ModelRequest, ToolCall
from .code_fences import Language, fenced_code
from .echo import answer_events, tool_call_events

TOOL = "run_code"


def code_blocks(text: str) -> list[tuple[Language, str]]:
    """The runnable fenced blocks of a user's message, in order: a bare ``` fence is Python."""
    return fenced_code(text, bare="python")


class ScriptedModel(Model):
    generation_fields = COMMON_GENERATION_FIELDS

    def __init__(self, name: str = "scripted", chunks: int = 4, **options: Any) -> None:
        super().__init__(name, **options)
        self.chunks = int(chunks)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        messages = request.messages
        latest = _latest_user(messages)
        blocks = code_blocks(messages[latest].text) if latest is not None else []
        results = [m for m in messages[(latest or 0) + 1 :] if m.role == "tool"]
        can_run = any(tool.name == TOOL for tool in request.tools)
        if can_run and len(results) < len(blocks):
            step = len(results)
            language, code = blocks[step]
            turn = sum(1 for m in messages if m.role == "user")
            run_step = ToolCall(
                id=f"call_{turn}_{step + 1}",
                name=TOOL,
                arguments={"code": code, "language": language},
            )
            for event in tool_call_events(run_step, request, output_tokens=len(code.split())):
                yield event
            return
        text = _summary(blocks, results) if can_run else _plan(blocks)
        for event in answer_events(text, self.chunks, request):
            yield event


def _latest_user(messages: tuple[Message, ...]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return None


def _plural(count: int) -> str:
    return f"{count} code block" + ("" if count == 1 else "s")


def _summary(blocks: list[tuple[Language, str]], results: list[Message]) -> str:
    if not blocks:
        return "No code blocks to run."
    text = f"Ran {_plural(len(blocks))}."
    failed = [str(i + 1) for i, result in enumerate(results[: len(blocks)]) if result.is_error]
    if failed:
        text += f" Failed: block{'s' if len(failed) > 1 else ''} {', '.join(failed)}."
    last = results[len(blocks) - 1].text.rstrip("\n") if results else ""
    if not last:  # e.g. a plot: the step shows it, there is no text to quote
        return text
    return f"{text} Last output:\n```\n{last}\n```"


def _plan(blocks: list[tuple[Language, str]]) -> str:
    if not blocks:
        return "No code blocks to run."
    shown = "\n".join(f"```{language}\n{code}\n```" for language, code in blocks)
    return f"Would run {_plural(len(blocks))} (no {TOOL} tool was offered):\n{shown}"
