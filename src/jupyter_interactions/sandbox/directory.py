"""`DirectoryFiles`: the SandboxFiles contract over a directory on this machine.

The gateway's environment file routes and the local sandbox both use it: an environment's
files are a directory the gateway owns, and the local sandbox's kernel works inside it. The
sandbox's code controls every entry there, so all access goes through `safe_files` (no link
followed, only regular files read, bounded time). That I/O runs on threads of its own
(`in_file_thread`), never on the event loop or the gateway's shared thread pool.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from ..errors import ConflictError, InteractionsError, NotFoundError, RequestError
from . import safe_files
from .base import FileInfo, SandboxFiles, clean_relative

__all__ = ["DirectoryFiles", "in_file_thread"]

FILE_THREADS = 4
_threads: ThreadPoolExecutor | None = None
_Result = TypeVar("_Result")

# safe_files reports with builtin errors; what each means on the wire.
_OURS: dict[type[OSError], type[InteractionsError]] = {
    FileNotFoundError: NotFoundError,
    FileExistsError: ConflictError,
    IsADirectoryError: RequestError,
    NotADirectoryError: RequestError,
    PermissionError: RequestError,
}


async def in_file_thread(function: Callable[..., _Result], *args: Any) -> _Result:
    """Run sandbox file I/O on the file threads, with safe_files' errors as ours."""
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(FILE_THREADS, thread_name_prefix="sandbox-files")
    call = functools.partial(_as_ours, function, *args)
    return await asyncio.get_running_loop().run_in_executor(_threads, call)


def _as_ours(function: Callable[..., _Result], *args: Any) -> _Result:
    try:
        return function(*args)
    except OSError as exc:
        # safe_files' own errors carry no errno; any other is the host's failure (a 500).
        ours = _OURS.get(type(exc))
        if ours is None or exc.errno is not None:
            raise
        raise ours(str(exc)) from None


class DirectoryFiles(SandboxFiles):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    async def _call(self, function: Callable[..., _Result], path: str, *args: Any) -> _Result:
        return await in_file_thread(function, str(self.root), clean_relative(path), *args)

    async def list(self, path: str = "", recursive: bool = False) -> list[FileInfo]:
        entries = await self._call(safe_files.listing, path, recursive)
        return [FileInfo.from_entry(entry) for entry in entries]

    async def stat(self, path: str) -> FileInfo:
        return FileInfo.from_entry(await self._call(safe_files.stat, path))

    async def read(self, path: str) -> bytes:
        data, _ = await self._call(safe_files.read, path)
        return data

    async def open(self, path: str) -> tuple[BinaryIO, int]:
        """A regular file opened for reading (no link followed), and its size then, for
        reading in chunks on the file threads; the caller closes it."""
        fd = await self._call(safe_files.open_file, path)
        return os.fdopen(fd, "rb"), os.fstat(fd).st_size

    async def write(self, path: str, data: bytes) -> FileInfo:
        _require_file_path(path)
        return FileInfo.from_entry(await self._call(safe_files.write, path, data))

    # -- for uploads: a file of the gateway's own, moved in -------------------------------------

    async def check_target(self, path: str, overwrite: bool) -> None:
        """Refuse a target that is a link, a directory or anything but a regular file, or one
        on the way to it (or that exists, without `overwrite`). Makes nothing."""
        _require_file_path(path)
        await self._call(safe_files.prepare, path, overwrite, False)

    async def place(self, path: str, source: Path, overwrite: bool) -> FileInfo:
        """Move `source` (outside the root) to `path`, atomically."""
        _require_file_path(path)
        return FileInfo.from_entry(await self._call(safe_files.place, path, str(source), overwrite))

    async def link(self, path: str, target: str, overwrite: bool) -> FileInfo:
        return FileInfo.from_entry(await self._call(safe_files.link, path, target, overwrite))

    async def make_directories(self, path: str, check_only: bool = False) -> None:
        await self._call(safe_files.make_directories, path, check_only)


def _require_file_path(path: str) -> None:
    if not clean_relative(path):
        raise RequestError("give a file path to write, not the environment root")
