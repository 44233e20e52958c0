"""The gateway as a Jupyter server extension: the same routes, mounted at
`{base_url}interactions/`, behind the Jupyter server's own token.

Kernels of that server find it through `jpserver-<JPY_PARENT_PID>.json` (url and token) and
need no separate process. Settings come from the usual config file and environment, plus
`c.InteractionsExtension.data_dir` in the Jupyter server's config.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from ..config import GatewayConfig
from .app import make_handlers
from .web import BaseHandler, GatewayState

MOUNT = "interactions"


def _server_token(serverapp: Any) -> str:
    provider = getattr(serverapp, "identity_provider", None)
    return str(getattr(provider, "token", "") or "")


def _open_server(serverapp: Any) -> bool:
    """A server started without token and password lets every request in; so do we."""
    provider = getattr(serverapp, "identity_provider", None)
    password = getattr(provider, "hashed_password", "") or ""
    return not _server_token(serverapp) and not password


class InteractionsExtension(ExtensionApp):
    name = "jupyter_interactions"
    load_other_extensions = True

    data_dir = Unicode(
        "",
        config=True,
        help="Where the gateway keeps its SQLite state and environments "
        "(default: <jupyter data dir>/interactions).",
    )

    state: GatewayState | None = None

    def initialize_settings(self) -> None:
        config = GatewayConfig.load(data_dir=self.data_dir or None)
        self.state = GatewayState(config)

    def initialize_handlers(self) -> None:
        assert self.state is not None
        serverapp = self.serverapp
        specs = make_handlers(f"/{MOUNT}", self.state)
        self.handlers.extend(
            (
                spec.regex.pattern.removesuffix("$"),
                _with_server_auth(spec.handler_class),
                {
                    **spec.kwargs,
                    "serverapp": serverapp,
                },
            )
            for spec in specs
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        assert self.state is not None
        await self.state.start()
        self.log.info("Interactions gateway mounted at %s%s/", serverapp.base_url, MOUNT)

    async def stop_extension(self) -> None:
        if self.state is not None:
            await self.state.stop()


_AUTH_CLASSES: dict[type[BaseHandler], type[BaseHandler]] = {}


def _with_server_auth(handler: type[BaseHandler]) -> type[BaseHandler]:
    """The same handler, authenticating with the Jupyter server's token instead of ours."""
    if handler not in _AUTH_CLASSES:

        class ServerAuthHandler(handler):  # type: ignore[valid-type,misc]
            def initialize(self, state: GatewayState, serverapp: Any) -> None:
                super().initialize(state)
                self.serverapp = serverapp

            def authenticate(self) -> bool:
                if type(self).authenticate_anyone() or _open_server(self.serverapp):
                    return True
                return super().authenticate()

            def expected_token(self) -> str | None:
                return _server_token(self.serverapp) or None

            @classmethod
            def authenticate_anyone(cls) -> bool:
                # Routes that are open in standalone mode (the health probe) stay open.
                return handler.authenticate is not BaseHandler.authenticate

        ServerAuthHandler.__name__ = f"Server{handler.__name__}"
        _AUTH_CLASSES[handler] = ServerAuthHandler
    return _AUTH_CLASSES[handler]
