"""Idle exit: a gateway a kernel started goes away once nobody has used it for a while.

"Attached" means concretely: a client holds an HTTP connection open (a request in flight, an
SSE stream, or a kernel's kept-alive connection), or an interaction is running. The gateway
is idle from the moment the last of these ended; after `seconds` of that, it stops as if
sent SIGTERM (its runtime file goes, and the next kernel that needs a gateway starts one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

log = logging.getLogger("jupyter_interactions.gateway")


class Activity:
    """Open connections, and when the gateway last had one or something running."""

    def __init__(self) -> None:
        self.connections = 0
        self._since = time.monotonic()

    def opened(self) -> None:
        self.connections += 1

    def closed(self) -> None:
        self.connections -= 1
        self._since = time.monotonic()

    def idle_for(self, running: bool) -> float:
        """Seconds with no connection and nothing running (0 while either lasts)."""
        if self.connections or running:
            self._since = time.monotonic()
            return 0.0
        return time.monotonic() - self._since


class CountingHTTPServer(HTTPServer):
    """An HTTPServer that reports each client connection to an `Activity`."""

    activity: Activity

    def handle_stream(self, stream: Any, address: tuple[Any, ...]) -> None:
        self.activity.opened()
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        super().on_close(server_conn)
        self.activity.closed()


async def stop_when_idle(
    activity: Activity, seconds: float, running: Callable[[], bool], stop: asyncio.Event
) -> None:
    """Set `stop` once the gateway has been idle for `seconds`."""
    while not stop.is_set():
        idle = activity.idle_for(running())
        if idle >= seconds:
            log.info("idle for %.0f s with no client and nothing running: exiting", idle)
            stop.set()
            return
        # A few checks per idle period: a gateway stops at most a quarter period late.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(min(seconds - idle, seconds / 4), 0.05))


def listen(app: Any, host: str, port: int, activity: Activity) -> tuple[CountingHTTPServer, int]:
    """Serve `app` on host:port (0 picks a free port), counting connections into `activity`;
    returns the server and the port it listens on."""
    server = CountingHTTPServer(app, xheaders=False)
    server.activity = activity
    sockets = bind_sockets(port, host)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]
