"""JupyterSandbox against a real `jupyter server` (contents API) and a real Kernel Gateway
(files through the kernel), both on loopback, driven exactly as the gateway drives it."""

from __future__ import annotations

import asyncio
import base64
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.sandbox.jupyter_servers import SERVERS, RunningServer, free_port, session_server

from jupyter_interactions.errors import (
    NotFoundError,
    RequestError,
    SandboxError,
    SandboxUnavailable,
)
from jupyter_interactions.sandbox import jupyter_files
from jupyter_interactions.sandbox.jupyter import JupyterSandbox
from jupyter_interactions.sandbox.jupyter_files import ContentsFiles, KernelFiles

# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


async def until(condition: Callable[[], bool], patience: float = 60.0) -> None:
    """Wait for something the code under test does in its own time (not a speed check:
    `patience` only bounds a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while not condition():
        assert loop.time() < deadline, "it never happened"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> RunningServer:
    return session_server(request, request.param)


def sandbox_for(server: RunningServer, **options: object) -> JupyterSandbox:
    return JupyterSandbox(server.url, token=server.token, env_id=uuid.uuid4().hex[:8], **options)  # type: ignore[arg-type]


def http_status(server: RunningServer, path: str) -> int:
    request = urllib.request.Request(
        server.url + path, headers={"Authorization": f"token {server.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
async def sandbox(server: RunningServer) -> AsyncIterator[JupyterSandbox]:
    async with sandbox_for(server, interrupt_grace=120.0) as running:  # the interrupt takes
        yield running


@pytest.fixture
async def restartable(request: pytest.FixtureRequest) -> AsyncIterator[JupyterSandbox]:
    """For the slow restart paths: on jupyter server only, since Kernel Gateway restarts
    kernels with the same jupyter_server handler and jupyter_client restarter."""
    server = session_server(request, "jupyter-server")
    async with sandbox_for(server, interrupt_grace=1.0) as running:
        yield running


# Kernel Gateway has no contents API, so "auto" there is already the kernel backend.
BACKENDS = [("jupyter-server", "auto"), ("jupyter-server", "kernel"), ("kernel-gateway", "auto")]


@pytest.fixture(params=BACKENDS, ids=[f"{kind}-files-{files}" for kind, files in BACKENDS])
async def on_files(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningServer, JupyterSandbox]]:
    """A sandbox on each file backend; small chunks, so a modest file takes the chunked
    paths of both backends."""
    monkeypatch.setattr(jupyter_files, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(jupyter_files, "SINGLE_PUT_BYTES", 100 * 1024)
    kind, files = request.param
    server = session_server(request, kind)
    async with sandbox_for(server, files=files) as running:
        yield server, running


async def test_code_and_files_live_in_the_workspace_on_the_server(
    sandbox: JupyterSandbox, server: RunningServer
) -> None:
    assert sandbox.isolation == "remote" and sandbox.root is None
    result = await sandbox.run("import os\nopen('by-code.txt', 'w').write('k')\nprint(os.getcwd())")
    workspace = (server.root_dir / sandbox.remote_root / "workspace").resolve()
    assert Path(result.stdout.strip()) == workspace
    assert (workspace / "by-code.txt").read_text() == "k"
    await sandbox.files.write("workspace/by-files.txt", b"on the server")
    assert (workspace / "by-files.txt").read_bytes() == b"on the server"
    # Kernel Gateway has no /api/contents: its files go through the kernel.
    expected = ContentsFiles if server.kind == "jupyter-server" else KernelFiles
    assert type(sandbox.files) is expected


async def test_output_streams_in_order_while_the_code_runs(sandbox: JupyterSandbox) -> None:
    seen: list[tuple[str, str]] = []
    go = Path(sandbox.remote_root_abs) / "workspace" / "go"

    def on_output(stream: str, text: str) -> None:
        seen.append((stream, text))
        go.touch()  # the code goes on only once its first line has reached us: streamed

    code = (
        "import os, sys, time\n"
        "print('one', flush=True)\n"
        "while not os.path.exists('go'):\n"
        "    time.sleep(0.01)\n"
        "print('two', file=sys.stderr, flush=True)\n"
        "print('three')\n"
    )
    result = await sandbox.run(code, on_output=on_output, timeout=120)
    assert not result.timed_out, "the first line did not arrive while the code ran"
    assert result.stdout == "one\nthree\n" and result.stderr == "two\n"
    assert seen == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]


async def test_a_run_that_ignores_interrupts_gets_a_fresh_kernel(
    restartable: JupyterSandbox,
) -> None:
    sandbox = restartable
    await sandbox.run("lost = 1")
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('stubborn', flush=True)\n"
        "while True:\n"
        "    time.sleep(0.01)"
    )
    result = await sandbox.run(stubborn, timeout=0.5)
    assert result.timed_out and result.stdout == "stubborn\n"
    assert result.error is not None and result.error.name == "KernelRestarted"
    assert "variables are lost" in result.error.value
    assert sandbox.restarts == 1
    after = await sandbox.run("import os\nprint('lost' in dir(), os.path.basename(os.getcwd()))")
    assert after.stdout == "False workspace\n"


async def test_a_dead_kernel_is_reported_and_the_next_run_starts_fresh(
    restartable: JupyterSandbox,
) -> None:
    sandbox = restartable
    await sandbox.run("before = 1")
    died = await sandbox.run("import os\nprint('bye', flush=True)\nos._exit(1)")
    assert died.error is not None and died.error.name == "KernelDied"
    assert "variables are lost" in died.text()
    after = await sandbox.run("import os\nprint('before' in dir(), os.path.basename(os.getcwd()))")
    assert after.stdout == "False workspace\n"
    # Dying between runs is reported by the next run too, not hidden in a fresh kernel.
    channel = sandbox._channel
    assert channel is not None
    restarts = channel.restarts
    await sandbox.run(
        "again = 1\nimport os, threading\nthreading.Timer(0.2, os._exit, [1]).start()"
    )
    await until(lambda: channel.restarts > restarts)  # the server restarted it, between runs
    noticed = await sandbox.run("print(again)")
    assert noticed.error is not None and noticed.error.name == "KernelDied"
    later = await sandbox.run("import os\nprint('again' in dir(), os.path.basename(os.getcwd()))")
    assert later.stdout == "False workspace\n"


def live_processes_in_group(group: int) -> list[int]:
    """Processes of a process group that are still running (zombies waiting for a reaper
    that this container may lack do not count). The servers run on this machine."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


