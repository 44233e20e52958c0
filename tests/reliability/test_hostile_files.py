"""A sandbox's entries are hostile: a FIFO, a socket, a device, a symlink loop, links out of
the environment and a 10,000-entry directory, made by an agent's own code (and, for the
device, in the environment's directory by this test as root). Through a real gateway and a
real local sandbox: every file route lists them as what they are or refuses them with a 400
that names the path and the reason, and the gateway stays responsive while downloads of
them are pending."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2 as httpx
import pytest
import pytest_asyncio
from google.genai import errors as classic_errors
from tests.conftest import GatewayProcess

from jupyter_interactions._sdk import errors

SCRIPTED = {"type": "dynamic", "model": "scripted"}
MANY = 10_000
# No request may hang: a route that never answers fails the test instead of stalling it.
REQUEST_TIMEOUT = 60.0

HOSTILE_CODE = f"""\
import os, socket
open('data.txt', 'w').write('plain')
os.mkfifo('trap')
os.symlink('loop_b', 'loop_a')
os.symlink('loop_a', 'loop_b')
listener = socket.socket(socket.AF_UNIX)
listener.bind('sock')
os.symlink('/etc/passwd', 'escape')
os.symlink('/etc', 'etc')
os.symlink('data.txt', 'alias')
os.makedirs('many')
for i in range({MANY}):
    open(f'many/f{{i:05d}}.txt', 'w').close()
