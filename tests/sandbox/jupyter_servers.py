"""Real Jupyter Server and Kernel Gateway processes on loopback, for the remote sandbox tests.

Imported by test_jupyter.py and by conftest.py (the conformance suite's "jupyter-server" and
"kernel-gateway" sandboxes); it holds no tests itself. Each kind of server starts once per
test session, on first use, and stops when pytest ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.ipc_kernels import ipc_kernel_options

STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class RunningServer:
    url: str
    token: str
    root_dir: Path  # the server's root_dir on this machine
    kind: str  # "jupyter-server" or "kernel-gateway"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    request = urllib.request.Request(
        url + "api/kernelspecs", headers={"Authorization": f"token {token}"}
    )
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"server did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        # The servers own their kernels; SIGTERM lets them shut those down too.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextlib.contextmanager
def _serve(
    argv: list[str], port: int, token: str, root: Path, kind: str
) -> Iterator[RunningServer]:
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"{kind}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    # Keep the servers' config and runtime files out of the user's ~/.jupyter.
    env["JUPYTER_CONFIG_DIR"] = str(root.parent / f"{kind}-config")
    env["JUPYTER_RUNTIME_DIR"] = str(root.parent / f"{kind}-runtime")
    with contextlib.ExitStack() as stack:
        kernel_options = stack.enter_context(ipc_kernel_options())
        with log.open("wb") as log_handle:
            proc = subprocess.Popen(
                [*argv, *kernel_options],
                cwd=root,
                env=env,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack.callback(_stop, proc)  # before the kernels' socket directory goes
        url = f"http://127.0.0.1:{port}/"
        _wait_until_up(proc, url, token, log)
        yield RunningServer(url=url, token=token, root_dir=root, kind=kind)


def jupyter_server(base: Path) -> contextlib.AbstractContextManager[RunningServer]:
    """`jupyter server` with a token and the contents API, rooted at base/root."""
    port, token, root = free_port(), secrets.token_hex(16), base / "jupyter-server-root"
    argv = [
        sys.executable, "-m", "jupyter_server",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--no-browser", "--allow-root", "--ServerApp.open_browser=False",
    ]  # fmt: skip
    return _serve(argv, port, token, root, "jupyter-server")


def kernel_gateway(base: Path) -> contextlib.AbstractContextManager[RunningServer]:
    """Jupyter Kernel Gateway: the same kernels API, and no /api/contents."""
    port, token, root = free_port(), secrets.token_hex(16), base / "kernel-gateway-root"
    argv = [
        sys.executable, "-m", "kernel_gateway",
        "--KernelGatewayApp.ip=127.0.0.1", f"--KernelGatewayApp.port={port}",
        "--KernelGatewayApp.port_retries=0", f"--KernelGatewayApp.auth_token={token}",
    ]  # fmt: skip
    return _serve(argv, port, token, root, "kernel-gateway")


SERVERS = {"jupyter-server": jupyter_server, "kernel-gateway": kernel_gateway}
_STARTED = pytest.StashKey[dict[str, RunningServer]]()


def session_server(request: pytest.FixtureRequest, kind: str) -> RunningServer:
    """The one server of this kind for the whole test session, started on first use."""
    started = request.config.stash.setdefault(_STARTED, {})
    if kind not in started:
        stack = contextlib.ExitStack()
        base = request.getfixturevalue("tmp_path_factory").mktemp(kind)
        started[kind] = stack.enter_context(SERVERS[kind](base))
        request.config.add_cleanup(stack.close)
    return started[kind]


def jupyter_maker(kind: str) -> Any:
    """A conformance-suite maker `(request, root, limits) -> Sandbox` on that server kind."""

    def make(request: pytest.FixtureRequest, root: Path, limits: Any) -> Any:
        from jupyter_interactions.sandbox.jupyter import JupyterSandbox

        server = session_server(request, kind)
        # The root is a directory on the server; a unique name keeps tests apart there.
        env_id = f"{root.name}-{uuid.uuid4().hex[:8]}"
        # A long interrupt grace, as for the local sandboxes (see conftest.GRACE).
        return JupyterSandbox(
            server.url, token=server.token, env_id=env_id, limits=limits, interrupt_grace=120.0
        )

    return make
