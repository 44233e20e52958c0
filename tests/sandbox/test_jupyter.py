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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_jupyter_servers import SERVERS, RunningServer, free_port, session_server

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
    async with sandbox_for(server, interrupt_grace=1.0) as running:
        yield running


async def test_state_persists_and_code_runs_in_the_workspace(
    sandbox: JupyterSandbox, server: RunningServer
) -> None:
    assert sandbox.isolation == "remote"
    assert (await sandbox.run("x = 41")).ok
    result = await sandbox.run("import os\nprint(os.getcwd())\nx + 1")
    assert result.outputs == [{"text/plain": "42"}]
    workspace = server.root_dir / sandbox.remote_root / "workspace"
    assert Path(result.stdout.strip()) == workspace.resolve()


async def test_output_streams_in_order_while_the_code_runs(sandbox: JupyterSandbox) -> None:
    seen: list[tuple[str, str, float]] = []
    code = (
        "import sys, time\n"
        "print('one', flush=True)\n"
        "time.sleep(0.6)\n"
        "print('two', file=sys.stderr, flush=True)\n"
        "print('three')\n"
    )
    result = await sandbox.run(code, on_output=lambda s, t: seen.append((s, t, time.monotonic())))
    finished = time.monotonic()
    assert result.stdout == "one\nthree\n" and result.stderr == "two\n"
    assert [(stream, text) for stream, text, _ in seen] == [
        ("stdout", "one\n"),
        ("stderr", "two\n"),
        ("stdout", "three\n"),
    ]
    assert finished - seen[0][2] > 0.4, "the first line arrived only at the end: not streamed"


async def test_rich_outputs_come_back_as_mimebundles(sandbox: JupyterSandbox) -> None:
    code = (
        "from IPython.display import HTML, Image, display\n"
        "display(HTML('<b>bold</b>'))\n"
        f"display(Image(data={PNG!r}))\n"
        "{'a': 1}\n"
    )
    result = await sandbox.run(code)
    assert result.ok
    html, image, value = result.outputs
    assert html["text/html"] == "<b>bold</b>"
    assert base64.b64decode(image["image/png"]) == PNG
    assert value == {"text/plain": "{'a': 1}"}


async def test_an_error_is_reported_and_the_sandbox_keeps_working(sandbox: JupyterSandbox) -> None:
    result = await sandbox.run("y = 3\n1 / 0")
    assert not result.ok and result.error is not None
    assert (result.error.name, result.error.value) == ("ZeroDivisionError", "division by zero")
    assert "ZeroDivisionError: division by zero" in result.text()
    assert (await sandbox.run("y * 2")).outputs == [{"text/plain": "6"}]


async def test_timeout_interrupts_and_keeps_state(sandbox: JupyterSandbox) -> None:
    await sandbox.run("kept = 7")
    began = time.monotonic()
    result = await sandbox.run("while True:\n    pass", timeout=1.0)
    assert result.timed_out and not result.ok
    assert result.error is not None and result.error.name == "KeyboardInterrupt"
    assert time.monotonic() - began < 5
    assert (await sandbox.run("kept")).outputs == [{"text/plain": "7"}]
    assert not any("restarted" in warning for warning in sandbox.warnings)


async def test_a_run_that_ignores_interrupts_gets_a_fresh_kernel(sandbox: JupyterSandbox) -> None:
    await sandbox.run("lost = 1")
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "while True:\n"
        "    time.sleep(0.01)"
    )
    result = await sandbox.run(stubborn, timeout=0.5)
    assert result.timed_out
    assert any("restarted" in warning for warning in sandbox.warnings)
    after = await sandbox.run("import os\nprint('lost' in dir(), os.path.basename(os.getcwd()))")
    assert after.stdout == "False workspace\n"


async def test_bash_runs_in_the_workspace_and_fails_visibly(sandbox: JupyterSandbox) -> None:
    seen: list[tuple[str, str]] = []
    result = await sandbox.run(
        "echo hello > made-by-bash.txt; cat made-by-bash.txt; basename $PWD; echo oops >&2",
        language="bash",
        on_output=lambda s, t: seen.append((s, t)),
    )
    assert result.ok
    assert result.stdout == "hello\nworkspace\n" and result.stderr == "oops\n"
    assert ("stderr", "oops\n") in seen
    assert await sandbox.files.read("workspace/made-by-bash.txt") == b"hello\n"
    failed = await sandbox.run("exit 3", language="bash")
    assert failed.error is not None and "exit status 3" in failed.error.value


async def test_the_file_backend_fits_the_server(
    sandbox: JupyterSandbox, server: RunningServer
) -> None:
    await sandbox.files.write("workspace/here.txt", b"on the server")
    if server.kind == "jupyter-server":
        assert isinstance(sandbox.files, ContentsFiles)
    else:
        assert isinstance(sandbox.files, KernelFiles)  # Kernel Gateway has no /api/contents
    on_disk = server.root_dir / sandbox.remote_root / "workspace" / "here.txt"
    assert on_disk.read_bytes() == b"on the server"


