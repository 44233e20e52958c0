"""A directory of an environment as a POSIX tar (uncompressed), streamed a file at a time:
what `client.environments.files.download(path=<a directory>)` is documented to return.

Only regular files go in, named relative to the directory: those directly in it, or all
below it when recursive. A local file is opened without following symlinks (its parents
included) and only if it is a regular file, so a symlink never leaks what it points to and
a FIFO or device never blocks the download.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tarfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from ..sandbox.base import FileInfo, SandboxFiles, clean_relative
from ..sandbox.directory import DirectoryFiles

__all__ = ["directory_tar"]

TAR_CHUNK = 1 << 16


async def _tar_member(
    files: SandboxFiles, entry: FileInfo, member: str
) -> AsyncGenerator[bytes, None]:
    """One file of a directory download as tar blocks: its header, then its bytes (read in
    chunks from a local directory, whole from other sandboxes), padded to 512 bytes. A
    local path that is not a regular file (a symlink, a FIFO, a device) is left out."""
    if isinstance(files, DirectoryFiles):
        opened = await asyncio.to_thread(_open_regular, files.root, entry.path)
        if opened is None:
            return
        handle, size = opened
    else:
        data = await files.read(entry.path)
        handle, size = None, len(data)
    header = tarfile.TarInfo(member)
    header.size, header.mtime, header.mode = size, int(entry.modified), 0o644
    yield header.tobuf(format=tarfile.PAX_FORMAT)
    if handle is None:
        yield data
    else:
        sent = 0
        try:
            while sent < size:
                chunk = await asyncio.to_thread(handle.read, min(TAR_CHUNK, size - sent))
                if not chunk:  # shrank while being sent: keep the header's promise
                    chunk = b"\0" * (size - sent)
                sent += len(chunk)
                yield chunk
        finally:
            handle.close()
    if size % tarfile.BLOCKSIZE:
        yield b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)


def _open_regular(root: Path, relative: str) -> tuple[Any, int] | None:
    """Open `root/relative` for reading if it is a regular file reached through no
    symlink (its parents included); None otherwise. O_NONBLOCK: a FIFO never blocks."""
    real_root = root.resolve()
    path = real_root / relative
    if path.parent.resolve() != path.parent:
        return None  # a parent directory is a symlink
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None  # a symlink (ELOOP), gone, or unreadable
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb"), st.st_size


async def directory_tar(
    files: SandboxFiles, path: str, *, recursive: bool = False
) -> AsyncGenerator[bytes, None]:
    """The tar of directory `path`, in chunks, end-of-archive marker included."""
    base = clean_relative(path)
    for entry in await files.list(path, recursive=recursive):
        if entry.type != "file":
            continue
        member = entry.path[len(base) :].lstrip("/") if base else entry.path
        async with contextlib.aclosing(_tar_member(files, entry, member)) as chunks:
            async for chunk in chunks:
                yield chunk
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
