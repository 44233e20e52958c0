"""Code that runs inside a remote sandbox kernel: its root, bash runs, and file access.

JupyterSandbox sends this module's source to the kernel once per (re)start, where it lives
as the module `_jupyter_interactions_sandbox`, out of the user's namespace, beside
`safe_files` (as `_jupyter_interactions_files`). Only the standard library is used: the
remote kernel has nothing of ours installed. File functions return JSON text (read back
through an execute_reply's user_expressions); safe_files makes them treat every entry as
hostile, as the gateway does for local sandboxes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import sys
import time

MODULE_NAME = "_jupyter_interactions_sandbox"
FILES_MODULE_NAME = "_jupyter_interactions_files"  # safe_files, installed beside this module
WORKSPACE = "workspace"
_root: str | None = None

try:
    from . import safe_files as files
except ImportError:  # in a sandbox kernel, where kernel_helper installed it first
    files = sys.modules[FILES_MODULE_NAME]


def setup(root: str) -> str:
    """Make `root/workspace`, work there, and return the absolute root."""
    global _root
    _root = os.path.realpath(os.path.abspath(root))
    workspace = os.path.join(_root, WORKSPACE)
    os.makedirs(workspace, exist_ok=True)
    os.chdir(workspace)
    return json.dumps({"root": _root})


def _real_root() -> str:
    if _root is None:
        raise RuntimeError("sandbox root is not set; call setup first")
    return _root


# File functions: JSON over safe_files, which refuses escapes, never follows a link and reads
# only regular files (a FIFO or a socket made by the user's code cannot hold the kernel).


def stat(rel: str) -> str:
    return json.dumps(files.stat(_real_root(), rel))


def listdir(rel: str, recursive: bool) -> str:
    return json.dumps(files.listing(_real_root(), rel, recursive))


def read(rel: str, offset: int, size: int) -> str:
    data, total = files.read(_real_root(), rel, offset, size)
    return json.dumps({"data": base64.b64encode(data).decode("ascii"), "total": total})


def prepare_write(rel: str) -> str:
    """Check a path someone else (the contents API) will write, and make its parents."""
    files.prepare(_real_root(), rel)
    return "{}"


def write_open(rel: str) -> str:
    """Start a write: a hidden temporary file beside the target, moved over it on commit."""
    return json.dumps({"tmp": files.begin(_real_root(), rel)})


def write_append(tmp: str, data: str) -> str:
    files.append(_real_root(), tmp, base64.b64decode(data))
    return "{}"


def write_commit(tmp: str, rel: str) -> str:
    return json.dumps(files.move(_real_root(), tmp, rel))


def write_abort(tmp: str) -> str:
    files.remove(_real_root(), tmp)
    return "{}"


def move(source: str, target: str) -> str:
    """Rename one file over another inside the root (both checked): atomic."""
    files.move(_real_root(), source, target)
    return "{}"


def remove(rel: str) -> str:
    files.remove(_real_root(), rel)
    return "{}"


class BashError(Exception):
    """bash exited with a non-zero status."""


def bash(code: str) -> None:
    """Run code with bash (sh if absent) in the working directory, streaming its output.

    The run ends when the shell exits. Processes it started that still hold the run's output
    (`sleep 60 &`, a fork bomb) get SIGHUP, as when a terminal closes (`_hang_up_holders`).
    A background process whose output is redirected lives on: `server > log 2>&1 &`.
    """
    import codecs
    import selectors
    import shutil
    import subprocess
    import sys

    shell = shutil.which("bash") or "/bin/sh"
    proc = subprocess.Popen(
        [shell, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so an interrupt can take the whole process group down
    )
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): sys.stdout, proc.stderr.fileno(): sys.stderr}
    decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in streams}
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    # A pidfd turns readable when the shell exits: an event, where older kernels poll.
    pidfd = os.pidfd_open(proc.pid) if hasattr(os, "pidfd_open") else None
    if pidfd is not None:
        selector.register(pidfd, selectors.EVENT_READ)

    def output_held() -> bool:
        return len(selector.get_map()) > (1 if pidfd is not None else 0)

    drain_until = None  # once the shell is gone: take what is written, briefly, then stop
    try:
        while output_held():
            if drain_until is None and proc.poll() is not None:
                drain_until = time.monotonic() + 0.5
            if drain_until is None:
                timeout = None if pidfd is not None else 0.2
            else:
                timeout = min(0.05, drain_until - time.monotonic())
            ready = selector.select(timeout) if timeout is None or timeout > 0 else []
            if drain_until is not None and not ready:
                break
            for key, _ in ready:
                if key.fd == pidfd:
                    selector.unregister(pidfd)
                    pidfd_closed, pidfd = pidfd, None
                    os.close(pidfd_closed)
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    streams[key.fd].write(decoders[key.fd].decode(b"", final=True))
                    continue
                streams[key.fd].write(decoders[key.fd].decode(chunk))
                streams[key.fd].flush()
        returncode = proc.wait()
        if output_held():  # by processes the shell left behind
            pipes = {os.fstat(proc.stdout.fileno()).st_ino, os.fstat(proc.stderr.fileno()).st_ino}
            _hang_up_holders(proc.pid, pipes)
        _reap_after_run(proc.pid)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        _reap_after_run(proc.pid)
        raise
    finally:
        selector.close()
        if pidfd is not None:
            os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    if returncode != 0:
        raise BashError(f"bash exited with status {returncode}") from None


def _signal_group(pgid: int, signum: int) -> None:
    """Signal a process group until it is gone or the signal stops reaching anyone new: a
    group that forks as fast as it can may have members born after one signal."""
    for _ in range(20):
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            return


_IN_TRANSIT = ("R", "D")  # runnable or in uninterruptible wait: it may be about to redirect
_SETTLE_SECONDS = 5.0  # a holder that stays runnable (a busy loop) is hung up after this


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every living process in the group, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append((int(entry), fields[0]))
    return members


def _holds(pid: int, pipes: set[str]) -> bool:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in pipes:
                    return True
    except OSError:
        pass
    return False


def _hang_up_holders(pgid: int, pipe_inodes: set[int]) -> None:
    """SIGHUP the group's processes that still hold the run's output, as a closing terminal
    would, once none of them is still on its way to letting go of it. A process forked for
    `nohup server > log 2>&1 &` holds the output from its fork until its redirection and
    ignores SIGHUP only once nohup runs: on a busy machine it may not have run at all when
    the shell exits, so a holder that is runnable is waited for (until it blocks or lets
    go); one that sleeps holding the output (`sleep 60 &`) is hung up. Only holders are
    signalled, again until none is left (a fork bomb's children hold it too): the group's
    other processes (`server > log 2>&1 &`) live on."""
    try:
        os.listdir("/proc")
    except PermissionError:  # Landlock hides /proc: the whole group, at once, as before
        _signal_group(pgid, signal.SIGHUP)
        return
    pipes = {f"pipe:[{inode}]" for inode in pipe_inodes}
    deadline = time.monotonic() + _SETTLE_SECONDS
    for _ in range(20):
        while True:
            holders = [(p, state) for p, state in _group_members(pgid) if _holds(p, pipes)]
            in_transit = any(state in _IN_TRANSIT for _, state in holders)
            if not in_transit or time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        if not holders:
            return
        for pid, _ in holders:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGHUP)


# Process groups of finished runs that may still have members (a `nohup` server).
_lingering_groups: set[int] = set()


def _reap_group(pgid: int) -> bool:
    """Reap the exited members of a group that are our children (orphans come to a kernel
    that is a child subreaper). True if any was reaped; the group is forgotten once no
    child of ours is left in it."""
    reaped = False
    try:
        while os.waitid(os.P_PGID, pgid, os.WEXITED | os.WNOHANG) is not None:
            reaped = True
    except ChildProcessError:
        _lingering_groups.discard(pgid)
    return reaped


def _reap_after_run(pgid: int, settle: float = 0.05, patience: float = 2.0) -> None:
    """Reap a finished run's group, so no zombie counts against the process limit, and
    what earlier runs left. Waits while members are still dying (a fork bomb takes a
    moment), until none died for `settle` seconds; what lives on (`nohup`) is left."""
    for earlier in list(_lingering_groups):
        _reap_group(earlier)
    _lingering_groups.add(pgid)
    deadline = time.monotonic() + patience
    quiet_since = time.monotonic()
    while pgid in _lingering_groups:
        now = time.monotonic()
        if _reap_group(pgid):
            quiet_since = now
        elif now - quiet_since >= settle or now >= deadline:
            return
        time.sleep(0.005)


# --- network egress: a relay from the sandbox's own loopback to the host's allowlist proxy ---

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


def forward_egress(socket_path: str) -> int:
    """Listen on 127.0.0.1 (inside the sandbox's network namespace) and relay every
    connection to the proxy's Unix socket; point HTTP(S)_PROXY at it. Returns the port."""
    import socket
    import threading

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def relay(client: socket.socket) -> None:
        with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as proxy:
            try:
                proxy.connect(socket_path)
            except OSError:
                return
            back = threading.Thread(target=pump, args=(proxy, client), daemon=True)
            back.start()
            pump(client, proxy)
            back.join()

    def serve() -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    threading.Thread(target=serve, name="egress-relay", daemon=True).start()
    port = listener.getsockname()[1]
    for name in _PROXY_VARIABLES:
        os.environ[name] = f"http://127.0.0.1:{port}"
    for name in ("NO_PROXY", "no_proxy"):
        os.environ.pop(name, None)
    import sys

    if "urllib.request" in sys.modules:  # urlopen's shared opener read the proxies once
        sys.modules["urllib.request"].install_opener(None)
    return port
