"""What each kind of target can honour: tools, output modalities, input media and, for a
model, the generation settings and output schema it declares (models/base.py), decided once at
create, before anything is stored.

A request that runs here (a local model, the local agent or an agent built on it) gets each
feature it asks for, or a 400 that names the feature and says what would make it work. A
request forwarded to Google's service is not checked here: Google decides. The table:

| feature                          | local model / local agent                  | forwarded   |
| -------------------------------- | ------------------------------------------ | ----------- |
| `function` tools                 | works (requires_action)                    | forwarded   |
| `code_execution`                 | works: code runs in a sandbox              | forwarded   |
| `mcp_server`                     | works for a loopback or allowlisted url    | forwarded   |
| `google_search`, `url_context`,  | refused: Google's service runs them        | forwarded   |
| `google_maps`, `file_search`,    |                                            |             |
| `retrieval`, `computer_use`,     |                                            |             |
| `tool_search`                    |                                            |             |
| `response_modalities` text       | works                                      | forwarded   |
| `response_modalities` other      | refused: the local models write text       | forwarded   |
| text input, text documents       | works (a text document is read as text)    | forwarded   |
| image, audio, video, other docs  | refused, unless the model reads that kind  | forwarded   |
| `generation_config` fields       | those the model declares; others refused   | forwarded   |
| `tool_choice` modes              | those the model declares; others refused   | forwarded   |
| `tool_choice` beside tools that  | only "auto" (the tool loop's); others      | forwarded   |
| run here                         | refused                                    |             |
| `response_format` JSON schema    | where the model declares it (`local`)      | forwarded   |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import RequestError, UnsupportedError
from ...sandbox.egress import Allowlist
from ..models.base import TEXT_ONLY, Model, ModelRequest
from .history import input_steps, readable_document
from .mcp import McpServer, mcp_servers, reach_refusal
from .model_turn import model_request

__all__ = ["TEXT_ONLY", "Plan", "check_request", "check_tools"]

# Tools this gateway runs itself; every other documented tool type needs Google's service.
LOCAL_TOOLS = frozenset({"function", "code_execution", "mcp_server"})
GOOGLE_TOOLS = {
    "google_search": "searches the web",
    "url_context": "fetches web pages",
    "google_maps": "asks Google Maps",
    "file_search": "searches Google's file search stores",
    "retrieval": "searches Google's retrieval stores",
    "computer_use": "drives a browser with Google's computer-use models",
    "tool_search": "searches deferred tool definitions with Google's models",
}
_SENT_CONTENT = {"user_input": "content", "function_result": "result"}
_GEMINI_HINT = "set GEMINI_API_KEY for the gateway and use a gemini-* model or a Google agent"


@dataclass(frozen=True)
class Plan:
    """What a local run must provide beyond a model turn: a sandbox for `code_execution`,
    connections to `mcp_server` tools."""

    who: str = ""
    code_execution: bool = False
    mcp: tuple[McpServer, ...] = ()

    @property
    def needs_loop(self) -> bool:
        """Whether a model call needs the tool loop (server-side tools between turns)."""
        return self.code_execution or bool(self.mcp)

    def check_reach(self, allowlist: Allowlist | None) -> None:
        """Refuse MCP servers the run may not connect to, once its environment's network
        allowlist is known (loopback needs none)."""
        for server in self.mcp:
            refusal = reach_refusal(server, allowlist)
            if refusal:
                raise UnsupportedError(f"{self.who}: {refusal}")


def check_request(
    body: dict[str, Any], *, who: str, model: Model | None = None, tools: Any = None
) -> Plan:
    """Refuse what `who` (e.g. "model 'local'") cannot honour; return what it must provide
    (then `Plan.check_reach` with its environment's allowlist). `model` is the model a model
    call runs on (what it declares is checked too); `tools` the tools in force if not the
    request's own (a saved agent's)."""
    plan = check_tools(body.get("tools") if tools is None else tools, who)
    _check_modalities(body.get("response_modalities"), who)
    _check_inputs(body.get("input"), who, model.input_modalities if model else TEXT_ONLY)
    if model is not None:
        _check_loop_tool_choice(body, who, plan)
        refusal = _unhonoured(model_request(body, []), model, who, plan)
        if refusal:
            raise UnsupportedError(refusal)
    return plan


def _check_loop_tool_choice(body: dict[str, Any], who: str, plan: Plan) -> None:
    """A model call with tools run here is a tool loop whose model always chooses among
    all its tools: any other `tool_choice` would be dropped, so it is refused."""
    config = body.get("generation_config")
    choice = config.get("tool_choice") if isinstance(config, dict) else None
    if plan.needs_loop and choice not in (None, "auto"):
        raise UnsupportedError(
            f"generation_config.tool_choice {choice!r} with code_execution or mcp_server "
            f"tools: {who} runs them in a tool loop where the model always chooses (auto); "
            "leave tool_choice out, or steer the choice in a turn with function tools only"
        )


def _unhonoured(request: ModelRequest, model: Model, who: str, plan: Plan) -> str | None:
    """The part of a model call `model` does not declare it honours: the wire field's name,
    then why and what to do instead."""
    for key in sorted(request.generation):
        if request.generation[key] is not None and key not in model.generation_fields:
            return (
                f"generation_config.{key}: {who} cannot honour it; remove it, or use a model "
                "that does (Gemini models with the gateway's key)"
            )
    choice = request.generation.get("tool_choice")
    if request.tools and choice is not None and choice not in model.tool_choices:
        known = sorted({*model.tool_choices, "none"})
        return (
            f"generation_config.tool_choice {choice!r}: {who} honours {known} or "
            "allowed_tools; use one of those, or a Gemini model with the gateway's key"
        )
    if request.output_schema is None:
        return None
    if not model.structured_output:
        return (
            f"response_format: {who} cannot hold its answer to a JSON schema; use "
            "model='local' (llama.cpp constrains its decoding to the schema), a configured "
            "OpenAI-compatible model whose server supports response_format, or a Gemini "
            "model with the gateway's key"
        )
    if plan.needs_loop:
        return (
            f"response_format with code_execution or mcp_server tools: {who} answers "
            "between tool calls, and those answers are not held to a schema; run the tools "
            "first and ask for the structured answer in the next turn without them"
        )
    if request.tools and not model.schema_with_tools:
        return (
            f"response_format with function tools: {who} can hold its answer to a schema "
            "or call functions, not both in one turn; send the function results first and "
            "ask for the structured answer without tools"
        )
    return None


def check_tools(tools: Any, who: str) -> Plan:
    """The tools `who` is given (a request's, or a saved agent's when it is created)."""
    if tools is None:
        return Plan(who)
    if not isinstance(tools, list):
        raise RequestError("tools must be a list of tool objects")
    code_execution = False
    for tool in tools:
        kind = str(tool.get("type", "")).lower() if isinstance(tool, dict) else ""
        if kind in GOOGLE_TOOLS:
            raise UnsupportedError(
                f"tool {kind!r} {GOOGLE_TOOLS[kind]}, which only Google's service does; "
                f"{who} runs offline and cannot: {_GEMINI_HINT}, or remove the tool"
            )
        if kind not in LOCAL_TOOLS:
            known = sorted({*LOCAL_TOOLS, *GOOGLE_TOOLS})
            raise RequestError(f"unknown tool type {kind or tool!r}; tool types are {known}")
        code_execution = code_execution or kind == "code_execution"
    return Plan(who, code_execution, tuple(mcp_servers(tools)))


def _check_modalities(modalities: Any, who: str) -> None:
    if modalities is None:
        return
    if not isinstance(modalities, list):
        modalities = [modalities]
    for modality in modalities:
        if str(modality).lower() != "text":
            raise UnsupportedError(
                f"response_modalities {str(modality).upper()}: {who} writes text only; for "
                f"images or audio {_GEMINI_HINT} that makes them (e.g. an image or TTS "
                "model), or ask for TEXT"
            )


def _check_inputs(value: Any, who: str, reads: frozenset[str]) -> None:
    """What the caller sends now: the user's content and function results (earlier steps
    of a replayed transcript, e.g. an agent's plots, are shown to the model as notes)."""
    for step in input_steps(value):
        field = _SENT_CONTENT.get(step["type"])
        blocks = step.get(field) if field else None
        for block in blocks if isinstance(blocks, list) else ():
            kind = str(block.get("type", "")).lower() if isinstance(block, dict) else "text"
            if kind == "text" or kind in reads or readable_document(block):
                continue
            mime = f" ({block['mime_type']})" if block.get("mime_type") else ""
            raise UnsupportedError(
                f"input {kind}{mime}: {who} reads text only and would not see it; describe it "
                f"in text, send a text document (text/*, JSON, CSV), or {_GEMINI_HINT} that "
                f"reads {kind}s"
            )
