"""Custom agents (`client.agents.create/get/list/delete`): their records in the store. What a
definition may ask for is checked by the runs layer (engine.check_agent) before it is saved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypedDict, cast

from ...errors import ConflictError, NotFoundError
from ...protocol import now
from .stamps import new_id
from .store import Store


class AgentResource(TypedDict, total=False):
    """A saved agent as the wire shows it (validation.bodies.agent_body checked its fields)."""

    id: str
    created: str
    base_agent: str
    agent_config: dict[str, Any]
    base_environment: Any
    system_instruction: Any
    tools: list[Any]
    description: str
    display_name: str


class Agents:
    """Create, read, list and delete custom agents."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def find(self, agent_id: str) -> AgentResource | None:
        """The saved agent, or None."""
        return cast("AgentResource | None", await self.store.get_resource("agents", agent_id))

    async def get(self, agent_id: str) -> AgentResource:
        """The saved agent; a 404 that says how to list them."""
        agent = await self.find(agent_id)
        if agent is None:
            raise NotFoundError(
                f"agent {agent_id!r} not found; list them with client.agents.list()"
            )
        return agent

    async def list(self, offset: int, limit: int) -> list[AgentResource]:
        return cast("list[AgentResource]", await self.store.list_resources("agents", offset, limit))

    async def create(
        self, agent: dict[str, Any], check: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> AgentResource:
        """Save `agent` under its id (or a new one) once `check` accepts it; a 409 for an id
        that exists."""
        agent_id = str(agent.get("id") or new_id("agent"))
        if await self.find(agent_id) is not None:
            raise ConflictError(
                f"agent {agent_id!r} already exists; delete it first or pick another id"
            )
        await check(agent)
        agent.update({"id": agent_id, "created": now()})
        await self.store.put_resource("agents", agent)
        return cast("AgentResource", agent)

    async def delete(self, agent_id: str) -> None:
        """Delete the saved agent; a 404 if there is none."""
        await self.get(agent_id)
        await self.store.delete_resource("agents", agent_id)