@pytest.mark.parametrize("backend", ["auto", "kernel"])
async def test_files_round_trip_byte_for_byte(
    server: RunningServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks, so a modest file goes through the chunked paths of both backends.
    monkeypatch.setattr(jupyter_files, "CHUNK_BYTES", 64 * 1024)
    monkeypatch.setattr(jupyter_files, "SINGLE_PUT_BYTES", 100 * 1024)
    blob = os.urandom(300 * 1024 + 7)
    small = bytes(range(256)) * 4
    async with sandbox_for(server, files=backend) as sandbox:
        info = await sandbox.files.write("workspace/data/blob.bin", blob)
        assert (info.path, info.type, info.size) == ("workspace/data/blob.bin", "file", len(blob))
        assert await sandbox.files.read("workspace/data/blob.bin") == blob
        await sandbox.files.write("workspace/data/small.bin", small)
        await sandbox.files.write("workspace/data/small.bin", small[::-1])  # replaced whole
        assert await sandbox.files.read("workspace/data/small.bin") == small[::-1]
        # The kernel sees what files wrote, and files see what the kernel wrote.
        seen = await sandbox.run("print(len(open('data/blob.bin', 'rb').read()))")
        assert seen.stdout == f"{len(blob)}\n"
        await sandbox.run("open('from_code.bin', 'wb').write(bytes(range(256)))")
        assert await sandbox.files.read("workspace/from_code.bin") == bytes(range(256))
        await sandbox.files.write("workspace/empty.txt", b"")
        assert await sandbox.files.read("workspace/empty.txt") == b""


@pytest.mark.parametrize("backend", ["auto", "kernel"])
async def test_listing_stat_and_missing_files(server: RunningServer, backend: str) -> None:
    async with sandbox_for(server, files=backend) as sandbox:
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
        assert [e.path for e in await sandbox.files.list("workspace/two.png")] == [
            "workspace/two.png"
        ]
        with pytest.raises(NotFoundError):
            await sandbox.files.read("workspace/nothing.txt")
        with pytest.raises(NotFoundError):
            await sandbox.files.stat("workspace/nothing")
        with pytest.raises(NotFoundError):
            await sandbox.files.list("nowhere")
        with pytest.raises(RequestError, match="directory"):
            await sandbox.files.read("workspace/a")


@pytest.mark.parametrize("backend", ["auto", "kernel"])
async def test_paths_that_leave_the_root_are_refused(server: RunningServer, backend: str) -> None:
    async with sandbox_for(server, files=backend) as sandbox:
        for path in ("../outside.txt", "/etc/passwd", "workspace/../../x", "a/../../b"):
            with pytest.raises(RequestError):
                await sandbox.files.read(path)
            with pytest.raises(RequestError):
                await sandbox.files.write(path, b"no")
            with pytest.raises(RequestError):
                await sandbox.files.list(path)
        assert not (server.root_dir / "interactions" / "outside.txt").exists()
        assert not (server.root_dir / "x").exists()


async def test_symlinks_out_of_the_root_are_refused_by_the_kernel_backend(
    server: RunningServer,
) -> None:
    async with sandbox_for(server, files="kernel") as sandbox:
        secret = server.root_dir / f"secret-{uuid.uuid4().hex}.txt"
        secret.write_text("not yours")
        await sandbox.run(
            f"import os\nos.symlink({str(secret)!r}, 'leak.txt')\nos.symlink('/', 'slash')"
        )
        with pytest.raises(RequestError, match="outside"):
            await sandbox.files.read("workspace/leak.txt")
        with pytest.raises(RequestError, match="outside"):
            await sandbox.files.write("workspace/slash/tmp/evil.txt", b"no")
        listed = [e.path for e in await sandbox.files.list("workspace")]
        assert "workspace/leak.txt" not in listed and "workspace/slash" not in listed
        assert secret.read_text() == "not yours"


async def test_stop_is_idempotent_and_releases_the_kernel(server: RunningServer) -> None:
    sandbox = sandbox_for(server)
    await sandbox.start()
    kernel_id = sandbox.kernel_id
    assert kernel_id is not None
    await sandbox.stop()
    await sandbox.stop()
    assert await asyncio.to_thread(http_status, server, f"api/kernels/{kernel_id}") == 404
    with pytest.raises(SandboxError, match="not running"):
        await sandbox.run("1")


async def test_a_dead_kernel_is_reported_and_the_next_run_starts_fresh(
    sandbox: JupyterSandbox,
) -> None:
    await sandbox.run("before = 1")
    with pytest.raises(SandboxError, match="died"):
        await sandbox.run("import os\nos._exit(1)")
    after = await sandbox.run("import os\nprint('before' in dir(), os.path.basename(os.getcwd()))")
    assert after.stdout == "False workspace\n"


async def test_a_wrong_token_is_refused_without_showing_it(server: RunningServer) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    sandbox = JupyterSandbox(server.url, token=wrong)
    with pytest.raises(SandboxUnavailable, match="check the token") as caught:
        await sandbox.start()
    assert wrong not in str(caught.value) and wrong not in repr(sandbox)
    assert server.token not in str(caught.value)


async def test_an_unknown_kernel_name_says_what_to_check(server: RunningServer) -> None:
    sandbox = JupyterSandbox(server.url, token=server.token, kernel_name="no-such-kernel")
    with pytest.raises(SandboxUnavailable, match="kernel_name"):
        await sandbox.start()


async def test_a_server_that_is_not_running_gives_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/base/"
    sandbox = JupyterSandbox(url + "?token=abc123", token="s3cret-token")
    with pytest.raises(SandboxUnavailable, match="cannot reach the Jupyter server") as caught:
        await sandbox.start()
    message = str(caught.value)
    assert url in message and "check the URL" in message
    assert "s3cret-token" not in message and "abc123" not in message
    await sandbox.stop()  # nothing started: still fine
