"""The gateway as a Jupyter server extension: the same routes, mounted at
`{base_url}interactions/`, behind jupyter_server's own auth.

Each route is mounted behind `ServerAuth`, a thin shell on jupyter_server's `APIHandler`: the
server's identity provider says who is calling (its token as `Authorization: token ...` or as
the SDK's `x-goog-api-key`; or a browser's login cookie, and then XSRF is checked), its
authorizer says what they may do (resource "interactions"), and its Host and Origin checks
apply; an ephemeral auth token of the gateway's own is taken on the routes that take one.
The routes themselves are the standalone gateway's (app.make_handlers), which mounts them
behind its own token instead.

Kernels of that server find it through `jpserver-<JPY_PARENT_PID>.json` (url and token) and
need no separate process. Settings come from the usual config file and environment, plus
`c.InteractionsExtension.data_dir` in the Jupyter server's config. Everything the gateway
logs (`jupyter_interactions.*`) goes to the server's log with its secrets cut out (logs.py),
and so do the server's and tornado's lines about the gateway's routes (their access lines,
refusals and errors), which `ServerAuth` writes on the gateway's loggers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

import tornado.web
from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from ...config import GatewayConfig
from ...errors import AuthError
from ..logs import LOGGER, log_into
from ..wiring import GatewayState
from .app import make_handlers
from .auth import behind
from .base import BaseHandler

MOUNT = "interactions"
AUTH_RESOURCE = "interactions"  # what the server's authorizer is asked about

log = logging.getLogger(f"{LOGGER}.gateway")
# The server's and tornado's lines about a request to one of the routes.
requests_log = logging.getLogger(f"{LOGGER}.gateway.http")


class ServerAuth(APIHandler):
    """The auth shell of a route mounted in a Jupyter server: jupyter_server's own."""

    auth_resource = AUTH_RESOURCE

    async def prepare(self) -> None:  # type: ignore[override]
        # The wire carries the token as x-goog-api-key (the SDK's api_key); identity
        # providers read `Authorization: token`. Hand it over in that form.
        headers = self.request.headers
        if "x-goog-api-key" in headers and "Authorization" not in headers:
            headers["Authorization"] = f"token {headers['x-goog-api-key']}"
        # Host check, identity, CORS, XSRF for cookie-authenticated requests; then the
        # route's own prepare (our auth check, body size); then the Origin check.
        self._identifying = True
        await super().prepare()
        # BaseHandler.prepare ran the same check inside that chain; should it ever become a
        # coroutine, jupyter_server would not await it, so the check is made here as well.
        route = cast(BaseHandler, self)  # a ServerAuth is always mounted in front of a route
        if not (route.open_route or self.authenticate() or route.grant is not None):
            raise AuthError(self.auth_hint())

    def check_xsrf_cookie(self) -> None:
        # Within prepare the caller is known by now: one nobody vouches for (a wrong token)
        # is told so (401, and what to send) rather than that an XSRF token is missing.
        if getattr(self, "_identifying", False) and self.current_user is None:
            raise AuthError(self.auth_hint())
        super().check_xsrf_cookie()

    def authenticate(self) -> bool:
        return self.current_user is not None

    def auth_hint(self) -> str:
        return (
            "not logged in to this Jupyter server: send its token (as api_key to genai.Client, "
            "or an `Authorization: token ...` header), or log in to the server; "
            "`jupyter server list` shows its URL with the token"
        )

    @property
    def log(self) -> logging.Logger:
        # jupyter_server writes a request's access line and its refusals (Host, Origin) on
        # the handler's log: the gateway's, so that they are made safe like its own lines.
        # Its access line hides ?token= and ?key=, not an ephemeral auth token in the path.
        return requests_log

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Tornado's lines (an HTTPError's message, an uncaught exception) on the gateway's
        # log instead of tornado's: they carry the request's whole URL, ?key= included.
        request = self.request
        summary = f"{request.method} {request.uri} ({request.remote_ip})"
        if isinstance(value, tornado.web.HTTPError):
            if message := value.get_message():
                self.log.warning("%d %s: %s", value.status_code, summary, message)
        else:
            self.log.error("Uncaught exception %s", summary, exc_info=value)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # The routes' error shape (the Interactions API's), not jupyter_server's pages.
        super(JupyterHandler, self).write_error(status_code, **kwargs)

    def finish(self, chunk: Any = None) -> Any:
        # APIHandler.finish labels every answer JSON; routes set their own type (SSE, bytes).
        self.update_api_activity()
        return super(APIHandler, self).finish(chunk)


def _guarded(route: type[BaseHandler], method: Callable[..., Any]) -> Callable[..., Any]:
    """A route's HTTP method as jupyter_server guards its own: open, or authenticated and
    authorized (so `ServerApp.allow_unauthenticated_access = False` holds for it too)."""
    if route.open_route:
        return allow_unauthenticated(method)
    checked = authorized(method)
    if route.token_need is BaseHandler.token_need:
        return tornado.web.authenticated(checked)

    @functools.wraps(method)
    def user_or_grant(self: BaseHandler, *args: Any, **kwargs: Any) -> Any:
        # An ephemeral token of the gateway's own (checked by BaseHandler.prepare) has no
        # Jupyter user: the token itself says what it may do. Anyone else is the server's.
        if self.grant is not None:
            return method(self, *args, **kwargs)
        return checked(self, *args, **kwargs)

    return allow_unauthenticated(user_or_grant)


def with_server_auth(route: type[BaseHandler]) -> type[tornado.web.RequestHandler]:
    """`route` behind the Jupyter server's auth."""
    unimplemented = tornado.web.RequestHandler
    methods = {
        name: _guarded(route, getattr(route, name))
        for name in (method.lower() for method in route.SUPPORTED_METHODS)
        if getattr(route, name) is not getattr(unimplemented, name)
    }
    return behind(ServerAuth, route, methods)


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
    _stop_logging: Callable[[], None] | None = None

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        self._stop_logging = log_into(self.serverapp.log)
        config = GatewayConfig.load(data_dir=self.data_dir or None)
        self.state = GatewayState(config)

    def initialize_handlers(self) -> None:
        assert self.state is not None
        for spec in make_handlers(f"/{MOUNT}", self.state, mount=with_server_auth):
            self.handlers.append(
                (spec.regex.pattern.removesuffix("$"), spec.handler_class, spec.kwargs)
            )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        assert self.state is not None
        await self.state.start()
        log.info("Interactions gateway mounted at %s%s/", serverapp.base_url, MOUNT)

    async def stop_extension(self) -> None:
        if self.state is not None:
            await self.state.stop()
        if self._stop_logging is not None:
            self._stop_logging()
            self._stop_logging = None