async def test_a_bash_run_past_its_timeout_is_killed_with_its_children(
    sandbox: JupyterSandbox,
) -> None:
    await sandbox.run("kept = 5")
    script = "echo $$ > bash.pid; sleep 60 & sleep 60"
    result = await sandbox.run(script, language="bash", timeout=1)
    assert result.timed_out
    group = int((await sandbox.files.read("workspace/bash.pid")).decode())
    assert live_processes_in_group(group) == []
    assert (await sandbox.run("print(kept)")).stdout == "5\n"


async def test_runs_share_one_persistent_websocket(sandbox: JupyterSandbox) -> None:
    # How quick that is (quick ACKs included) is measured by benchmarks/sandbox.py.
    channel = sandbox._channel
    for _ in range(15):
        assert (await sandbox.run("1")).ok
    assert sandbox._channel is channel and channel is not None and channel.lost is None


async def test_kernel_env_reaches_a_kernel_gateway_kernel(request: pytest.FixtureRequest) -> None:
    server = session_server(request, "kernel-gateway")
    async with sandbox_for(server, kernel_env={"KERNEL_WHO": "agent-7"}) as sandbox:
        result = await sandbox.run("import os\nprint(os.environ.get('KERNEL_WHO'))")
    assert result.stdout == "agent-7\n"


async def test_files_round_trip_byte_for_byte(
    on_files: tuple[RunningServer, JupyterSandbox],
) -> None:
    _, sandbox = on_files
    blob = os.urandom(300 * 1024 + 7)
    small = bytes(range(256)) * 4
    info = await sandbox.files.write("workspace/data/blob.bin", blob)
    assert (info.path, info.type, info.size) == ("workspace/data/blob.bin", "file", len(blob))
    assert await sandbox.files.read("workspace/data/blob.bin") == blob
    await sandbox.files.write("workspace/data/small.bin", small)
    await sandbox.files.write("workspace/data/small.bin", small[::-1])  # replaced whole
    assert await sandbox.files.read("workspace/data/small.bin") == small[::-1]
    await sandbox.files.write("workspace/empty.txt", b"")
    assert await sandbox.files.read("workspace/empty.txt") == b""
    seen = await sandbox.run("print(len(open('data/blob.bin', 'rb').read()))")
    assert seen.stdout == f"{len(blob)}\n"
    names = [e.path for e in await sandbox.files.list("workspace/data")]
    assert names == ["workspace/data/blob.bin", "workspace/data/small.bin"], "temporaries left"


