"""The local agent (`local-agent`, and custom agents built on it): a model drives code in its
environment's live sandbox, step by step, within step, token and wall-time budgets.

Each loop turn streams one model turn. Its `run_code` calls (or, for a model too weak to call
tools, the fenced ```python / ```bash blocks of its text: the "code block protocol") run in
the sandbox as `code_execution_call` / `code_execution_result` steps, the output streamed as
it comes; other function tools pause the interaction at requires_action, as plain model
turns do. A turn with no code is the answer, and ends the run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from ...errors import RequestError, SandboxError
from ...sandbox.base import RunError, RunResult
from ..environments.sandboxes import Lease, LiveSandboxes
from ..models.base import (
    Message,
    Model,
    ModelRequest,
    ToolCall,
    ToolSpec,
)
from ..models.code_fences import LANGUAGES, Language, fenced_code
from .emitter import Emitter
from .executors import AgentContext
from .mcp import McpTools
from .model_turn import generation_settings, stream_turn

__all__ = ["AGENT_NAME", "RUN_CODE", "Budget", "LocalAgent"]

# The name its log lines have always carried (servers' logs and filters match it).
log = logging.getLogger("jupyter_interactions.gateway.agents")

AGENT_NAME = "local-agent"
DEFAULT_MODEL = "local"
INTERRUPT_SECONDS = 5.0
DEFAULT_TURN_TOKENS = 1024
RUN_CODE = ToolSpec(
    name="run_code",
    description=(
        "Run code in your sandbox, a persistent kernel whose working directory is workspace/. "
        "Variables and files persist between calls. Returns the output."
    ),
    parameters={
        "type": "object",
        "properties": {
            "code": {"type": "string", "description": "the code to run"},
            "language": {"type": "string", "enum": ["python", "bash"]},
        },
        "required": ["code"],
    },
)
SYSTEM_PROMPT = """\
You are an agent with a sandbox: a persistent Python kernel whose working directory is \
workspace/. Variables and files persist between steps.
To run code, call the run_code tool, or write one fenced code block like this:
```python
print(2 + 2)
```
You will then see its output and can take another step. Save files the user asked for in \
the working directory. When you are done, answer in plain text, without code blocks."""


@dataclass(frozen=True)
class Budget:
    """Limits of one agent interaction (from `agent_config`; int64s may arrive as strings)."""

    max_steps: int = 12
    max_total_tokens: int | None = None
    max_wall_seconds: float = 600.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Budget:
        def number(key: str, kind: type, default: Any) -> Any:
            value = config.get(key)
            if value is None:
                return default
            try:
                parsed = kind(value)
            except (TypeError, ValueError):
                parsed = None
            if parsed is None or parsed <= 0:
                raise RequestError(f"agent_config.{key} must be a positive number, not {value!r}")
            return parsed

        return cls(
            max_steps=number("max_steps", int, cls.max_steps),
            max_total_tokens=number("max_total_tokens", int, None),
            max_wall_seconds=number("max_wall_seconds", float, cls.max_wall_seconds),
        )


def turn_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Each model turn's settings, from agent_config (agents get no generation_config):
    temperature, top_p, seed, and max_output_tokens, capped by default so that one rambling
    turn of a small model cannot use up the whole wall-time budget."""
    keys = ("temperature", "top_p", "seed", "max_output_tokens")
    chosen = {k: config[k] for k in keys if config.get(k) is not None}
    generation = generation_settings({"generation_config": chosen})
    if generation.get("max_output_tokens") is None:
        generation["max_output_tokens"] = DEFAULT_TURN_TOKENS
    return generation


