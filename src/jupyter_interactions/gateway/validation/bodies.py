"""Request bodies of the wire, checked against google-genai's own pydantic types (one source
of truth: the types the SDK builds its requests from), plus what those types leave open and
the gateway cannot honour: JSON booleans for the input-only flags, finite numbers in range
for sampling and agent budgets, file paths within Linux's limits.

google-genai takes ~2 s to import, so its types load in a thread as soon as the routes are
made (`preload`); the first request that needs them waits for them without blocking.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
from dataclasses import dataclass
from typing import Any

from ...errors import RequestError
from ..environments.placement import FRESH_ENVIRONMENT
from . import rules
from .strict_json import INT64_MAX, INT64_MIN, field_name, walk

__all__ = [
    "agent_body",
    "auth_token_body",
    "environment_body",
    "interaction_body",
    "models_query",
    "preload",
]

# Sampling settings as the gateway's models can take them (Gemini's own ranges).
_SAMPLING: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 2.0, False),
    "top_p": (0.0, 1.0, False),
    "max_output_tokens": (1, 2**31 - 1, True),
    "seed": (-(2**31), 2**31 - 1, True),
}
# The local agent's budget (agents.Budget) and its turns' sampling, read from agent_config.
_AGENT_CONFIG: dict[str, tuple[float, float, bool]] = {
    **_SAMPLING,
    "max_steps": (1, 1000, True),
    "max_total_tokens": (1, INT64_MAX, True),
    "max_wall_seconds": (0.001, 7 * 24 * 3600, False),
}
_FLAGS = ("stream", "background", "store")


@dataclass(frozen=True)
class _SdkTypes:
    model_interaction: Any
    agent_interaction: Any
    environment: Any
    agent: Any
    auth_token: Any
    list_models: Any


_loading: concurrent.futures.Future[_SdkTypes] | None = None
_lock = threading.Lock()


def preload() -> None:
    """Start loading google-genai's request types in the background (idempotent)."""
    global _loading
    with _lock:
        if _loading is not None:
            return
        future: concurrent.futures.Future[_SdkTypes] = concurrent.futures.Future()
        _loading = future

    def load() -> None:
        try:
            from google.genai import agents, environments, interactions, types

            future.set_result(
                _SdkTypes(
                    model_interaction=interactions.CreateModelInteraction,
                    agent_interaction=interactions.CreateAgentInteraction,
                    environment=environments.CreateEnvironmentRequest,
                    agent=agents.Agent,
                    auth_token=interactions.InteractionAuthTokenCreateParams,
                    list_models=types.ListModelsConfig,
                )
            )
        except BaseException as exc:  # the waiting request reports it
            future.set_exception(exc)

    threading.Thread(target=load, name="sdk-types", daemon=True).start()


async def _types() -> _SdkTypes:
    preload()
    assert _loading is not None
    return await asyncio.wrap_future(_loading)


# -- one entry per body --------------------------------------------------------------------------


async def interaction_body(body: dict[str, Any]) -> None:
    """POST /interactions: CreateModelInteraction or CreateAgentInteraction."""
    for flag in _FLAGS:
        if flag in body and not isinstance(body[flag], bool):
            raise RequestError(f"{flag} must be true or false", field=flag)
    if bool(body.get("model")) == bool(body.get("agent")):
        raise RequestError("give exactly one of 'model' or 'agent'", field="model")
    types = await _types()
    kind = types.model_interaction if body.get("model") else types.agent_interaction
    _check(kind, body)
    _numbers(body.get("generation_config"), "generation_config", _SAMPLING)
    _agent_config(body.get("agent_config"), "agent_config")
    _environment(body.get("environment"), "environment")


async def agent_body(body: dict[str, Any]) -> None:
    """POST /agents: an Agent."""
    _check((await _types()).agent, body)
    _agent_config(body.get("agent_config"), "agent_config")
    _environment(body.get("base_environment"), "base_environment")


async def environment_body(body: dict[str, Any]) -> None:
    """POST /environments: a CreateEnvironmentRequest."""
    _check((await _types()).environment, body)
    _environment(body, "")


async def auth_token_body(body: dict[str, Any]) -> None:
    """POST /interactions/{id}/auth_tokens: InteractionAuthTokenCreateParams, and the
    gateway's `scope` and `uses` (auth_tokens.py says what each may be)."""
    _check((await _types()).auth_token, body)
    if body.get("uses") is not None:
        rules.number(body["uses"], "uses", 0, 2**31 - 1, whole=True)
    if body.get("scope") is not None and not isinstance(body["scope"], str):
        raise RequestError("scope must be a string: 'read' or 'live'", field="scope")