print('made')
"""

EXPECTED_TYPES = {
    "workspace/data.txt": "file",
    "workspace/trap": "fifo",
    "workspace/loop_a": "symlink",
    "workspace/loop_b": "symlink",
    "workspace/sock": "socket",
    "workspace/escape": "symlink",
    "workspace/etc": "symlink",
    "workspace/alias": "symlink",
    "workspace/many": "directory",
}


@pytest_asyncio.fixture
async def http(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=gateway.url,
        headers={"x-goog-api-key": gateway.token},
        timeout=REQUEST_TIMEOUT,
        limits=httpx.Limits(max_connections=64),
    ) as client:
        yield client


@pytest.fixture(scope="module")
def hostile_env(gateway: GatewayProcess) -> str:
    """An environment whose workspace the agent's code filled with hostile entries."""
    sdk = gateway.client(timeout=int(REQUEST_TIMEOUT * 1000))
    try:
        turn = sdk.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment={"type": "remote"},
            input=f"```python\n{HOSTILE_CODE}```",
        )
    finally:
        sdk.close()
    assert turn.status == "completed", turn
    env_id = str(turn.environment_id)
    if os.geteuid() == 0:  # a device node, as only root can make one: /dev/zero's numbers
        workspace = gateway.data_dir / "environments" / env_id / "workspace"
        os.mknod(workspace / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    return env_id


def tar_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def files_url(env_id: str, path: str = "") -> str:
    return f"v1/environments/{env_id}/files/{quote(path)}"


async def list_all(http: httpx.AsyncClient, env_id: str, path: str, **query: Any) -> list[dict]:
    """Every entry of a listing, page by page."""
    entries: list[dict] = []
    token = None
    while True:
        params = {**query, **({"page_token": token} if token else {})}
        response = await http.get(files_url(env_id, path), params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["files"]
        token = body.get("next_page_token")
        if not token:
            return entries


async def test_listings_show_every_entry_as_what_it_is(
    http: httpx.AsyncClient, gateway: GatewayProcess, hostile_env: str
) -> None:
    workspace = {e["path"]: e for e in await list_all(http, hostile_env, "workspace")}
    for path, kind in EXPECTED_TYPES.items():
        assert workspace[path]["type"] == kind, workspace[path]
    assert workspace["workspace/trap"]["mime_type"] == "inode/fifo"
    if os.geteuid() == 0:
        assert workspace["workspace/zero"]["type"] == "device"

    # A directory of 10,000 entries, in pages of at most 1000: each exactly once, in order.
    names = [
        e["name"] for e in await list_all(http, hostile_env, "workspace/many", page_size="1000")
    ]
    assert names == [f"f{i:05d}.txt" for i in range(MANY)]

    # The whole environment, recursively: links are not followed, the loop is just two links.
    everything = await list_all(http, hostile_env, "", recursive="true", page_size="1000")
    paths = [e["path"] for e in everything]
    assert len(paths) == len(set(paths))
    assert set(EXPECTED_TYPES) <= set(paths)
    assert sum(p.startswith("workspace/many/") for p in paths) == MANY
    assert not any(p.startswith(("workspace/etc/", "workspace/loop_a/")) for p in paths)

    # One entry, asked for by its path, is shown as what it is (not followed, not opened).
    for path in ("workspace/trap", "workspace/loop_a", "workspace/escape", "workspace/sock"):
        single = await list_all(http, hostile_env, path)
        assert [(e["path"], e["type"]) for e in single] == [(path, EXPECTED_TYPES[path])]


async def test_downloads_of_anything_but_a_regular_file_are_refused_with_the_reason(
    http: httpx.AsyncClient, hostile_env: str
) -> None:
    reasons = {
        "workspace/trap": "FIFO",
        "workspace/sock": "socket",
        "workspace/loop_a": "symbolic link",
        "workspace/escape": "symbolic link",
        "workspace/alias": "symbolic link",
        "workspace/etc/passwd": "symbolic link",
    }
    if os.geteuid() == 0:
        reasons["workspace/zero"] = "device"
    for path, reason in reasons.items():
        response = await http.get(files_url(hostile_env, path), params={"alt": "media"})
        assert response.status_code == 400, (path, response.text)
        message = response.json()["error"]["message"]
        assert path in message and reason in message, message
    data = await http.get(files_url(hostile_env, "workspace/data.txt"), params={"alt": "media"})
    assert data.status_code == 200 and data.content == b"plain"
    # A directory downloads as a tar of its regular files: nothing else is opened or followed.
    tar = await http.get(files_url(hostile_env, "workspace"), params={"alt": "media"})
    assert tar.status_code == 200, tar.text
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as archive:
        members = archive.getmembers()
    assert [(m.name, m.isfile()) for m in members] == [("data.txt", True)]


async def test_uploads_never_write_through_a_hostile_entry(
    gateway: GatewayProcess, hostile_env: str
) -> None:
    sdk = gateway.client(timeout=int(REQUEST_TIMEOUT * 1000))
    passwd = Path("/etc/passwd").read_bytes()
    try:
        for target in (
            "workspace/trap",
            "workspace/loop_a",
            "workspace/loop_a/inside.txt",
            "workspace/escape",
            "workspace/etc/evil.txt",
            "workspace/sock",
        ):
            with pytest.raises(errors.BadRequestError) as refused:
                sdk.environments.files.upload(
                    environment=hostile_env, path=target, file=b"evil", overwrite=True
                )
            assert refused.value.status_code == 400, (target, refused.value)
            assert repr(target) in str(refused.value), refused.value
        # An archive unpacked over hostile entries: refused before anything is placed.
        for member in ("etc/evil.txt", "loop_a/inside.txt", "trap"):
            with pytest.raises(classic_errors.ClientError) as refused:
                sdk.environments.files.upload(
                    environment=hostile_env,
                    path="workspace",
                    file=tar_of({"first.txt": b"first", member: b"evil"}),
                    extract=True,
                    overwrite=True,
                )
            assert refused.value.code == 400, refused.value
            assert repr(f"workspace/{member.split('/')[0]}") in str(refused.value), refused.value
    finally:
        sdk.close()
    workspace = gateway.data_dir / "environments" / hostile_env / "workspace"
    assert not (workspace / "first.txt").exists()
    assert stat.S_ISFIFO(os.lstat(workspace / "trap").st_mode)
    assert os.readlink(workspace / "escape") == "/etc/passwd"
    assert Path("/etc/passwd").read_bytes() == passwd
    assert not Path("/etc/evil.txt").exists()


async def test_a_fork_copies_entries_as_they_are_and_follows_no_link(
    http: httpx.AsyncClient, hostile_env: str
) -> None:
    forked = await http.post("v1/environments", json={"from_environment": hostile_env})
    assert forked.status_code == 200, forked.text
    copied = {e["path"]: e["type"] for e in await list_all(http, forked.json()["id"], "workspace")}
    # Sockets and devices hold no data: not copied. Everything else is, as what it is.
    assert copied == {p: t for p, t in EXPECTED_TYPES.items() if t != "socket"}
    data = await http.get(
        files_url(forked.json()["id"], "workspace/data.txt"), params={"alt": "media"}
    )
    assert data.content == b"plain"
    many = await list_all(http, forked.json()["id"], "workspace/many", page_size="1000")
    assert len(many) == MANY


async def send_request(gateway: GatewayProcess, path: str) -> tuple[Any, Any]:
    """Send a GET on a connection of its own, without waiting for the answer."""
    where = urlsplit(gateway.url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    writer.write(
        f"GET /{path} HTTP/1.1\r\nHost: {where.netloc}\r\n"
        f"x-goog-api-key: {gateway.token}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    return reader, writer


async def answer_status(reader: Any, writer: Any) -> int:
    try:
        status_line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_the_gateway_stays_responsive_while_hostile_downloads_are_pending(
    http: httpx.AsyncClient, gateway: GatewayProcess, hostile_env: str
) -> None:
    """More hostile downloads than the gateway has worker threads are sent first; then
    everyday calls complete, and every download ends with a 400."""
    other = await http.post("v1/environments", json={})
    assert other.status_code == 200, other.text
    other_id = other.json()["id"]
    pending = [
        await send_request(gateway, files_url(hostile_env, path) + "?alt=media")
        for path in ("workspace/trap", "workspace/sock") * 8
    ]
    everyday = await asyncio.gather(
        http.get(f"v1/environments/{other_id}"),
        http.get("v1/environments"),
        http.post("v1/environments", json={}),
        http.get(files_url(hostile_env, "workspace")),
        http.post("v1/interactions", json={"model": "echo", "input": "still here"}),
    )
    assert [r.status_code for r in everyday] == [200] * len(everyday), [r.text for r in everyday]
    assert everyday[-1].json()["status"] == "completed"
    statuses = [await answer_status(reader, writer) for reader, writer in pending]
    assert statuses == [400] * len(pending)

    # And the sandbox itself still works: a new agent turn in the hostile environment.
    sdk = gateway.client(timeout=int(REQUEST_TIMEOUT * 1000))
    try:
        turn = await sdk.aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment=hostile_env,
            input="```python\nimport os\nprint(len(os.listdir('many')))\n```",
        )
        assert turn.status == "completed", turn
    finally:
        await sdk.aio.aclose()
        sdk.close()
