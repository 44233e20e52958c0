"""Network egress by allowlist from a bubblewrap sandbox (no network of its own) through the
host's proxy: plain HTTP and CONNECT tunnels to allowed hosts work, everything else gets a
403 that says why, `*` does not open this machine's own ports, and the relay comes back
after a kernel restart. The only server contacted is one this test opens on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jupyter_interactions.errors import RequestError, UnsupportedError
from jupyter_interactions.sandbox.egress import MAX_CONNECTIONS, Allowlist, EgressProxy
from jupyter_interactions.sandbox.isolation import available_tiers
from jupyter_interactions.sandbox.local import LocalSandbox

pytestmark = pytest.mark.skipif(
    "bubblewrap" not in available_tiers(), reason="bubblewrap does not work on this machine"
)

# A new opener each time: urlopen's shared one keeps the proxy settings it first saw.
FETCH = """\
import urllib.request, urllib.error
try:
    opener = urllib.request.build_opener()
    with opener.open("http://127.0.0.1:{port}/hello", timeout=10) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code, exc.read().decode().strip())
except OSError as exc:
    print("failed", type(exc).__name__)
"""

TUNNEL = """\
import http.client, os
proxy = os.environ["HTTPS_PROXY"].removeprefix("http://")
host, port = proxy.split(":")
connection = http.client.HTTPConnection(host, int(port), timeout=10)
connection.set_tunnel("127.0.0.1", {port})
connection.request("GET", "/tunnelled")
response = connection.getresponse()
print(response.status, response.read().decode())
"""


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "auth": self.headers.get("Proxy-Authorization")})
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    async with LocalSandbox(root=tmp_path, tier="bubblewrap") as running:
        yield running


async def fetch(sandbox: LocalSandbox, port: int) -> str:
    result = await sandbox.run(FETCH.format(port=port))
    assert result.ok, result.text()
    return result.stdout.strip()


async def test_allowed_hosts_are_reached_and_others_are_refused(
    sandbox: LocalSandbox, listener: int
) -> None:
    assert await fetch(sandbox, listener) == "failed URLError"  # no network at all
    shared = f"import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{listener}/').status)"
    assert (await sandbox.run(shared)).error is not None
    await sandbox.allow_network(Allowlist(("127.0.0.1",)))
    # urlopen's shared opener, built before the allowlist, now goes through the relay too.
    assert (await sandbox.run(shared)).stdout == "200\n"
    assert await fetch(sandbox, listener) == '200 {"path": "/hello", "auth": null}'
    tunnelled = await sandbox.run(TUNNEL.format(port=listener))
    assert tunnelled.stdout.strip() == '200 {"path": "/tunnelled", "auth": null}', tunnelled.text()
    bash = await sandbox.run(
        f"python3 -c 'import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:{listener}/sh\").status)'",
        language="bash",
    )
    assert bash.stdout == "200\n", bash.text()  # subprocesses inherit the proxy settings

    # The allowlist can change while the sandbox runs: now only another domain.
    await sandbox.allow_network(Allowlist(("example.invalid",)))
    assert await fetch(sandbox, listener) == (
        "403 jupyter-interactions egress: 127.0.0.1 is not in this environment's network allowlist"
    )
    # `*` is the internet, not this machine's own ports.
    await sandbox.allow_network(Allowlist(("*",)))
    assert (await fetch(sandbox, listener)).startswith(
        "403 jupyter-interactions egress: 127.0.0.1 is on this machine or a private network"
    )


async def test_the_relay_comes_back_after_a_kernel_restart(
    sandbox: LocalSandbox, listener: int
) -> None:
    await sandbox.allow_network(Allowlist(("127.0.0.1",)))
    died = await sandbox.run("import os\nos._exit(1)")
    assert died.error is not None and died.error.name == "KernelDied"
    assert (await fetch(sandbox, listener)).startswith("200 ")


async def test_other_tiers_refuse_an_allowlist(tmp_path: Path) -> None:
    assert LocalSandbox.allowlist_refusal({"tier": "bubblewrap"}) is None
    refusal = LocalSandbox.allowlist_refusal({"tier": "limits"})
    assert refusal is not None and "needs the bubblewrap tier" in refusal
    async with LocalSandbox(root=tmp_path, tier="limits") as limited:
        with pytest.raises(UnsupportedError, match="needs the bubblewrap tier"):
            await limited.allow_network(Allowlist(("127.0.0.1",)))


@pytest.mark.parametrize(
    ("network", "error"),
    [
        ({"allowlist": [{"domain": "a.org", "transform": {"A": "b"}}]}, UnsupportedError),
        ({"allowlist": [{"domain": "a.org", "credential": "credentials/x"}]}, UnsupportedError),
        ({"allowlist": [{"domain": "http://a.org/"}]}, RequestError),
        ({"allowlist": [{"host": "a.org"}]}, RequestError),
        ({"allowlist": "everything"}, RequestError),
        ("enabled", RequestError),
    ],
)
def test_bad_allowlists_are_refused(network: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Allowlist.parse(network)


def test_allowlist_patterns() -> None:
    assert Allowlist.parse("disabled") is None
    assert Allowlist.parse({"allowlist": "disabled"}) is None
    allowlist = Allowlist.parse(
        {"allowlist": [{"domain": "PyPI.org"}, {"domain": "*.pythonhosted.org"}]}
    )
    assert allowlist is not None
    assert allowlist.allows("pypi.org") and allowlist.allows("files.pythonhosted.org")
    assert not allowlist.allows("pythonhosted.org") and not allowlist.allows("pypi.org.evil.com")
    assert allowlist.names("pypi.org.") and not allowlist.names("files.pythonhosted.org")


async def test_the_proxy_caps_connections_at_once(tmp_path: Path) -> None:
    proxy = EgressProxy(tmp_path / "egress.sock", Allowlist(("127.0.0.1",)))
    await proxy.start()
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):  # each waits for its request head
            held.append(await asyncio.open_unix_connection(str(proxy.socket_path)))
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_unix_connection(str(proxy.socket_path))
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"connections at once" in answer
        writer.close()
    finally:
        for _, held_writer in held:
            held_writer.close()
        await proxy.close()
    assert not proxy.socket_path.exists()
