"""A directory of an environment as a POSIX tar (uncompressed), streamed a file at a time:
what `client.environments.files.download(path=<a directory>)` is documented to return.

Only regular files go in, named relative to the directory: those directly in it, or all
below it when recursive. A local file is opened through safe_files (no link followed, its
parents included, and only if it is a regular file), so a symlink never leaks what it points
to and a FIFO or device never blocks the download; one that stopped being a regular file
since the listing is left out.
"""

from __future__ import annotations

import contextlib
import tarfile
from collections.abc import AsyncGenerator
from typing import BinaryIO

from ...errors import NotFoundError, RequestError
from ...sandbox.base import FileInfo, SandboxFiles, clean_relative
from ...sandbox.directory import DirectoryFiles, in_file_thread

__all__ = ["directory_tar"]

TAR_CHUNK = 1 << 16


async def _tar_member(
    files: SandboxFiles, entry: FileInfo, member: str
) -> AsyncGenerator[bytes, None]:
    """One file of a directory download as tar blocks: its header, then its bytes (read in
    chunks from a local directory, whole from other sandboxes), padded to 512 bytes."""
    handle: BinaryIO | None = None
    if isinstance(files, DirectoryFiles):
        try:
            handle, size = await files.open(entry.path)
        except (RequestError, NotFoundError):  # not a regular file any more, or gone
            return
    else:
        data = await files.read(entry.path)
        size = len(data)
    header = tarfile.TarInfo(member)
    header.size, header.mtime, header.mode = size, int(entry.modified), 0o644
    yield header.tobuf(format=tarfile.PAX_FORMAT)
    if handle is None:
        yield data
    else:
        sent = 0
        try:
            while sent < size:
                chunk = await in_file_thread(handle.read, min(TAR_CHUNK, size - sent))
                if not chunk:  # shrank while being sent: keep the header's promise
                    chunk = b"\0" * (size - sent)
                sent += len(chunk)
                yield chunk
        finally:
            handle.close()
    if size % tarfile.BLOCKSIZE:
        yield b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)


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
