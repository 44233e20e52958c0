"""How to start a gateway process, and where it may listen; cheap to import (kernels use it
without the server code)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path


def serve_command(
    *,
    token: str | None = None,
    data_dir: str | Path | None = None,
    port: int = 0,
    auto: bool = False,
) -> list[str]:
    """The command line that starts a gateway with this Python (kernels, tests, benchmarks).
    `auto`: a kernel starts it, and it exits once idle (the `idle_exit_seconds` setting)."""
    command = [sys.executable, "-m", "jupyter_interactions.gateway.cli", "serve", f"--port={port}"]
    if auto:
        command.append("--auto")
    if token is not None:
        command.append(f"--token={token}")  # one argument: a generated token may start with "-"
    if data_dir is not None:
        command.append(f"--data-dir={data_dir}")
    return command


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
