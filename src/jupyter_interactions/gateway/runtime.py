"""Who runs where: one runtime file per gateway process (as Jupyter's `jpserver-<pid>.json`),
and the lock that makes one process the owner of a data dir. Cheap to import: kernels read
these to find their gateway.

The lock is an exclusive `flock` on `<data dir>/gateway.lock`, taken before the store opens
and held for the life of the process; the kernel drops it when the process dies, however it
dies. Whoever holds it writes its pid there, for messages and for kernels looking for it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from .. import config
from ..errors import GatewayError

LOCK_NAME = "gateway.lock"


# -- runtime files -------------------------------------------------------------------------------


def write_runtime_file(info: dict[str, Any]) -> Path:
    """Publish this process's `info` (url, token, pid, ...) readable by this user only, with
    no moment where others could read it; returns the file, to remove on exit."""
    path = config.runtime_file(os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # in case a stale file kept wider permissions
        os.write(fd, json.dumps(info).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


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
    return os.path.realpath(a) == os.path.realpath(b)


# -- the data-dir lock ---------------------------------------------------------------------------


class DataDirLock:
    """Makes this process the one owner of `data_dir`, or refuses with who owns it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl  # POSIX only, like the gateway; kernels import this module anywhere

        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GatewayError(busy_message(self.path.parent)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid()}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the data dir up (the file stays: removing it would race a new owner)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)


def owner_pid(data_dir: str | Path) -> int | None:
    """The pid written by the live process that owns `data_dir`, if any."""
    try:
        pid = int(json.loads((Path(data_dir) / LOCK_NAME).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if pid_alive(pid) else None


def busy_message(data_dir: Path) -> str:
    pid = owner_pid(data_dir)
    owner = f"process {pid}" if pid else "another process"
    serving = next(
        (i["url"] for i in running_gateways() if i.get("pid") == pid and i.get("url")), None
    )
    if serving:
        owner = f"the gateway on {serving} ({owner})"
    return (
        f"the data dir {data_dir} is in use by {owner}: one gateway owns a data dir. Use that "
        "one (`jupyter-interactions status`), stop it (`jupyter-interactions stop`), or give "
        "this one its own --data-dir"
    )
