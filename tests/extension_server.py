"""A real `jupyter server` with our server extension, under a base_url as JupyterHub gives
one: used by the extension tests and by the kernel-side discovery test. Holds no tests.

Its auth is one of the three a Jupyter server has: a token; a password only (no token); or
none at all (an empty token and no password), where XSRF checks still apply."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.ipc_kernels import ipc_kernel_options

STARTUP_SECONDS = 180.0  # a hang bound; a loaded 2-core machine took over 60 s


@dataclass(frozen=True)
class ExtensionServer:
    pid: int
    url: str  # the server's own URL, base_url included
    token: str  # "" for a password-only or open server
    runtime_dir: Path  # where its jpserver-<pid>.json is
    log: Path
    password: str | None = None

    @property
    def gateway_url(self) -> str:
        return f"{self.url}interactions/"


@contextlib.contextmanager
def extension_server(
    root: Path, token: str, base_url: str, ready: bool = True, password: str | None = None
) -> Iterator[ExtensionServer]:
    """Start it rooted at `root` (runtime dir, data and log there, no Gemini key) and wait
    until the gateway inside answers (`ready`: until it has started); stop it on exit.
    `token` "" and a `password`: a password-only server; neither: a server without auth."""
    from jupyter_server.auth import passwd

    runtime, log = root / "server-runtime", root / "server.log"
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        HOME=str(root / "server-home"),
        JUPYTER_CONFIG_DIR=str(root / "server-config"),
        JUPYTER_DATA_DIR=str(root / "server-jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_INTERACTIONS_DATA_DIR=str(root / "server-data"),
        JUPYTER_INTERACTIONS_CONFIG=str(root / "none.json"),
    )
    with ipc_kernel_options() as kernel_options:  # removed after the server stopped
        with log.open("w") as log_handle:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "jupyter_server",
                    "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
                    "--no-browser", "--allow-root",
                    f"--IdentityProvider.token={token}", f"--ServerApp.base_url={base_url}",
                    f"--ServerApp.root_dir={root}", *kernel_options,
                    *([f"--PasswordIdentityProvider.hashed_password={passwd(password)}"]
                      if password else []),
                ],
                env=env, stdout=log_handle, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            info = started_server_info(proc, runtime, log, deadline)
            server = ExtensionServer(proc.pid, info["url"], token, runtime, log, password)
            while True:  # the start hook opens the store just after the server listens
                try:
                    health = urllib.request.urlopen(f"{server.gateway_url}health", timeout=2).read()
                    if json.loads(health)["ok"] or not ready:
                        break
                except (OSError, ValueError):  # not up yet, or not the gateway answering yet
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield server
        finally:
            proc.terminate()
            proc.wait(20)


def started_server_info(
    proc: subprocess.Popen[bytes], runtime: Path, log: Path, deadline: float
) -> dict[str, Any]:
    """A Jupyter server's jpserver-<pid>.json in `runtime`, once it is whole (the server
    writes it in place, not atomically). Fails with the end of its `log` if the server exits
    first, or is still starting at `deadline` (a hang bound)."""
    info_file = runtime / f"jpserver-{proc.pid}.json"
    while not (info := server_info(info_file)):
        assert proc.poll() is None, f"exited with {proc.returncode}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"did not start: {log.read_text()[-3000:]}"
        time.sleep(0.1)
    return info


def server_info(info_file: Path) -> dict[str, Any] | None:
    """The server's jpserver-<pid>.json once it is whole, else None."""
    try:
        info: dict[str, Any] = json.loads(info_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return info
