"""Fixtures for the notebook side: a real IPython shell with captured displays, an isolated
Jupyter runtime/data dir, and a tiny loopback server that answers with a fixed HTTP status.
The real gateway comes from tests/conftest.py (`gateway`, session-wide)."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Any:
    """No gateway is found by accident: private runtime and data dirs, no key, no override."""
    for name in (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "JUPYTER_INTERACTIONS_URL",
        "JUPYTER_INTERACTIONS_TOKEN",
        "JPY_SESSION_NAME",
        "JPY_PARENT_PID",
        "JUPYTER_INTERACTIONS_DIRECT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("JUPYTER_INTERACTIONS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


class RecordingPublisher(CapturingDisplayPublisher):
    """Records every display message in order, clear_output included (as {"clear": wait}),
    where IPython's capturing publisher would empty its list at once."""

    def clear_output(self, wait: bool = False) -> None:
        self.outputs.append({"clear": wait})


class Shell:
    """A real InteractiveShell whose display messages are recorded."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.pub = RecordingPublisher()
        self._saved = shell.display_pub
        shell.display_pub = self.pub

    def run(self, source: str) -> Any:
        self.pub.outputs.clear()
        return self.shell.run_cell(source, store_history=True)

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """Display messages (displays and updates), without the clears."""
        return [o for o in self.pub.outputs if "clear" not in o]

    def finals(self) -> list[dict[str, Any]]:
        """Fresh display_data outputs (not live-handle displays or updates)."""
        return [o for o in self.outputs if not o["update"] and not o["transient"]]

    def kept(self) -> list[dict[str, Any]]:
        """The display outputs a frontend keeps (and a saved notebook holds): updates applied
        by display id, clears applied (`wait`: at the cell's next output), as nbclient does."""
        kept: list[dict[str, Any]] = []
        clear_next = False
        for message in self.pub.outputs:
            if "clear" in message:
                clear_next = message["clear"]
                kept = kept if clear_next else []
                continue
            display_id = (message["transient"] or {}).get("display_id")
            if message["update"]:
                for output in kept:
                    if (output["transient"] or {}).get("display_id") == display_id:
                        output.update(data=message["data"], metadata=message["metadata"])
                continue
            if clear_next:
                kept, clear_next = [], False
            kept.append(dict(message))
        return kept

    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns


@pytest.fixture
def ipython(isolated) -> Iterator[Shell]:
    shell = InteractiveShell.instance()
    wrapped = Shell(shell)
    shell.run_cell("%load_ext jupyter_interactions")
    yield wrapped
    shell.run_cell("%unload_ext jupyter_interactions")
    shell.display_pub = wrapped._saved
    shell.user_ns.clear()
    shell.init_user_ns()


class StatusServer:
    """Answers every request with one status and a Google-style error body; counts requests."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                body = json.dumps({"error": {"code": str(outer.status), "message": "busy"}})
                self.send_response(outer.status)
                self.send_header("content-type", "application/json")
                self.send_header("retry-after-ms", "10")  # keep the SDK's retries quick
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def status_server() -> Iterator[Any]:
    servers: list[StatusServer] = []

    def make(status: int) -> StatusServer:
        servers.append(StatusServer(status))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def gw(gateway, ipython, monkeypatch, request) -> Shell:
    """The IPython shell, pointed at the real gateway, with a session key of its own."""
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", gateway.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", gateway.token)
    monkeypatch.setenv("JPY_SESSION_NAME", f"{request.node.name}.ipynb")
    return ipython


class Proxy:
    """A loopback TCP proxy in front of the gateway whose live connections can be cut."""

    def __init__(self, target_url: str) -> None:
        import socket
        from urllib.parse import urlparse

        target = urlparse(target_url)
        self.target = (target.hostname, target.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.accepted = 0
        self.sockets: list[Any] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.accepted += 1
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                pipe = threading.Thread(target=self._pipe, args=(source, sink), daemon=True)
                self._threads.append(pipe)
                pipe.start()

    @staticmethod
    def _pipe(source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            import socket

            for sock in (source, sink):  # shutdown, not just close: it wakes the other pipe
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def cut(self) -> None:
        """Drop every open connection, as a flaky network or a sleeping laptop would."""
        import socket

        with self._lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        import socket

        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def proxy(gateway) -> Iterator[Proxy]:
    proxy = Proxy(gateway.url)
    yield proxy
    proxy.close()


class KernelCell:
    """One execute request on a real kernel: its IOPub messages, read as they come."""

    def __init__(self, kernel: Kernel, msg_id: str) -> None:
        self.kernel, self.msg_id = kernel, msg_id
        self.messages: list[dict[str, Any]] = []
        self.idle = False

    def wait_for(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        """Read this cell's messages until one satisfies `predicate` (a safety-net timeout,
        never a measure of speed)."""
        import time

        deadline = time.monotonic() + timeout
        for message in self.messages:
            if predicate(message):
                return message
        while time.monotonic() < deadline and not self.idle:
            message = self.kernel.next_message(self.msg_id, deadline - time.monotonic())
            if message is not None and predicate(message):
                return message
        raise AssertionError(f"no such message in {[m['msg_type'] for m in self.messages]}")

    def finish(self, timeout: float = 60) -> dict[str, Any]:
        """Read until the kernel is idle again; the execute_reply's content."""

        def idle(message: dict[str, Any]) -> bool:
            return message["msg_type"] == "status" and message["content"]["execution_state"] == (
                "idle"
            )

        if not self.idle:
            self.wait_for(idle, timeout)
            self.idle = True
        while True:
            reply = self.kernel.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == self.msg_id:
                return reply["content"]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The outputs a frontend keeps (nbclient's rules: display updates applied by id,
        a clear with wait=True applied at the next output)."""
        kept: list[dict[str, Any]] = []
        clear_next = False
        for message in self.messages:
            kind, content = message["msg_type"], message["content"]
            display_id = (content.get("transient") or {}).get("display_id")
            if kind == "clear_output":
                clear_next = content["wait"]
                kept = kept if clear_next else []
            elif kind == "update_display_data":
                for output in kept:
                    if output.get("display_id") == display_id:
                        output.update(data=content["data"], metadata=content["metadata"])
            elif kind in ("display_data", "execute_result", "stream", "error"):
                if clear_next:
                    kept, clear_next = [], False
                kept.append({"output_type": kind, "display_id": display_id, **content})
        return kept

    def text(self) -> str:
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream")


class Kernel:
    """A real IPython kernel (jupyter_client, ipc transport) for one test."""

    def __init__(self, manager: Any, client: Any, session_name: str) -> None:
        self.manager, self.client = manager, client
        self.session_name = session_name  # the notebook path the kernel's Session is keyed to
        self.cells: dict[str, KernelCell] = {}

    def execute(self, code: str) -> KernelCell:
        msg_id = self.client.execute(code)
        self.cells[msg_id] = KernelCell(self, msg_id)
        return self.cells[msg_id]

    def run(self, code: str) -> KernelCell:
        """Execute and wait for the end; fails the test if the cell raised."""
        cell = self.execute(code)
        reply = cell.finish()
        assert reply["status"] == "ok", (reply, cell.outputs)
        return cell

    def next_message(self, msg_id: str, timeout: float) -> dict[str, Any] | None:
        """The next IOPub message of any cell (kept with its cell); it if it is `msg_id`'s."""
        import queue

        try:
            message = self.client.get_iopub_msg(timeout=max(timeout, 0.01))
        except queue.Empty:
            return None
        cell = self.cells.get(message["parent_header"].get("msg_id"))
        if cell is not None:
            cell.messages.append(message)
        return message if cell is not None and cell.msg_id == msg_id else None

    def interrupt(self) -> None:
        """Kernel > Interrupt, as a frontend sends it (SIGINT to an ipykernel)."""
        self.manager.interrupt_kernel()


@pytest.fixture
def kernel(gateway, isolated, request) -> Iterator[Kernel]:
    """A real kernel whose session (its notebook path) is the test's own, on the shared
    gateway; its runtime files live under the test's temp dir."""
    import os

    from jupyter_client.manager import KernelManager

    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        JUPYTER_INTERACTIONS_URL=gateway.url,
        JUPYTER_INTERACTIONS_TOKEN=gateway.token,
        JPY_SESSION_NAME=f"{request.node.name}.ipynb",
    )
    sockets = tempfile.mkdtemp(prefix="ji-ipc-")  # a short path: Unix sockets allow ~100 bytes
    manager = KernelManager(kernel_name="python3", transport="ipc", ip=f"{sockets}/kernel")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        kernel = Kernel(manager, client, env["JPY_SESSION_NAME"])
        kernel.run("%load_ext jupyter_interactions")
        yield kernel
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def session(gateway, isolated, monkeypatch, request) -> Iterator[Any]:
    """A Session on the shared gateway, its notebook named after the test module
    (test_model_options.py: model-options.ipynb); closed at the end."""
    from jupyter_interactions.session import Session

    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", gateway.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", gateway.token)
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    session = Session(f"{name}.ipynb")
    yield session
    session.close()
