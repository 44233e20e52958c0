"""A tornado app on loopback in a thread of its own, playing Google's service for the
forwarding tests: `with serving(handler) as url:` answers every path with `handler`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web


@contextlib.contextmanager
def serving(handler: type[tornado.web.RequestHandler]) -> Iterator[str]:
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/(.*)", handler)]))
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            server.add_sockets(sockets)
            holder["url"] = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/"
            holder["stop"] = asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            ready.set()
            await holder["stop"].wait()
            server.stop()
            await server.close_all_connections()  # the gateway's kept-alive ones too

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield holder["url"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
