"""Function tools for the kernel side: Python callables declared to a model from their
signature and docstring, run here when the model calls them, their results sent back."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

from .errors import InteractionFailed, RequestError
from .render.transcript import Part

BUILTIN_TOOLS = frozenset({"code_execution", "google_search", "url_context", "google_maps"})
# Rounds of function results sent back in one `ask` before it gives up (Session.max_tool_rounds).
MAX_TOOL_ROUNDS = 8
# What a function-result turn sends again: system instruction, tools and generation settings
# belong to each interaction; previous_interaction_id carries the conversation, not them.
_RESENT = (
    "model",
    "agent",
    "agent_config",
    "system_instruction",
    "tools",
    "generation_config",
    "response_format",
    "extra_headers",
)


def tool_declarations(tools: Iterable[Any]) -> tuple[list[dict[str, Any]], dict[str, Callable]]:
    """Wire tool declarations, and the Python callables that answer function calls."""
    declared: list[dict[str, Any]] = []
    functions: dict[str, Callable[..., Any]] = {}
    for tool in tools:
        if isinstance(tool, dict):
            declared.append(tool)
        elif isinstance(tool, str):
            if tool not in BUILTIN_TOOLS:
                raise RequestError(
                    f"unknown tool {tool!r}; use one of {sorted(BUILTIN_TOOLS)} "
                    "or the name of a Python function",
                    "tools",
                )
            declared.append({"type": tool})
        elif callable(tool):
            declared.append(function_declaration(tool))
            functions[tool.__name__] = tool
        else:
            raise RequestError(
                f"a tool must be a name, a dict or a function, not {tool!r}", "tools"
            )
    return declared, functions


_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array"}


def function_declaration(function: Callable[..., Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(function).parameters.items():
        kind = _JSON_TYPES.get(param.annotation, "string")
        if isinstance(param.annotation, str):
            kind = {"int": "integer", "float": "number", "bool": "boolean"}.get(
                param.annotation, "string"
            )
        properties[name] = {"type": kind}
        if param.default is inspect.Parameter.empty:
            required.append(name)
    return {
        "type": "function",
        "name": function.__name__,
        "description": inspect.getdoc(function) or function.__name__,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


def run_function(functions: dict[str, Callable[..., Any]], call: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "function_result", "call_id": call.call_id, "name": call.name}
    function = functions.get(call.name)
    try:
        if function is None:
            raise LookupError(f"no function named {call.name!r} was given with --tools")
        value = function(**(call.arguments or {}))
        result["result"] = value if isinstance(value, str | dict | list) else str(value)
    except Exception as exc:  # the model sees the failure and can react to it
        result.update(result=f"{type(exc).__name__}: {exc}", is_error=True)
    return result


def result_part(result: dict[str, Any]) -> Part:
    text = result["result"]
    text = text if isinstance(text, str) else json.dumps(text, sort_keys=True)
    title = f"{result['name']} {'failed' if result.get('is_error') else 'result'}"
    return Part(kind="result", title=title, text=text)


def follow_up(
    args: dict[str, Any], interaction_id: str | None, results: list[Any]
) -> dict[str, Any]:
    """The create arguments that send function `results` back, continuing `interaction_id`
    with everything the first turn asked of the model."""
    kept = {k: v for k, v in args.items() if k in _RESENT}
    return {**kept, "previous_interaction_id": interaction_id, "input": results}


def too_many_rounds(rounds: int, interaction_id: str | None) -> InteractionFailed:
    """The error when a model still calls functions after `rounds` rounds of results."""
    return InteractionFailed(
        f"the model still calls functions after {rounds} rounds of results (interaction "
        f"{interaction_id}); the thread is unchanged. Check what the functions return, or "
        "allow more rounds with session.max_tool_rounds",
        interaction_id,
        "requires_action",
    )
