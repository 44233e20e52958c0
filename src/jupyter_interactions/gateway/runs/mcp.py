"""`mcp_server` tools for local models and agents: the gateway is the MCP client.

Each `mcp_server` tool names a remote MCP server (Streamable HTTP, the transport the
Interactions API speaks). For one run, `McpTools` connects to every server through the
official `mcp` package, offers their tools (those `allowed_tools` lets through) to the model
as function tools, and runs each call the model makes as an `mcp_server_tool_call` step
followed by an `mcp_server_tool_result` step. A server is reached only on loopback or when
the environment's network allowlist names its host, as the sandbox's own egress would be.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio

from ...errors import ConfigError, RequestError
from ...launch import is_loopback
from ...sandbox.egress import Allowlist
from ..models.base import Message, ToolCall, ToolSpec
from .emitter import Emitter

__all__ = ["McpServer", "McpTools", "mcp_servers", "reach_refusal"]

CONNECT_SECONDS = 15.0


@dataclass(frozen=True)
class McpServer:
    """One `mcp_server` tool declaration."""

    name: str
    url: str
    headers: Mapping[str, str]
    allowed: frozenset[str] | None  # None: every tool the server lists

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


def mcp_servers(tools: Any) -> list[McpServer]:
    """The `mcp_server` tools of a request, checked (a RequestError names what is wrong)."""
    servers = []
    for tool in tools or []:
        if not isinstance(tool, dict) or str(tool.get("type", "")).lower() != "mcp_server":
            continue
        url = tool.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise RequestError(
                f"mcp_server {tool.get('name') or ''!r} needs an http(s) url, e.g. "
                "'http://127.0.0.1:8000/mcp'"
            )
        headers = tool.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise RequestError("mcp_server headers must be an object of name: string value")
        name = str(tool.get("name") or urlsplit(url).hostname or "mcp")
        servers.append(McpServer(name, url, dict(headers), _allowed(tool.get("allowed_tools"))))
    return servers


def _allowed(allowed_tools: Any) -> frozenset[str] | None:
    """`allowed_tools: [{mode?, tools: [names]}]`: the names listed, if any are."""
    if allowed_tools is None:
        return None
    if not isinstance(allowed_tools, list):
        raise RequestError("mcp_server allowed_tools must be a list of {tools: [names]}")
    names: set[str] = set()
    for entry in allowed_tools:
        listed = entry.get("tools") if isinstance(entry, dict) else None
        if not isinstance(listed, list):
            raise RequestError("each mcp_server allowed_tools entry needs a tools list")
        names.update(str(name) for name in listed)
    return frozenset(names)


def _is_internal_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_link_local or address.is_unspecified


def reach_refusal(server: McpServer, allowlist: Allowlist | None) -> str | None:
    """Why the gateway will not connect to this server for this run; None if it may: the
    server is on loopback, or the environment's allowlist names its host (a private
    address only by exact name, as for the sandbox's egress)."""
    host = server.host
    if is_loopback(host):
        return None
    if allowlist is not None and allowlist.allows(host):
        if not _is_internal_address(host) or allowlist.names(host):
            return None
    return (
        f"mcp_server {server.name!r} at {host!r} is neither on loopback nor in the "
        "environment's network allowlist; add it: environment={'type': 'remote', 'network': "
        f"{{'allowlist': [{{'domain': {host!r}}}]}}}}, or run an MCP server on this machine"
    )


class McpTools:
    """The MCP servers of one run, connected: `async with McpTools(servers) as tools:`."""

    def __init__(self, servers: tuple[McpServer, ...]) -> None:
        self.servers = servers
        self.specs: tuple[ToolSpec, ...] = ()
        self._owner: dict[str, tuple[McpServer, Any]] = {}
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> McpTools:
        try:
            for server in self.servers:
                await self._connect(server)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _connect(self, server: McpServer) -> None:
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        try:
            http = await self._stack.enter_async_context(
                httpx2.AsyncClient(headers=dict(server.headers), timeout=CONNECT_SECONDS)
            )
            transport = streamable_http_client(server.url, http_client=http)
            # The client's task group stays open for the run: entering it is bounded by the
            # HTTP timeouts (a cancel scope around it could not be left first).
            client = Client(transport, read_timeout_seconds=CONNECT_SECONDS)
            await self._stack.enter_async_context(client)
            with anyio.fail_after(CONNECT_SECONDS):
                listed = await client.list_tools()
        except Exception as exc:
            raise ConfigError(
                f"cannot reach MCP server {server.name!r} at {server.url} "
                f"({type(exc).__name__}); start it, or fix the mcp_server url"
            ) from None
        specs = list(self.specs)
        for tool in listed.tools:
            if server.allowed is not None and tool.name not in server.allowed:
                continue
            if tool.name in self._owner:
                other = self._owner[tool.name][0].name
                raise RequestError(
                    f"MCP servers {other!r} and {server.name!r} both offer a tool "
                    f"{tool.name!r}; narrow one with allowed_tools"
                )
            self._owner[tool.name] = (server, client)
            parameters = dict(tool.input_schema or {"type": "object", "properties": {}})
            specs.append(ToolSpec(tool.name, tool.description or "", parameters))
        self.specs = tuple(specs)

    def handles(self, name: str) -> bool:
        return name in self._owner

    async def call(self, call: ToolCall, emitter: Emitter, timeout: float) -> Message:
        """Run one tool call on its server, as a call step and a result step."""
        server, client = self._owner[call.name]
        step = {"id": call.id, "name": call.name, "server_name": server.name}
        emitter.add({"type": "mcp_server_tool_call", **step, "arguments": call.arguments})
        try:
            with anyio.fail_after(timeout):
                answered = await client.call_tool(call.name, dict(call.arguments))
            result, text, is_error = _result(answered)
        except TimeoutError:
            result = text = f"the MCP tool {call.name!r} did not answer within {timeout:g} s"
            is_error = True
        except Exception as exc:  # the server failed this call: the model is told, and goes on
            result = text = f"the MCP tool {call.name!r} failed: {type(exc).__name__}: {exc}"
            is_error = True
        emitter.add(
            {
                "type": "mcp_server_tool_result",
                "call_id": call.id,
                "name": call.name,
                "server_name": server.name,
                "result": result,
            }
        )
        await emitter.drain()
        return Message("tool", text, tool_call_id=call.id, name=call.name, is_error=is_error)


def _result(answered: Any) -> tuple[Any, str, bool]:
    """An MCP CallToolResult as the step's `result` (a string when it is all text, else
    content blocks), the text the model reads, and whether it is an error."""
    blocks: list[dict[str, Any]] = []
    for item in answered.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            blocks.append({"type": "text", "text": item.text})
        elif kind in ("image", "audio"):
            blocks.append({"type": kind, "data": item.data, "mime_type": item.mime_type})
        else:  # resources and links: their JSON, as text
            blocks.append({"type": "text", "text": item.model_dump_json(exclude_none=True)})
    if not blocks and answered.structured_content is not None:
        text = json.dumps(answered.structured_content, sort_keys=True)
        return answered.structured_content, text, bool(answered.is_error)
    texts = [b["text"] for b in blocks if b["type"] == "text"]
    media = [f"[{b['type']} {b['mime_type']}]" for b in blocks if b["type"] != "text"]
    text = "\n".join([*texts, *media])
    result: Any = text if len(texts) == len(blocks) else blocks
    return result, text, bool(answered.is_error)
