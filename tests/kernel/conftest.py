"""Fixtures for the notebook side: a real IPython shell with captured displays, an isolated
Jupyter runtime/data dir, and a tiny loopback server that answers with a fixed HTTP status.
The real gateway comes from tests/conftest.py (`gateway`, session-wide)."""

from __future__ import annotations

import json
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


class Shell:
    """A real InteractiveShell whose display outputs are recorded."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell
        self.pub = CapturingDisplayPublisher()
        self._saved = shell.display_pub
        shell.display_pub = self.pub

    def run(self, source: str) -> Any:
        self.pub.outputs.clear()
        return self.shell.run_cell(source, store_history=True)

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.pub.outputs)

    def finals(self) -> list[dict[str, Any]]:
        """Fresh display_data outputs (not live-handle displays or updates)."""
        return [o for o in self.pub.outputs if not o["update"] and not o["transient"]]

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