async def models_query(query: dict[str, str]) -> None:
    """GET /models: the query the SDK sends for models.list (pageSize, pageToken, filter,
    by their wire names), as google-genai's ListModelsConfig."""
    _check((await _types()).list_models, query)


# -- google-genai's types ------------------------------------------------------------------------


def _check(kind: Any, body: dict[str, Any]) -> None:
    """Validate `body` as the SDK type `kind`; then the values it coerced (a string "nan"
    is a float to it) must still be finite numbers an int64 can hold."""
    import pydantic

    view = _as_read(body)
    try:
        checked = kind.model_validate(view)
    except pydantic.ValidationError as exc:
        raise _named(exc, view, kind.__name__) from None
    except (TypeError, ValueError, KeyError, AttributeError):
        # The SDK's open unions look their `type` up in a dict: an object there breaks them.
        unhashable = (
            p for p, v in walk(view) if p[-1:] == ("type",) and isinstance(v, dict | list)
        )
        path = next(unhashable, ())
        raise RequestError(
            f"{field_name(path)} must be a string, as in google-genai's {kind.__name__}",
            field=field_name(path),
        ) from None
    for path, value in walk(checked.model_dump(mode="python", exclude_unset=True, warnings=False)):
        bad_float = isinstance(value, float) and not math.isfinite(value)
        bad_int = isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX
        if bad_float or bad_int:
            raise RequestError(
                f"{field_name(path)} must be a finite number an int64 can hold",
                field=field_name(path),
            )


def _as_read(value: Any, in_input: bool = False) -> Any:
    """The body as the gateway reads it: `type`s in any case (the reference allows
    "USER_INPUT"), and input blocks with `text` but no `type` are text blocks, as the SDK
    makes them before sending. Depth is bounded by the parser, so recursion is safe."""
    if isinstance(value, list):
        return [_as_read(item, in_input) for item in value]
    if not isinstance(value, dict):
        return value
    read = {key: _as_read(item, in_input or key == "input") for key, item in value.items()}
    if isinstance(read.get("type"), str):
        read["type"] = read["type"].lower()
    elif in_input and "type" not in read and "text" in read:
        read["type"] = "text"
    return read


def _named(exc: Any, view: dict[str, Any], type_name: str) -> RequestError:
    """The most specific of pydantic's errors, named by the field the user sent (pydantic's
    locations also hold the names of union branches, which mean nothing to a user)."""

    def sent_path(error: dict[str, Any]) -> tuple[Any, ...]:
        node: Any = view
        path: list[Any] = []
        for part in error["loc"]:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                continue
            path.append(part)
        if error["type"] == "missing" and error["loc"]:
            path.append(error["loc"][-1])
        return tuple(path)

    errors = exc.errors(include_url=False, include_input=False)
    best = max(errors, key=lambda e: (len(sent_path(e)), e["type"] != "literal_error"))
    field = field_name(sent_path(best))
    message = str(best["msg"])
    if len(message) > 300:
        message = message[:297] + "..."
    return RequestError(
        f"{field}: {message}; send it as google-genai's {type_name} describes it",
        field=field,
    )


# -- what the SDK's types leave open -----------------------------------------------------------


def _numbers(config: Any, where: str, ranges: dict[str, tuple[float, float, bool]]) -> None:
    if not isinstance(config, dict):
        return
    for key, (low, high, whole) in ranges.items():
        if config.get(key) is not None:
            rules.number(config[key], f"{where}.{key}", low, high, whole=whole)


def _agent_config(config: Any, where: str) -> None:
    if config is not None and not isinstance(config, dict):
        raise RequestError(f"{where} must be an object", field=where)
    _numbers(config, where, _AGENT_CONFIG)


def _environment(environment: Any, where: str) -> None:
    """What the SDK's types leave open in every form of an environment (environments/placement.py):
    "remote" or an id; an object's environment_id and from_environment ids; its inline
    sources' target paths."""
    if isinstance(environment, str):
        if environment != FRESH_ENVIRONMENT:
            _environment_id(environment, where)
        return
    if not isinstance(environment, dict):
        return
    for key in ("environment_id", "from_environment"):
        if environment.get(key) is not None:
            field = f"{where}.{key}" if where else key
            _environment_id(environment[key], field)
    if not isinstance(environment.get("sources"), list):
        return
    prefix = f"{where}.sources" if where else "sources"
    for index, source in enumerate(environment["sources"]):
        if isinstance(source, dict) and source.get("target") is not None:
            rules.file_path(source["target"], f"{prefix}[{index}].target")


def _environment_id(value: Any, field: str) -> None:
    """An environment id, or its resource name ("environments/<id>", as Google's are)."""
    bare = value.removeprefix("environments/") if isinstance(value, str) else value
    rules.resource_id(bare, field, "an environment")
