"""A real MCP server for the tests (Streamable HTTP, written with the `mcp` package), and a
fixture that runs it on loopback: `python tests/gateway/mcp_weather.py` prints its port.

Tools: `get_temperature(city)` answers "It is 21C in CITY."; `whoami()` answers with the
Authorization header it was sent; `forecast(city)` exists to be filtered by allowed_tools.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.server.mcpserver import Context, MCPServer


def serve() -> None:
    import uvicorn

    server = MCPServer("weather")

    @server.tool()
    def get_temperature(city: str) -> str:
        """The temperature in a city today."""
        return f"It is 21C in {city}."

    @server.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather in a city."""
        return f"Rain in {city} tomorrow."

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The Authorization header this call came with."""
        return (ctx.headers or {}).get("authorization", "no authorization header")

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


@pytest.fixture(scope="module")
def mcp_weather() -> Iterator[str]:
    """The URL of a running weather MCP server on loopback (stopped after the module)."""
    from tests.conftest import end_process  # here: the module also runs as a script

    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__))], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    port = ""
    while not port and time.monotonic() < deadline and proc.poll() is None:
        if selector.select(timeout=0.2):
            port = proc.stdout.readline().strip()
    selector.close()
    try:
        assert port, "the MCP test server did not start"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        end_process(proc, 10)
        proc.stdout.close()


if __name__ == "__main__":
    serve()
