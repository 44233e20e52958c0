"""The HTTP layer every route shares: `BaseHandler` with size limits, the
reference's error shape, strict JSON answers and SSE framing; `LimitedBodies` answers bodies
over the limit in that error shape, and `access_log` logs without queries.

Routes are written once, on BaseHandler, and mounted behind an auth shell chosen by the host
(auth.py: the standalone gateway's token; extension.py: jupyter_server's auth). A shell
answers `authenticate()` and `auth_hint()`; BaseHandler.prepare asks it, and lets in an
ephemeral auth token of this gateway instead on the routes that take one (`token_need`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any, ClassVar

import tornado.web
from tornado import httputil
from tornado.iostream import StreamClosedError

from ...errors import AuthError, InteractionsError, NotFoundError, RequestError
from ..runs.engine import Engine
from ..state.auth_tokens import Grant, Need
from ..validation import rules
from ..wiring import GatewayState
from . import requests as routes

# Bodies past the limit are read (and dropped) up to this size, so that the client, which
# sends its whole body before it reads, gets the JSON answer; beyond it, tornado's own.
DRAIN_LIMIT = 1 << 30


def _error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def too_large(limit: int) -> RequestError:
    return RequestError(f"request body larger than {limit} bytes; send less at once")


class BaseHandler(tornado.web.RequestHandler):
    """What every route shares. Mounted behind an auth shell (see the module's docstring)."""

    open_route: ClassVar[bool] = False  # answers without auth (the health probe)

    def initialize(self, state: GatewayState) -> None:
        self.state = state
        self._client_gone = False
        self._stream_task: asyncio.Future[None] | None = None
        self.grant: Grant | None = None  # the ephemeral token this request came with, if any

    @property
    def engine(self) -> Engine:
        return self.state.engine

    # -- auth: the shell's two methods, and ephemeral tokens ------------------------------------

    def authenticate(self) -> bool:
        """True if the host's auth lets the request use the routes."""
        raise NotImplementedError("mount routes behind an auth shell: auth.with_token_auth")

    def auth_hint(self) -> str:
        """The 401's message: what credential is missing, and where to find it."""
        raise NotImplementedError("mount routes behind an auth shell: auth.with_token_auth")

    def offered_token(self) -> str:
        """The token the request carries: x-goog-api-key, or Authorization: Bearer/token."""
        offered = self.request.headers.get("x-goog-api-key", "")
        if not offered:
            scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() in ("bearer", "token"):
                offered = value.strip()
        return offered

    def token_need(self) -> Need | None:
        """What this request would do with an ephemeral auth token; None (the default) for
        routes that never take one: creating, cancelling, deleting, tokens, admin."""
        return None

    def granted(self) -> bool:
        """True if the request carries an ephemeral token allowing what it does (it is then
        `self.grant`). Compared as a digest; never logged."""
        need = self.token_need()
        if need is not None:
            self.grant = self.state.auth_tokens.grant(self.offered_token(), need)
        return self.grant is not None

    def prepare(self) -> None:
        # Stays synchronous: jupyter_server's prepare calls it without awaiting.
        if not self.open_route and not (self.authenticate() or self.granted()):
            raise AuthError(self.auth_hint())
        limit = self.state.config.max_body_bytes
        if len(self.request.body or b"") > limit:
            raise too_large(limit)

    # -- requests (each route's entry in requests.py checks all of it) --------------------

    def json_body(self) -> dict[str, Any]:
        """The body as a strict JSON object (empty is `{}`), for a route without an entry."""
        return routes.json_object(self.request)

    def flag(self, name: str) -> bool:
        """A true/false query parameter (absent is false)."""
        value = self.get_query_argument(name, None)
        return rules.flag(value, name)

    def session_headers(self) -> tuple[str | None, str | None]:
        """The kernel's session key and thread name headers, checked."""
        return routes.session_headers(self.request)

    # -- responses ------------------------------------------------------------------------------

    def send_json(self, value: Any) -> None:
        """`value` as strict JSON: NaN and Infinity are not JSON, so they fail here (a 500
        that the log explains) rather than reach a client that cannot parse them."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value, separators=(",", ":"), allow_nan=False))

    async def send_deleted(self, deletion: Awaitable[object]) -> None:
        """Answer a DELETE once `deletion` is done: `{}`, as Google's deletes answer."""
        await deletion
        self.send_json({})

    async def send_events(self, source: AsyncIterator[list[str]]) -> None:
        """Stream SSE frames, then `data: [DONE]`. A client that goes away only stops this
        response: the interaction keeps running and can be attached to again."""
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self._stream_task = asyncio.ensure_future(self._relay(source))
        try:
            await self._stream_task
        except asyncio.CancelledError:
            if not self._client_gone:
                raise

    async def _relay(self, source: AsyncIterator[list[str]]) -> None:
        try:
            async for frames in source:
                self.write("".join(frames))
                await self.flush()
            self.write("data: [DONE]\n\n")
            self.finish()
        except StreamClosedError:
            return

    def on_connection_close(self) -> None:
        # Stop waiting for events nobody will read (an agent may be quiet for minutes).
        self._client_gone = True
        task = getattr(self, "_stream_task", None)
        if task is not None and not task.done():
            task.cancel()

    # -- errors in the reference's shape -------------------------------------------------------

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, InteractionsError):
            if self._finished:
                return
            self.send_error(e.http_status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)  # type: ignore[misc]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, InteractionsError):
            code, message = exc.code, exc.message
        elif isinstance(exc, tornado.web.HTTPError):
            code = {
                401: "unauthenticated",
                403: "permission_denied",
                404: "not_found",
                405: "method_not_allowed",
            }.get(status_code, "invalid_argument")
            message = self._reason
            if exc.log_message:  # e.g. a path that is not UTF-8
                message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code >= 500:
            code, message = "internal", "internal gateway error; the gateway log has details"
        else:
            code, message = "invalid_argument", self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(_error_body(code, message))


class NotFoundHandler(BaseHandler):
    """Any unknown route: a 404 in the reference's error shape (after auth)."""

    def prepare(self) -> None:
        super().prepare()
        raise NotFoundError(
            f"no route {self.request.method} {self.request.path}; see the Interactions API "
            "reference for the routes this gateway serves"
        )


class LimitedBodies(httputil.HTTPMessageDelegate):
    """In front of tornado's own handling of one request: a body over `limit` (announced,
    or counted as chunks arrive) is read and dropped, and answered with the reference's
    400. Tornado's own limit would close the connection after an empty 400."""

    def __init__(self, inner: httputil.HTTPMessageDelegate, connection: Any, limit: int) -> None:
        self.inner = inner
        self.connection = connection
        self.limit = limit
        self.received = 0
        self.refused = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.connection.set_max_body_size(DRAIN_LIMIT)
        announced = headers.get("Content-Length", "")
        if announced.isascii() and announced.isdigit() and int(announced) > self.limit:
            self.refused = True
            return None
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > self.limit:
            self.refused = True
            self.inner.on_connection_close()  # the handler forgets what it buffered
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()
            return
        body = _error_body("invalid_argument", too_large(self.limit).message).encode()
        headers = httputil.HTTPHeaders(
            {"Content-Type": "application/json", "Content-Length": str(len(body))}
        )
        start = httputil.ResponseStartLine("HTTP/1.1", 400, "Bad Request")
        self.connection.write_headers(start, headers, body)
        self.connection.finish()

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()


def access_log(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access line without the query string: Google's clients may send the key
    as `?key=`, and no secret goes into a log."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    logging.getLogger("tornado.access").log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        request.path,
        request.remote_ip,
        1000.0 * request.request_time(),
    )
