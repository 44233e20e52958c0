"""What this gateway runs, listed as Google's `models.list` answers (`client.models.list()`).

Models are named `models/<id>` and agents `agents/<id>` (the built-in ones and the custom
agents stored here; Google's list has no agents, and the widgets' pickers read both from
here). Each description starts with where the id runs: on this gateway, or on Google's
service, which the gateway forwards to with its key (only then are Google's ids listed, as
Google lists them: the ones this gateway would forward).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TypedDict

from ..models import ModelRegistry
from ..state.agents import AgentResource

HERE = "runs on this gateway"
FORWARDED = "forwarded to Google's service with the gateway's key"


class ModelEntry(TypedDict):
    """A model or agent in Google's `Model` shape (camelCase, as the wire has it)."""

    name: str
    displayName: str
    description: str


def entry(kind: str, ident: str, description: str) -> ModelEntry:
    return {"name": f"{kind}/{ident}", "displayName": ident, "description": description}


def _summary(cls: type) -> str:
    """The first line of the module docstring of an adapter (what it is, in one line)."""
    doc = (sys.modules[cls.__module__].__doc__ or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else cls.__name__


def local_models(models: ModelRegistry) -> list[ModelEntry]:
    entries = []
    for name in models.names():
        adapter = models.adapter(name)
        what = f"adapter {adapter[0]}: {_summary(adapter[1])}" if adapter else "not installed"
        entries.append(entry("models", name, f"{HERE} ({what})"))
    return entries


def local_agents(builtin: dict[str, Any], custom: Sequence[AgentResource]) -> list[ModelEntry]:
    entries = []
    for name, runner in sorted(builtin.items()):
        entries.append(entry("agents", name, f"{HERE} ({_summary(type(runner))})"))
    for agent in custom:
        based = f"custom agent on {agent.get('base_agent')}"
        entries.append(entry("agents", str(agent["id"]), f"{HERE} ({based})"))
    return entries


def forwarded(google_ids: list[tuple[str, str]]) -> list[ModelEntry]:
    """(kind, id) pairs Google listed that this gateway forwards."""
    return [entry(kind, ident, FORWARDED) for kind, ident in google_ids]
