"""Finding and starting a gateway process: where interactions go (`Connection`), the runtime
files and data-dir owners gateways publish, and the command line that starts one.

Order of discovery: JUPYTER_INTERACTIONS_URL/TOKEN; the Jupyter server that started this
kernel (its `interactions/` mount); the gateway that owns this kernel's data dir (a standalone
one through its runtime file, or a Jupyter server's through its `jpserver-<pid>.json`); else a
new standalone gateway on that data dir, started detached so it outlives the kernel (it exits
once idle). `direct` skips all of this and talks to Google's service with GEMINI_API_KEY.

The kernel side starts a gateway as a process and never imports `jupyter_interactions.gateway`;
the gateway imports this module for the same facts (its command line, its runtime files).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config
from .errors import ConfigError, GatewayError

try:  # the same HTTP library the SDK uses
    import httpx as _http
except ImportError:  # pragma: no cover - depends on what google-genai pulled in
    import httpx2 as _http  # type: ignore[no-redef]

START_TIMEOUT = 60.0  # seconds to wait for a gateway we started
PROBE_TIMEOUT = 2.0
# The file in a data dir whose flock makes one gateway process its owner (gateway/runtime.py
# takes it); the owner writes its pid there.
LOCK_NAME = "gateway.lock"
# Gateways this process started: kept referenced, since a detached child is meant to run on
# after its Popen object would otherwise be collected.
_STARTED: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class Connection:
    """Where interactions go. `token` is the gateway token or, when direct, the Gemini key.
    `headers` go on every request (a Jupyter server's XSRF pair, when it gave no token)."""

    base_url: str
    token: config.Secret | None
    direct: bool = False
    origin: str = "explicit"  # explicit | jupyter-server | runtime-file | started | direct
    pid: int | None = None  # the serving process, when known: gone means find another
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def alive(self) -> bool:
        """False once the serving process is known to be gone (e.g. it exited when idle)."""
        return self.pid is None or pid_alive(self.pid)

    def __repr__(self) -> str:
        return f"Connection({self.base_url!r}, direct={self.direct}, origin={self.origin!r})"

    @property
    def where(self) -> str:
        """Who answers, for messages: Google's service or the gateway at its URL."""
        return "Google's service" if self.direct else f"the gateway at {self.base_url}"


# --- the command line ----------------------------------------------------------------------


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


# Names of this machine: "localhost", and those Debian's and Red Hat's /etc/hosts give it.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach: one of
    `LOOPBACK_NAMES` (in any case) or a loopback address (an IPv6 one with or without its
    URL brackets)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- who runs where ------------------------------------------------------------------------


def running_gateways() -> list[dict[str, Any]]:
    """The runtime files of live gateway processes, newest first. A file whose process is
    gone (killed, so it could not clean up) is removed on the way."""
    found = []
    for path in config.runtime_dir().glob(config.RUNTIME_FILE_GLOB):
        try:
            info = json.loads(path.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not pid_alive(pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append(info)
    return sorted(found, key=lambda info: str(info.get("started", "")), reverse=True)


def pid_alive(pid: int) -> bool:
    """True unless process `pid` is known to be gone."""
    if os.name == "nt":  # there os.kill(pid, 0) would end the process: assume it lives
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def same_dir(a: str | Path, b: str | Path) -> bool:
    """True if both paths name one directory (symlinks resolved)."""
    return os.path.realpath(a) == os.path.realpath(b)


def owner_pid(data_dir: str | Path) -> int | None:
    """The pid written by the live process that owns `data_dir`, if any."""
    try:
        pid = int(json.loads((Path(data_dir) / LOCK_NAME).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid_alive(pid) else None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- finding the gateway -------------------------------------------------------------------


def connect(direct: bool = False, url: str | None = None, token: str | None = None) -> Connection:
    """The connection to use; starts a standalone gateway when none is running."""
    if direct:
        key = config.gemini_api_key()
        if key is None:
            raise ConfigError(
                "--direct needs GEMINI_API_KEY in the kernel's environment; set it, "
                "or drop --direct to use the gateway (offline models need no key)"
            )
        return Connection(url or config.direct_url(), key, direct=True, origin="direct")
    if url:
        return Connection(_slash(url), config.Secret(token) if token else None)
    override = config.gateway_override()
    if override is not None:
        return Connection(_slash(override[0]), override[1])
    return jupyter_server_gateway() or running_gateway() or start_gateway()


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def healthy(base_url: str) -> bool:
    """True if a gateway answers its health probe at `base_url`."""
    try:
        response = _http.get(base_url + "health", timeout=PROBE_TIMEOUT)
        return response.status_code == 200 and response.json().get("ok") is True
    except Exception:  # any failure to probe means "not usable here"
        return False


def jupyter_server_gateway() -> Connection | None:
    """The gateway mounted in the Jupyter server that started this kernel, if any."""
    pid = config.jupyter_parent_pid()
    return _server_mount(int(pid)) if pid and pid.isdecimal() else None


def _server_mount(pid: int) -> Connection | None:
    """The gateway mounted in the Jupyter server of process `pid`, if it answers."""
    from jupyter_core.paths import jupyter_runtime_dir

    info = read_json(Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json")
    if not info or not info.get("url"):
        return None
    base = _slash(info["url"]) + "interactions/"
    if not healthy(base):
        return None
    token = info.get("token")
    if token:
        return Connection(base, config.Secret(token), origin="jupyter-server", pid=pid)
    # No token: a server without auth (it then checks XSRF on every POST from a caller it
    # did not log in, so the kernel sends the double-submit pair, as JupyterLab does), or
    # one that takes only a password, which no kernel has (its 401 then says what to do).
    xsrf = secrets.token_hex(16)
    headers = (("Cookie", f"_xsrf={xsrf}"), ("X-XSRFToken", xsrf))
    return Connection(base, None, origin="jupyter-server", pid=pid, headers=headers)


def running_gateway(data_dir: Path | None = None) -> Connection | None:
    """The running gateway that owns `data_dir` (default: the one a gateway started here
    would use), so a kernel finds its threads and jobs: a standalone gateway by its runtime
    file, else a Jupyter server whose extension holds the data dir."""
    data_dir = data_dir or config.gateway_data_dir()
    for info in running_gateways():
        if same_dir(str(info.get("data_dir", "")), data_dir) and info.get("url"):
            url = _slash(str(info["url"]))
            if healthy(url):
                token = info.get("token")
                secret = config.Secret(token) if token else None
                return Connection(url, secret, origin="runtime-file", pid=int(info["pid"]))
    owner = owner_pid(data_dir)
    return _server_mount(owner) if owner is not None else None


# --- starting one --------------------------------------------------------------------------


def start_gateway() -> Connection:
    """Start `jupyter-interactions serve --auto` detached on this kernel's data dir and wait
    until it answers."""
    import fcntl

    data_dir = config.gateway_data_dir()
    folder = config.runtime_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # One starter at a time: kernels that start together share one gateway.
    with open(folder / "jupyter-interactions-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = running_gateway(data_dir)
        if found is not None:
            return found
        log = folder / "jupyter-interactions-gateway.log"
        # 0600 from the start: the log is this user's (the gateway also chmods it).
        with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            process = subprocess.Popen(
                serve_command(data_dir=data_dir, auto=True),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the kernel, and a Ctrl-C in the cell
            )
        _STARTED.append(process)
        published = config.runtime_file(process.pid)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            info = read_json(published)
            if info and info.get("url") and healthy(_slash(str(info["url"]))):
                token = info.get("token")
                secret = config.Secret(token) if token else None
                return Connection(
                    _slash(str(info["url"])), secret, origin="started", pid=process.pid
                )
            if process.poll() is not None:
                break
            time.sleep(0.05)  # the only signal a detached process gives is its runtime file
        if process.poll() is None:
            process.terminate()  # it never answered: do not leave it behind
        said = _last_line(log)
        raise GatewayError(
            f"could not start the gateway{f' ({said})' if said else ''}; see {log}, "
            "fix that and re-run the cell, or use --direct with GEMINI_API_KEY"
        )


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    last = next((line for line in reversed(lines) if line), "")
    return last if len(last) <= 300 else last[:297] + "..."
