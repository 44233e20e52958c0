"""Playing one recorded interaction: an executor beside the upstream, so a replayed run goes
through the same Emitter, event log, streams, resume and thread heads as a real one.

The recorded events are relayed with their pacing compressed (`replay_pacing`), and the files
the agent left are restored into an environment of this gateway, so the file browser and
later turns see them. Nothing here ever calls Google.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from ..runs.emitter import Emitter
from ..upstream.forward import Relay, UpstreamRun
from .cassette import Cassette, Entry

MAX_GAP_SECONDS = 2.0  # no single pause of a replay is longer, whatever was recorded
REPLAYED_PREFIX = "replayed-"  # the "upstream id" of a replayed turn: nothing on Google


class Environments(Protocol):
    async def create(self, config: dict[str, Any]) -> dict[str, Any]: ...
    async def files(self, environment_id: str) -> Any: ...


def substitute(value: Any, replacements: dict[str, str]) -> Any:
    """`value` with each key of `replacements` replaced in every string (keys too)."""
    if not replacements:
        return value
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {substitute(k, replacements): substitute(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, replacements) for v in value]
    return value


class EnvironmentAliases:
    """Environment ids of one session and the alias each has in the cassette (the key prefix
    of the turn that made the environment), both ways."""

    def __init__(self) -> None:
        self.alias_of: dict[str, str] = {}

    def environment_of(self, alias: str) -> str | None:
        return next((env for env, a in self.alias_of.items() if a == alias), None)

    def name(self, environment_id: str, alias: str) -> str:
        """The environment's alias: the one it has, else `alias` from now on."""
        return self.alias_of.setdefault(environment_id, alias)


class Player:
    """The engine's `Upstream` for one recorded interaction."""

    def __init__(
        self,
        entry: Entry,
        cassette: Cassette,
        aliases: EnvironmentAliases,
        environments: Environments,
        pacing: float,
    ) -> None:
        self.entry = entry
        self.cassette = cassette
        self.aliases = aliases
        self.environments = environments
        self.pacing = max(0.0, pacing)

    def handles(self, model: str | None, agent: str | None) -> bool:
        return True

    async def run(
        self, body: dict[str, Any], previous_upstream_id: str | None, emitter: Emitter
    ) -> UpstreamRun:
        data = await asyncio.to_thread(self.cassette.resolve, self.entry.data)
        alias = str(data.get("environment") or "").removeprefix("@")
        environment_id = await self._environment(alias) if alias else None
        events = substitute(data.get("events") or [], {f"@{alias}": environment_id or ""})
        relay = Relay(emitter)
        clock = 0
        for event in events:
            at = int(event.pop("at_ms", clock))
            gap = max(0, at - clock) / 1000 * self.pacing
            clock = at
            if event.get("event_type") == "interaction.completed" and environment_id:
                await self._restore(environment_id, data.get("files") or [])
            if gap > 0:
                await asyncio.sleep(min(gap, MAX_GAP_SECONDS))
            relay.event(event)
            await emitter.drain()
        return UpstreamRun(REPLAYED_PREFIX + self.entry.key[:12], environment_id)

    async def _environment(self, alias: str) -> str:
        """The environment this session has for `alias`, else a new one of this gateway."""
        known = self.aliases.environment_of(alias)
        if known is not None:
            return known
        created = await self.environments.create({})
        environment_id = str(created["id"])
        self.aliases.name(environment_id, alias)
        return environment_id

    async def _restore(self, environment_id: str, files: list[dict[str, Any]]) -> None:
        """Write the files the agent had left, as recorded (each blob read once)."""
        target = await self.environments.files(environment_id)
        for file in files:
            if "sha256" in file:
                data = await asyncio.to_thread(self.cassette.blob, file["sha256"])
                await target.write(file["path"], data)