async def test_listing_stat_and_missing_files(
    on_files: tuple[RunningServer, JupyterSandbox],
) -> None:
    _, sandbox = on_files
    await sandbox.files.write("workspace/a/one.csv", b"x,y\n1,2\n")
    await sandbox.files.write("workspace/two.png", PNG)
    top = await sandbox.files.list()
    assert [(e.path, e.type) for e in top] == [("workspace", "directory")]
    everything = {e.path: e for e in await sandbox.files.list("workspace", recursive=True)}
    assert set(everything) == {"workspace/a", "workspace/a/one.csv", "workspace/two.png"}
    assert everything["workspace/a/one.csv"].size == 8
    assert everything["workspace/two.png"].mime_type == "image/png"
    assert everything["workspace/a"].mime_type == "inode/directory"
    stat = await sandbox.files.stat("workspace/two.png")
    assert stat.size == len(PNG) and stat.name == "two.png"
    assert abs(stat.modified - time.time()) < 120
    assert [e.path for e in await sandbox.files.list("workspace/two.png")] == ["workspace/two.png"]
    with pytest.raises(NotFoundError):
        await sandbox.files.read("workspace/nothing.txt")
    with pytest.raises(NotFoundError):
        await sandbox.files.stat("workspace/nothing")
    with pytest.raises(NotFoundError):
        await sandbox.files.list("nowhere")
    with pytest.raises(RequestError, match="directory"):
        await sandbox.files.read("workspace/a")
    with pytest.raises(RequestError, match="directory"):
        await sandbox.files.write("workspace/a", b"x")
    # Dot-files too (the contents API alone refuses them).
    await sandbox.files.write("workspace/.config/settings.toml", b"k = 1\n")
    assert await sandbox.files.read("workspace/.config/settings.toml") == b"k = 1\n"
    assert "workspace/.config" in [e.path for e in await sandbox.files.list("workspace")]


async def test_paths_and_symlinks_that_leave_the_root_are_refused(
    on_files: tuple[RunningServer, JupyterSandbox],
) -> None:
    server, sandbox = on_files
    for path in ("../outside.txt", "/etc/passwd", "workspace/../../x", "a/../../b"):
        with pytest.raises(RequestError):
            await sandbox.files.read(path)
        with pytest.raises(RequestError):
            await sandbox.files.write(path, b"no")
        with pytest.raises(RequestError):
            await sandbox.files.list(path)
    secret = server.root_dir / f"secret-{uuid.uuid4().hex}.txt"
    secret.write_text("not yours")
    made = await sandbox.run(
        f"import os\nos.symlink({str(secret)!r}, 'leak.txt')\nos.symlink('/', 'slash')"
    )
    assert made.ok, made.text()
    # Links are listed as what they are and never followed, wherever they point.
    with pytest.raises(RequestError, match="symbolic link"):
        await sandbox.files.read("workspace/leak.txt")
    with pytest.raises(RequestError, match="symbolic link"):
        await sandbox.files.write("workspace/leak.txt", b"overwritten")
    with pytest.raises(RequestError, match="symbolic link"):
        await sandbox.files.write("workspace/slash/tmp/evil.txt", b"no")
    listed = {e.path: e.type for e in await sandbox.files.list("workspace")}
    assert listed["workspace/leak.txt"] == listed["workspace/slash"] == "symlink"
    assert secret.read_text() == "not yours"
    assert not (server.root_dir / "x").exists()


async def test_stop_is_idempotent_and_releases_the_kernel(server: RunningServer) -> None:
    sandbox = sandbox_for(server)
    await sandbox.start()
    kernel_id = sandbox.kernel_id
    assert kernel_id is not None
    assert await asyncio.to_thread(http_status, server, f"api/kernels/{kernel_id}") == 200
    await sandbox.stop()
    await sandbox.stop()
    assert await asyncio.to_thread(http_status, server, f"api/kernels/{kernel_id}") == 404
    with pytest.raises(SandboxError, match="not running"):
        await sandbox.run("1")