class _BudgetHit(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LocalAgent:
    """The `local-agent` runner registered in `Engine.agents`."""

    def __init__(self, sandboxes: LiveSandboxes, environments: Any) -> None:
        self.sandboxes = sandboxes
        self.environments = environments

    async def run(self, ctx: AgentContext) -> None:
        """An agent's run, or a model call's whose tools run here (`ctx.model` set: its own
        model and generation_config, code only if it asked for code_execution)."""
        definition = ctx.definition or {}
        config = {**(definition.get("agent_config") or {}), **(ctx.body.get("agent_config") or {})}
        budget = Budget.from_config(config)
        model = ctx.models.get(ctx.model or str(config.get("model") or DEFAULT_MODEL))
        generation = turn_settings(config) if ctx.generation is None else ctx.generation
        async with McpTools(ctx.mcp) as mcp:
            if not ctx.code_execution:
                await _Loop(ctx, model, budget, generation, None, mcp).run()
                return
            await self._run_with_sandbox(ctx, model, budget, generation, mcp)

    async def _run_with_sandbox(
        self, ctx: AgentContext, model: Model, budget: Budget, generation: Any, mcp: McpTools
    ) -> None:
        if ctx.environment_id is None or ctx.environment_root is None:
            raise SandboxError("this agent needs an environment; the gateway has none configured")
        setup = await self.environments.sandbox_setup(ctx.environment_id)
        acquiring = asyncio.ensure_future(
            self.sandboxes.acquire(ctx.environment_id, ctx.environment_root, setup)
        )
        try:
            await _Loop(ctx, model, budget, generation, acquiring, mcp).run()
        finally:
            # The sandbox outlives the turn (the next one reuses it); only the lease ends,
            # even if the sandbox is still starting.
            acquiring.add_done_callback(self._release)

    def _release(self, acquiring: asyncio.Future[Lease]) -> None:
        if acquiring.cancelled() or acquiring.exception() is not None:
            return
        self.sandboxes.release(acquiring.result())


class _Loop:
    """One agent interaction: model turns and the code they ask for, until an answer."""

    def __init__(
        self,
        ctx: AgentContext,
        model: Model,
        budget: Budget,
        generation: dict[str, Any],
        acquiring: asyncio.Future[Lease] | None,
        mcp: McpTools,
    ) -> None:
        self.ctx = ctx
        self.emitter: Emitter = ctx.emitter
        self.model = model
        self.budget = budget
        self.generation = generation
        self.acquiring = acquiring  # None: no code execution in this run
        self.mcp = mcp
        self.messages = list(ctx.messages)
        self.client_tools = {tool.name for tool in ctx.tools}
        own = (RUN_CODE,) if acquiring is not None else ()
        taken = {t.name for t in (*own, *mcp.specs)}
        self.tools = (*own, *mcp.specs, *(t for t in ctx.tools if t.name not in taken))
        prompts = [SYSTEM_PROMPT if acquiring is not None else "", ctx.system_instruction or ""]
        self.system = "\n\n".join(p for p in prompts if p) or None
        self.deadline = time.monotonic() + budget.max_wall_seconds
        self.actions = 0
        self.calls = sum(len(m.tool_calls) for m in ctx.messages)
        self.structured = False  # the model called a tool: it needs no code block protocol

    async def run(self) -> None:
        try:
            while True:
                text, calls, reason = await self._model_turn()
                self._check_tokens()
                if not calls and not self.structured and self.acquiring is not None:
                    calls = [
                        self._protocol_call(lang, code)
                        for lang, code in fenced_code(text, unclosed=True)
                    ]
                if not calls:
                    if reason == "length":
                        self.emitter.status = "incomplete"
                    return
                self.messages.append(Message("assistant", text, tuple(calls)))
                paused = False
                for call in calls:
                    if call.name == RUN_CODE.name and self.acquiring is not None:
                        self.messages.append(await self._run_code(call))
                    elif self.mcp.handles(call.name):
                        self._take_step()
                        self.messages.append(
                            await self.mcp.call(call, self.emitter, self._remaining())
                        )
                    elif call.name in self.client_tools:
                        self._function_call(call)
                        paused = True
                    else:
                        self.messages.append(self._unknown_tool(call))
                if paused:
                    return  # requires_action: the client answers with function_result
        except _BudgetHit as hit:
            self.emitter.close_all()
            index = self.emitter.start({"type": "model_output", "content": []})
            self.emitter.text(index, hit.message)
            self.emitter.stop(index)
            self.emitter.status = hit.status

    # -- model turns ----------------------------------------------------------------------------

    async def _model_turn(self) -> tuple[str, list[ToolCall], str]:
        remaining = self._remaining()
        try:
            return await asyncio.wait_for(self._stream_turn(), remaining)
        except asyncio.TimeoutError:
            self._wall_hit()
            raise  # unreachable: _wall_hit raises

    async def _stream_turn(self) -> tuple[str, list[ToolCall], str]:
        request = ModelRequest(
            messages=tuple(self.messages),
            system_instruction=self.system,
            tools=self.tools,
            generation=self.generation,
        )
        calls: list[ToolCall] = []
        text, reason = await stream_turn(self.model, request, self.emitter, calls.append)
        self.structured = self.structured or bool(calls)
        return text, calls, reason

    def _protocol_call(self, language: Language, code: str) -> ToolCall:
        self.calls += 1
        return ToolCall(
            id=f"call_{self.calls}",
            name=RUN_CODE.name,
            arguments={"code": code, "language": language},
        )

    # -- actions --------------------------------------------------------------------------------

    def _take_step(self) -> None:
        """Count one action (code run or MCP call) against the step budget."""
        if self.actions >= self.budget.max_steps:
            raise _BudgetHit(
                "incomplete",
                f"Stopped before finishing: this agent used all {self.budget.max_steps} steps "
                f"of its budget. Raise agent_config max_steps (now {self.budget.max_steps}), or "
                "continue with previous_interaction_id.",
            )
        self.actions += 1

    async def _run_code(self, call: ToolCall) -> Message:
        self._take_step()
        remaining = self._remaining()
        language = LANGUAGES.get(str(call.arguments.get("language") or "python").lower())
        code = str(call.arguments.get("code") or "")
        lease, note = await self._lease()
        emitter = self.emitter
        # The call's step (its code in a delta) ends before the code runs: a live view shows
        # the code as soon as it starts.
        shown = {"code": code, "language": language or call.arguments.get("language")}
        emitter.add({"type": "code_execution_call", "id": call.id, "arguments": shown})
        if language is None:
            return self._result(call, "language must be 'python' or 'bash'; nothing ran", True)
        index = emitter.start({"type": "code_execution_result", "call_id": call.id, "result": ""})
        sink = _OutputSink(self.emitter, index)
        sandbox = lease.sandbox
        timeout = min(sandbox.limits.wall_seconds, remaining)
        try:
            result = await sandbox.run(
                code, language=language, timeout=timeout, on_output=sink.on_output
            )
        except asyncio.CancelledError:
            await _interrupt(sandbox)
            sink.closed = True
            emitter.delta(
                index,
                {
                    "type": "code_execution_result",
                    "result": "\n[interrupted: the interaction was cancelled]\n",
                    "is_error": True,
                },
            )
            emitter.stop(index)
            raise
        except SandboxError as exc:
            result = RunResult(error=RunError(type(exc).__name__, exc.message))
        await asyncio.sleep(0)  # output handed over from other threads lands first
        sink.closed = True
        full = "".join(sink.streamed)
        tail, images = _tail(result)
        is_error = not result.ok
        emitter.delta(
            index, {"type": "code_execution_result", "result": tail, "is_error": is_error}
        )
        full += tail
        if images:
            # The step may carry content (text, then the images); a delta only text.
            emitter.steps[index]["result"] = [{"type": "text", "text": full}, *images]
        emitter.stop(index)
        await emitter.drain()
        if time.monotonic() >= self.deadline:
            self._wall_hit()
        # The model reads the sandbox's note with the result; the user saw it as a thought.
        told = f"[{note}]\n{full}" if note else full
        return Message("tool", told, tool_call_id=call.id, name=RUN_CODE.name, is_error=is_error)

    async def _lease(self) -> tuple[Lease, str]:
        """The turn's sandbox, and its notes (shown now, once, as a thought), if any."""
        assert self.acquiring is not None
        lease = await asyncio.shield(self.acquiring)
        if not lease.notes:
            return lease, ""
        notes, lease.notes = lease.notes, []
        note = "Sandbox: " + " ".join(notes)
        content = {"type": "text", "text": note}
        index = self.emitter.start({"type": "thought", "summary": []})
        self.emitter.delta(index, {"type": "thought_summary", "content": content})
        self.emitter.stop(index)
        return lease, note

    def _function_call(self, call: ToolCall) -> None:
        step = {"type": "function_call", "id": call.id, "name": call.name}
        self.emitter.add({**step, "arguments": call.arguments})

    def _unknown_tool(self, call: ToolCall) -> Message:
        known = ", ".join(tool.name for tool in self.tools)
        text = f"there is no tool {call.name!r}; use one of: {known}"
        return Message("tool", text, tool_call_id=call.id, name=call.name, is_error=True)

    def _result(self, call: ToolCall, text: str, is_error: bool) -> Message:
        step = {"type": "code_execution_result", "call_id": call.id}
        self.emitter.add({**step, "result": text, "is_error": is_error})
        return Message("tool", text, tool_call_id=call.id, name=RUN_CODE.name, is_error=is_error)

    # -- budgets --------------------------------------------------------------------------------

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self._wall_hit()
        return remaining

    def _wall_hit(self) -> None:
        seconds = f"{self.budget.max_wall_seconds:g}"
        raise _BudgetHit(
            "incomplete",
            f"Stopped before finishing: this agent ran out of time ({seconds} s). Raise "
            f"agent_config max_wall_seconds (now {seconds}), or continue with "
            "previous_interaction_id.",
        )

    def _check_tokens(self) -> None:
        limit = self.budget.max_total_tokens
        used = self.emitter.usage.get("total_tokens", 0)
        if limit is not None and used > limit:
            raise _BudgetHit(
                "budget_exceeded",
                f"Stopped: this agent used {used} tokens, over its budget of {limit}. Raise "
                f"agent_config max_total_tokens (now {limit}) to let it go further.",
            )


class _OutputSink:
    """The sandbox's on_output callback: streams into the open result step, from any thread
    (it hops onto the loop when called from elsewhere)."""

    def __init__(self, emitter: Emitter, index: int) -> None:
        self.emitter = emitter
        self.index = index
        self.streamed: list[str] = []
        self.closed = False
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()

    def on_output(self, name: str, text: str) -> None:
        if threading.get_ident() == self.loop_thread:
            self.push(text)
        else:
            self.loop.call_soon_threadsafe(self.push, text)

    def push(self, text: str) -> None:
        if self.closed:
            return  # the step has ended (cancel, or output that straggled in)
        self.streamed.append(text)
        self.emitter.delta(self.index, {"type": "code_execution_result", "result": text})


def _tail(result: RunResult) -> tuple[str, list[dict[str, Any]]]:
    """What a run produced besides its streamed output: rich results (as text, and images as
    content blocks only: no placeholder text, the step carries the image), the error and the
    time-out note."""
    parts: list[str] = []
    images: list[dict[str, Any]] = []
    for bundle in result.outputs:
        for mime in ("image/png", "image/jpeg", "image/svg+xml"):
            if mime in bundle:
                images.append({"type": "image", "data": _b64(bundle[mime]), "mime_type": mime})
                break
        else:
            if "text/plain" in bundle:
                parts.append(str(bundle["text/plain"]) + "\n")
    parts.extend(result.closing_lines())
    return "".join(parts), images


def _b64(data: Any) -> str:
    """Kernels send binary mime data base64-encoded already (SVG is plain text)."""
    if isinstance(data, str):
        if data.lstrip().startswith("<"):
            return base64.b64encode(data.encode()).decode()
        return data.replace("\n", "")
    return str(data)


async def _interrupt(sandbox: Any) -> None:
    """Stop the running code so the sandbox is usable for the next turn (best effort)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(sandbox.interrupt()), INTERRUPT_SECONDS)
