"""Which MCP servers the gateway connects to for a run without an allowlist: those on
loopback, by the same rule as the gateway's own address (`launch.is_loopback`)."""

from __future__ import annotations

import pytest

from jupyter_interactions.gateway.runs.mcp import mcp_servers, reach_refusal


def _refusal(url: str) -> str | None:
    (server,) = mcp_servers([{"type": "mcp_server", "name": "weather", "url": url}])
    return reach_refusal(server, None)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/mcp",
        "http://[::1]:8000/mcp",
        "http://localhost:8000/mcp",
        "http://LOCALHOST.localdomain/mcp",
        "http://ip6-localhost/mcp",
    ],
)
def test_a_server_on_loopback_needs_no_allowlist(url: str) -> None:
    assert _refusal(url) is None


@pytest.mark.parametrize(
    "url", ["http://localhost.example.com/mcp", "http://10.0.0.1/mcp", "https://example.com/mcp"]
)
def test_a_server_elsewhere_is_refused_without_an_allowlist(url: str) -> None:
    refusal = _refusal(url)
    assert refusal is not None and "allowlist" in refusal