async def test_a_wrong_token_is_refused_without_showing_it(server: RunningServer) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    sandbox = JupyterSandbox(server.url, token=wrong)
    with pytest.raises(SandboxUnavailable, match="check the token") as caught:
        await sandbox.start()
    assert wrong not in str(caught.value) and wrong not in repr(sandbox)
    assert server.token not in str(caught.value)


async def test_an_unknown_kernel_name_lists_the_known_ones(server: RunningServer) -> None:
    sandbox = JupyterSandbox(server.url, token=server.token, kernel_name="no-such-kernel")
    with pytest.raises(SandboxUnavailable, match=r"no 'no-such-kernel' kernel.*'python3'"):
        await sandbox.start()


class CuttableLink:
    """A loopback TCP relay in front of a server: the test can drop its connections (as a
    proxy's idle timeout does) or take it down and bring it back (as an outage does)."""

    def __init__(self, target: RunningServer, drop_websockets: int = 0) -> None:
        self.target_port = int(target.url.rsplit(":", 1)[1].strip("/"))
        self.port = 0
        # The first `drop_websockets` kernel websockets are dropped once the server has
        # accepted them, before any message: as a server that gives up on a slow kernel does.
        self.drop_websockets = drop_websockets
        self.dropped = 0
        self._listener: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def up(self) -> None:
        self._listener = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._open |= {writer, up_writer}
        if self.dropped < self.drop_websockets and await self._accepted_websocket(
            reader, writer, up_reader, up_writer
        ):
            self.dropped += 1
            for end in (writer, up_writer):
                end.transport.abort()
                self._open.discard(end)
            return

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()
                self._open.discard(sink)

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    @staticmethod
    async def _accepted_websocket(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> bool:
        """Relay one request's head and, if it opens a kernel websocket, the server's 101;
        True then (nothing more is relayed), else the request goes on as usual."""
        head = await reader.readuntil(b"\r\n\r\n")
        up_writer.write(head)
        if b"/channels?" not in head.split(b"\r\n", 1)[0]:
            return False
        writer.write(await up_reader.readuntil(b"\r\n\r\n"))
        await writer.drain()
        return True

    def cut(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def down(self) -> None:
        assert self._listener is not None
        self._listener.close()
        self.cut()
        await asyncio.gather(*self._relays, return_exceptions=True)
        await self._listener.wait_closed()


async def test_a_dropped_connection_is_reopened_and_an_outage_is_clear(
    server: RunningServer,
) -> None:
    link = CuttableLink(server)
    await link.up()
    sandbox = JupyterSandbox(link.url, token=server.token, env_id=uuid.uuid4().hex[:8])
    try:
        await sandbox.start()
        await sandbox.run("kept = 9")
        channel = sandbox._channel
        assert channel is not None
        link.cut()
        await until(lambda: channel.lost is not None)
        assert (await sandbox.run("print(kept)")).stdout == "9\n"  # same kernel, new socket
        channel = sandbox._channel
        assert channel is not None
        await link.down()
        await until(lambda: channel.lost is not None)
        with pytest.raises(SandboxUnavailable, match="cannot reach the Jupyter server"):
            await sandbox.run("print(kept)")
        await link.up()
        assert (await sandbox.run("print(kept)")).stdout == "9\n"
    finally:
        await sandbox.stop()
        await link.down()


async def test_a_kernel_websocket_dropped_while_the_kernel_starts_is_reopened(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    link = CuttableLink(server, drop_websockets=2)
    await link.up()
    sandbox = JupyterSandbox(link.url, token=server.token, env_id=uuid.uuid4().hex[:8])
    try:
        with caplog.at_level("INFO", logger="jupyter_interactions.sandbox.jupyter"):
            await sandbox.start()
        assert link.dropped == 2
        assert caplog.text.count("reconnected to kernel") == 2
        assert (await sandbox.run("print(6 * 7)")).stdout == "42\n"
    finally:
        await sandbox.stop()
        await link.down()


async def test_a_server_that_is_not_running_gives_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/base/"
    sandbox = JupyterSandbox(url + "?token=abc123", token="s3cret-token")
    with pytest.raises(SandboxUnavailable, match="cannot reach the Jupyter server") as caught:
        await sandbox.start()
    message = str(caught.value)
    assert url in message and "check the URL" in message
    assert "s3cret-token" not in message and "abc123" not in message
    await sandbox.stop()  # nothing started: still fine
