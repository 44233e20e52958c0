"""Who runs where: one runtime file per gateway process (as Jupyter's `jpserver-<pid>.json`),
and the lock that makes one process the owner of a data dir. Reading them (the kernel side
finds its gateway so) is `launch.py`'s.

The lock is an exclusive `flock` on `<data dir>/gateway.lock`, taken before the store opens
and held for the life of the process; the kernel drops it when the process dies, however it
dies. Whoever holds it writes its pid there, for messages and for kernels looking for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import config
from ..errors import GatewayError
from ..launch import LOCK_NAME, owner_pid, running_gateways

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
