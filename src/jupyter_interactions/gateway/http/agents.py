"""Routes of what runs here: custom agents (`client.agents.create/get/list/delete`) and the
models list (`client.models.list/get`), which names the models and agents this gateway serves
and the ids it forwards to Google's service."""

from __future__ import annotations

from ...errors import NotFoundError
from ..runs import catalog
from ..validation.rules import MAX_PAGE
from . import requests as routes
from .base import BaseHandler

# -- agents ----------------------------------------------------------------------------------------


class AgentsHandler(BaseHandler):
    async def get(self) -> None:
        page = routes.listing(self.request)
        agents = await self.state.agents.list(page.offset, page.fetch)
        self.send_json(page.answer("agents", agents))

    async def post(self) -> None:
        agent = await routes.create_agent(self.request)
        self.send_json(await self.state.agents.create(agent, self.engine.check_agent))


class AgentHandler(BaseHandler):
    async def get(self, agent_id: str) -> None:
        self.send_json(await self.state.agents.get(routes.agent(self.request, agent_id)))

    async def delete(self, agent_id: str) -> None:
        await self.send_deleted(self.state.agents.delete(routes.agent(self.request, agent_id)))


# -- models: what this gateway runs (client.models.list / get) ---------------------------------


class ModelsHandler(BaseHandler):
    """Google's shape: `{"models": [...], "nextPageToken"}`."""

    async def entries(self) -> list[catalog.ModelEntry]:
        engine = self.engine
        custom = await self.state.agents.list(0, MAX_PAGE)
        google = await engine.upstream.models() if engine.upstream is not None else []
        return [
            *catalog.local_models(engine.models),
            *catalog.local_agents(engine.agents, custom),
            *catalog.forwarded(google),
        ]

    async def get(self) -> None:
        page = await routes.list_models(self.request)
        self.send_json(page.answer("models", page.window(await self.entries())))


class ModelHandler(ModelsHandler):
    async def get(self, name: str) -> None:  # type: ignore[override]
        name = routes.model(self.request, name)
        for entry in await self.entries():
            if entry["displayName"] == name:
                self.send_json(entry)
                return
        raise NotFoundError(f"model {name!r} is not served here; client.models.list() lists them")
