"""The gateway's routes: the Interactions wire protocol (create, get, attach, cancel, delete),
plus agents, environments, files and our session views, as tornado handlers.

`make_handlers(prefix, state, mount)` gives the url specs, so a host (the Jupyter server
extension) can mount them under its own prefix, behind its own auth shell (`mount`, by default
the gateway's token: auth.with_token_auth); `make_app(config)` is the standalone app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import tornado.web

from ...config import GatewayConfig
from ...version import __version__
from .. import validation
from ..runs.executors import Upstream
from ..state.auth_tokens import Need
from ..wiring import GatewayState
from . import agents, environments, sessions
from . import requests as routes
from .auth import with_token_auth
from .base import BaseHandler, LimitedBodies, NotFoundHandler, access_log
from .cassette import CassetteHandler
from .live import LiveHandler

__all__ = ["API_VERSIONS", "GatewayState", "make_app", "make_handlers"]

API_VERSIONS = ("v1", "v1beta", "v1alpha", "v1beta1")


class HealthHandler(BaseHandler):
    """Unauthenticated probe, so a kernel can tell a gateway from some other server."""

    open_route = True

    def get(self) -> None:
        # Not ok until started: a server extension that could not own its data dir is not
        # a gateway to use (kernels then look for the one that owns it).
        ok = self.state.started
        self.send_json({"ok": ok, "name": "jupyter-interactions", "version": __version__})


class InteractionsHandler(BaseHandler):
    async def post(self) -> None:
        new = await routes.create_interaction(self.request)
        body = new.body
        run = await self.engine.create(body, new.session, new.thread, cell=new.cell)
        if body.get("stream"):
            await self.send_events(run.follow(0))
        elif body.get("background"):
            self.send_json(run.accepted)
        else:
            # Shielded: a client that hangs up does not stop the interaction.
            await asyncio.shield(run.done)
            self.send_json(run.snapshot())


class InteractionHandler(BaseHandler):
    def token_need(self) -> Need | None:
        # An ephemeral token of this interaction may read it and follow its events.
        return Need("read", self.path_args[0]) if self.request.method == "GET" else None

    async def get(self, interaction_id: str) -> None:
        read = routes.read_interaction(self.request, interaction_id)
        if read.stream:
            await self.send_events(await self.engine.open_stream(read.interaction_id, read.after))
            return
        self.send_json(await self.engine.get(read.interaction_id, read.include_input))

    async def delete(self, interaction_id: str) -> None:
        interaction_id = routes.interaction(self.request, interaction_id)
        await self.send_deleted(self.engine.delete(interaction_id))


class CancelHandler(BaseHandler):
    async def post(self, interaction_id: str) -> None:
        self.send_json(await self.engine.cancel(routes.interaction(self.request, interaction_id)))


class AuthTokensHandler(BaseHandler):
    """`client.interactions.auth_tokens.create(interaction_id, expire_time=...)`."""

    async def post(self, interaction_id: str) -> None:
        body = await routes.create_auth_token(self.request, interaction_id)
        await self.engine.get(interaction_id)  # 404 for an interaction this gateway lacks
        self.send_json(await self.state.auth_tokens.create(interaction_id, body))


class AuthTokenHandler(BaseHandler):
    """`client.interactions.auth_tokens.delete(interaction_id, auth_token)`."""

    async def delete(self, interaction_id: str, token: str) -> None:
        interaction_id, token = routes.auth_token(self.request, interaction_id, token)
        await self.send_deleted(self.state.auth_tokens.delete(interaction_id, token))


Mount = Callable[[type[BaseHandler]], type[tornado.web.RequestHandler]]
"""Puts a route behind an auth shell: `with_token_auth`, or the server extension's."""


def make_handlers(prefix: str, state: GatewayState, mount: Mount = with_token_auth) -> list[Any]:
    """URL specs for every route, under `prefix` (e.g. "" or "/user/me/interactions")."""
    validation.preload()  # google-genai's request types, for the first create to check
    p = prefix.rstrip("/")
    # Vertex-style clients put a project and location after the version; they mean nothing here.
    v = "(?:" + "|".join(API_VERSIONS) + ")(?:/projects/[^/]+/locations/[^/]+)?"
    one = "([^/]+)"
    kw = {"state": state}
    routes: list[tuple[str, type[BaseHandler]]] = [
        (f"{p}/health", HealthHandler),
        (f"{p}/{v}/interactions/?", InteractionsHandler),
        (f"{p}/{v}/interactions/live", LiveHandler),
        (f"{p}/{v}/interactions/{one}/cancel", CancelHandler),
        (f"{p}/{v}/interactions/{one}/auth_tokens/?", AuthTokensHandler),
        (f"{p}/{v}/interactions/{one}/auth_tokens/{one}", AuthTokenHandler),
        (f"{p}/{v}/interactions/{one}", InteractionHandler),
        (f"{p}/{v}/agents/?", agents.AgentsHandler),
        (f"{p}/{v}/agents/{one}", agents.AgentHandler),
        (f"{p}/{v}/environments/?", environments.EnvironmentsHandler),
        (f"{p}/{v}/environments/{one}/files/?(.*)", environments.FilesHandler),
        (f"{p}/{v}/environments/{one}", environments.EnvironmentHandler),
        (f"{p}/upload/{v}/environments/{one}/files/(.*)", environments.UploadHandler),
        (f"{p}/{v}/sessions/{one}/threads/?", sessions.ThreadsHandler),
        (f"{p}/{v}/sessions/{one}/threads/{one}", sessions.ThreadHandler),
        (f"{p}/{v}/sessions/{one}/cassette", CassetteHandler),
        (f"{p}/{v}/sessions/{one}/events", sessions.SessionEventsHandler),
        (f"{p}/{v}/sessions/{one}", sessions.SessionHandler),
        (f"{p}/{v}/models/?", agents.ModelsHandler),
        (f"{p}/{v}/models/{one}", agents.ModelHandler),
        (f"{p}/.*", NotFoundHandler),
    ]
    return [tornado.web.url(pattern, mount(handler), kw) for pattern, handler in routes]


def make_app(
    config: GatewayConfig,
    upstream: Upstream | None = None,
    state: GatewayState | None = None,
) -> tornado.web.Application:
    """The standalone gateway app. Its state is `app.settings["interactions_state"]`; await
    its `start()` before serving and its `stop()` after."""
    state = state or GatewayState(config, upstream)
    return _GatewayApplication(
        make_handlers("", state),
        default_handler_class=with_token_auth(NotFoundHandler),
        default_handler_args={"state": state},
        interactions_state=state,
        log_function=access_log,
    )


class _GatewayApplication(tornado.web.Application):
    """Bodies over the limit get the reference's JSON error here, before tornado's own
    limit would answer them with an empty 400."""

    def start_request(self, server_conn: object, request_conn: Any) -> Any:
        limit = self.settings["interactions_state"].config.max_body_bytes
        return LimitedBodies(super().start_request(server_conn, request_conn), request_conn, limit)
