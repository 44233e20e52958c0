"""Where a run works: the `environment` of a create request, in every documented form,
turned into an environment of this gateway (or passed on to Google's service).

`"remote"` asks for a fresh sandbox; an environment id reuses one; an object makes one (or,
naming `environment_id`, adds to that one). A saved agent starts each run from a fresh copy
of its `base_environment`. `Placement.config` decides without making anything, so that
everything can be checked (runs/capabilities.py) before anything is stored; `resolve` then makes
or updates the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ...errors import RequestError
from ...sandbox.egress import Allowlist
from ..state.store import Store

__all__ = ["FRESH_ENVIRONMENT", "Environments", "Placement", "agent_environment"]

# `environment="remote"`: the documented way to ask for a fresh sandbox.
FRESH_ENVIRONMENT = "remote"


class Environments(Protocol):
    async def create(self, config: dict[str, Any]) -> dict[str, Any]: ...
    async def get(self, environment_id: str) -> dict[str, Any]: ...
    async def update(self, environment_id: str, config: dict[str, Any]) -> dict[str, Any]: ...
    async def is_upstream(self, environment_id: str) -> bool: ...
    async def resource(self, environment_id: str) -> dict[str, Any]: ...
    async def adopt_upstream(self, environment_id: str) -> None: ...
    def root(self, environment_id: str) -> Path: ...
    async def check_config(self, config: Any) -> None: ...


def _fresh_from(base: Any) -> dict[str, Any]:
    """The config of a new environment started from a saved agent's `base_environment`
    ("remote" or none: empty; an environment id: a fork of it; an object: as it says)."""
    if base is None or base == FRESH_ENVIRONMENT:
        return {"type": "remote"}
    if isinstance(base, str):
        return {"type": "remote", "from_environment": base}
    return dict(base)


def agent_environment(requested: Any, definition: dict[str, Any] | None) -> Any:
    """Every agent works in an environment. Nothing or "remote" asks for a fresh one: for a
    saved agent, a fresh copy of its `base_environment` (each run starts clean). An
    environment object without an id also starts from the base: its sources are added, its
    network and env override. An environment id (or an object naming one) is reused."""
    base = (definition or {}).get("base_environment")
    if requested is None or requested == FRESH_ENVIRONMENT:
        return _fresh_from(base)
    if isinstance(requested, dict) and not requested.get("environment_id") and base is not None:
        start = _fresh_from(base)
        sources = [*(start.get("sources") or []), *(requested.get("sources") or [])]
        return {**start, **requested, "sources": sources}
    return requested


class Placement:
    """The environment decisions of the engine's create."""

    def __init__(self, store: Store, environments: Environments | None) -> None:
        self.store = store
        self.environments = environments

    async def config(
        self, body: dict[str, Any], kind: str, definition: Any, code_execution: bool
    ) -> Any:
        """Where a local run works, as config (nothing is created yet): an agent always has
        an environment, a model call one if it asked or runs code. Continuing a
        conversation continues in its sandbox too."""
        requested = body.get("environment")
        if kind == "upstream":
            return requested
        sandboxed = kind == "agent" or code_execution
        previous_id = body.get("previous_interaction_id")
        if requested is None and previous_id and sandboxed:
            requested = await self._previous(previous_id)
        if kind == "agent":
            return agent_environment(requested, definition)
        if requested is None and code_execution:
            return FRESH_ENVIRONMENT
        return requested

    async def allowlist(self, environment: Any) -> Allowlist | None:
        """The network allowlist a run in this environment config will have."""
        if self.environments is None or environment is None:
            return None
        if isinstance(environment, dict):
            if environment.get("network") is not None:
                return Allowlist.parse(environment["network"])
            environment = environment.get("environment_id") or environment.get("from_environment")
        if not isinstance(environment, str) or environment == FRESH_ENVIRONMENT:
            return None
        resource = await self.environments.resource(environment.removeprefix("environments/"))
        return Allowlist.parse(resource.get("network"))

    async def _previous(self, previous_id: str) -> str | None:
        row = await self.store.get_interaction(previous_id)
        return row["resource"].get("environment_id") if row is not None else None

    async def for_upstream(self, body: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
        """Google's runs get an environment object or "remote" as sent, and an environment id
        only if it names one of Google's environments: ours are refused (their files are
        here, where Google's sandbox cannot reach them)."""
        environment = body.get("environment")
        if not isinstance(environment, str) or environment == FRESH_ENVIRONMENT:
            return body
        env_id = environment.removeprefix("environments/")
        if self.environments is not None and await self.environments.is_upstream(env_id):
            resource["environment_id"] = env_id
            return body
        raise RequestError(
            f"environment {environment!r} is a sandbox of this gateway; Google's service cannot "
            "use it. Pass environment='remote' for a fresh one there (its id then works here "
            "too), or run a local agent in it"
        )

    async def resolve(self, environment: Any) -> str:
        """The environment a run works in, from its config: "remote" makes a fresh one, an id
        reuses one, an object makes one (or, naming an id, adds to it)."""
        if self.environments is None:
            raise RequestError("this gateway has no environments configured")
        if environment == FRESH_ENVIRONMENT:
            environment = {"type": "remote"}
        if isinstance(environment, str):
            env_id = environment.removeprefix("environments/")
            await self.environments.get(env_id)  # 404 if unknown
            return env_id
        if isinstance(environment, dict):
            if environment.get("environment_id"):
                env_id = str(environment["environment_id"]).removeprefix("environments/")
                await self.environments.update(env_id, environment)
                return env_id
            fork = {k: environment[k] for k in ("sources", "env") if environment.get(k)}
            if environment.get("from_environment") and fork:
                # A saved agent's base environment, forked, then this run's additions.
                base = {k: v for k, v in environment.items() if k not in fork}
                created = await self.environments.create(base)
                await self.environments.update(str(created["id"]), fork)
                return str(created["id"])
            created = await self.environments.create(environment)
            return str(created["id"])
        raise RequestError(
            "environment must be 'remote' (a fresh sandbox), an environment id, or an "
            "environment object {'type': 'remote', ...}"
        )
