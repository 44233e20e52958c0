"""Network egress by allowlist: an HTTP proxy on the host that a sandbox without a network
reaches through a Unix socket in its runtime directory.

Inside bubblewrap the kernel has only its own loopback. The in-kernel helper listens there
and relays each connection to this proxy's socket, and sets HTTP(S)_PROXY, so pip, requests,
urllib and curl work for the domains the environment allows and get a 403 for the rest.
The proxy resolves names itself and connects to the address it checked (no second lookup a
DNS answer could change), and refuses loopback, private and link-local addresses unless the
allowlist names that host exactly: `*` means the internet, not the gateway's own machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RequestError, UnsupportedError

__all__ = ["Allowlist", "EgressProxy"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
MAX_CONNECTIONS = 256  # per sandbox: code that opens sockets in a loop cannot exhaust the gateway
_HOP_HEADERS = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


@dataclass(frozen=True)
class Allowlist:
    """Domain patterns (`pypi.org`, `*.pythonhosted.org`, `*`), lower case."""

    domains: tuple[str, ...]

    @classmethod
    def parse(cls, network: Any) -> Allowlist | None:
        """The allowlist of an environment's `network` setting; None when it allows nothing
        (absent, "disabled", or {"allowlist": "disabled"})."""
        if network is None or network == "disabled":
            return None
        if not isinstance(network, dict) or set(network) - {"allowlist"}:
            raise RequestError('network must be "disabled" or {"allowlist": [{"domain": ...}]}')
        entries = network.get("allowlist")
        if entries == "disabled" or entries is None:
            return None
        if not isinstance(entries, list):
            raise RequestError('network.allowlist must be a list of {"domain": ...} or "disabled"')
        domains = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("domain"), str):
                raise RequestError('each network.allowlist entry needs a "domain" string')
            if entry.get("credential") is not None or entry.get("transform") is not None:
                raise UnsupportedError(
                    f"allowlist entry {entry['domain']!r}: credentials and header transforms "
                    "need Google's egress proxy (this one does not look inside TLS); put the "
                    "header in the agent's code, e.g. from an env variable"
                )
            domain = entry["domain"].strip().lower().rstrip(".")
            if not domain or any(c in domain for c in " /:@"):
                raise RequestError(f"allowlist domain {entry['domain']!r} is not a domain name")
            domains.append(domain)
        return cls(tuple(domains))

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.domains)

    def names(self, host: str) -> bool:
        """Listed literally, not through a wildcard."""
        return host.lower().rstrip(".") in self.domains


class EgressProxy:
    """An HTTP proxy (CONNECT for TLS, absolute-form requests for plain HTTP) on a Unix
    socket, allowing only the allowlist's hosts. `allowlist` may be replaced while it runs."""

    def __init__(self, socket_path: Path, allowlist: Allowlist, owner: int | None = None):
        self.socket_path = socket_path
        self.allowlist = allowlist
        self.owner = owner
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        if self.owner is not None:  # the sandbox's own uid connects to it
            os.chown(self.socket_path, self.owner, -1)
        os.chmod(self.socket_path, 0o600)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Closing the connections ends their tasks (cancelling a client_connected_cb task
        # makes asyncio log the cancellation as an error).
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if server is not None:
            await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if len(self._tasks) > MAX_CONNECTIONS:
                await _refuse(writer, 503, f"more than {MAX_CONNECTIONS} connections at once")
                return
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")  # at most the reader's 64 KiB limit
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = [*request_line.split(" ", 2), "", ""][:3]
        if method == "CONNECT":
            host, port = _host_port(target, default_port=443)
        elif target.startswith("http://"):
            rest = target.removeprefix("http://")
            authority, _, path = rest.partition("/")
            host, port = _host_port(authority, default_port=80)
            kept = [h for h in header_lines if h and h.split(":", 1)[0].lower() not in _HOP_HEADERS]
            request = "\r\n".join([f"{method} /{path} {version}", *kept, "Connection: close"])
            head = (request + "\r\n\r\n").encode("latin-1")
        else:
            return await _refuse(writer, 400, "send absolute-form http:// requests or CONNECT")
        address, why = await self._check(host)
        if address is None:
            log.info("egress refused: %s:%s (%s)", host, port, why)
            return await _refuse(writer, 403, why)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), CONNECT_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as exc:
            return await _refuse(writer, 502, f"cannot connect to {host}:{port} ({exc})")
        log.info("egress: %s:%s", host, port)
        self._writers.add(upstream_writer)
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream_writer.write(head)
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            self._writers.discard(upstream_writer)
            upstream_writer.close()

    async def _check(self, host: str) -> tuple[str | None, str]:
        """The address to connect to, or None and why not."""
        if not self.allowlist.allows(host):
            return None, f"{host} is not in this environment's network allowlist"
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            return None, f"cannot resolve {host} ({exc})"
        addresses = [str(info[4][0]) for info in infos]
        if not self.allowlist.names(host) and any(_internal(a) for a in addresses):
            return None, (
                f"{host} is on this machine or a private network; list it exactly (not by a "
                "wildcard) to allow it"
            )
        return addresses[0], ""


def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def _host_port(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):  # [IPv6]:port
        host, _, rest = authority[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = authority.partition(":")
    if not host:
        raise ValueError("no host")
    return host, int(port) if port else default_port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def _refuse(writer: asyncio.StreamWriter, status: int, why: str) -> None:
    reasons = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Busy"}
    body = f"jupyter-interactions egress: {why}\n".encode()
    writer.write(
        f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
