"""A remote sandbox's files: through the contents API where the server has it, else through
code run in the kernel (Kernel Gateway and Enterprise Gateway have no /api/contents).

Both refuse escapes lexically with clean_relative before anything is sent, and both have
the helper in the kernel (safe_files) check the path before a byte moves: no link is
followed and only regular files are read or replaced. The contents API resolves paths only
lexically and opens whatever is there, so it is used only for a path the kernel has just
found to be a regular file (or a target it has checked).
"""

from __future__ import annotations

import base64
import posixpath
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from ..errors import NotFoundError, RequestError
from .base import FileInfo, SandboxFiles, clean_relative
from .jupyter_remote import ServerAPI

# One file chunk per message: well under the servers' 10 MiB websocket and body limits
# once base64 (4/3) and JSON framing are added.
CHUNK_BYTES = 4 * 1024**2
# Above this a contents-API upload goes in chunks (the server's LargeFileManager protocol).
SINGLE_PUT_BYTES = 32 * 1024**2

KernelCall = Callable[..., Awaitable[Any]]
"""`await call("stat", "a/b.txt")`: a function of the in-kernel helper, its JSON result."""


class KernelFiles(SandboxFiles):
    """Files through the kernel itself: base64 over the kernel protocol, in chunks."""

    def __init__(self, call: KernelCall) -> None:
        self._call = call

    async def list(self, path: str = "", recursive: bool = False) -> list[FileInfo]:
        entries = await self._call("listdir", clean_relative(path), recursive)
        return [FileInfo.from_entry(entry) for entry in entries]

    async def stat(self, path: str) -> FileInfo:
        return FileInfo.from_entry(await self._call("stat", clean_relative(path)))

    async def read(self, path: str) -> bytes:
        rel = clean_relative(path)
        chunks: list[bytes] = []
        offset = 0
        while True:
            answer = await self._call("read", rel, offset, CHUNK_BYTES)
            chunk = base64.b64decode(answer["data"])
            chunks.append(chunk)
            offset += len(chunk)
            if not chunk or offset >= answer["total"]:
                return b"".join(chunks)

    async def write(self, path: str, data: bytes) -> FileInfo:
        rel = clean_relative(path)
        if not rel:
            raise RequestError("give a file path to write, not the environment root")
        tmp = (await self._call("write_open", rel))["tmp"]
        try:
            for start in range(0, len(data), CHUNK_BYTES):
                chunk = base64.b64encode(data[start : start + CHUNK_BYTES]).decode("ascii")
                await self._call("write_append", tmp, chunk)
            return FileInfo.from_entry(await self._call("write_commit", tmp, rel))
        except BaseException:
            await self._call("write_abort", tmp)
            raise


class ContentsFiles(KernelFiles):
    """Bytes through the server's contents API, checks and listings through the kernel.

    The contents API resolves paths only lexically (it follows a symlink out of the root),
    so every path is first checked, symlinks followed, by the helper in the kernel; the
    data itself then moves server-side, without passing through the kernel.
    """

    def __init__(self, call: KernelCall, api: ServerAPI, root: str) -> None:
        super().__init__(call)
        self._api = api
        self._root = root.strip("/")

    def _url(self, rel: str) -> str:
        return "api/contents/" + quote(posixpath.join(self._root, rel) if rel else self._root)

    async def read(self, path: str) -> bytes:
        rel = clean_relative(path)
        # Anything but a regular file (a link, a FIFO, a directory) goes to the kernel's read,
        # which refuses it and says why; so do escapes and absences.
        if _hidden(rel) or (await self.stat(rel)).type != "file":
            return await super().read(rel)
        try:
            model = await self._api.request("GET", self._url(rel), query=_READ)
        except NotFoundError:
            raise NotFoundError(f"no file {rel!r} in this environment") from None
        return base64.b64decode(model.get("content") or "")

    async def write(self, path: str, data: bytes) -> FileInfo:
        rel = clean_relative(path)
        if not rel:
            raise RequestError("give a file path to write, not the environment root")
        if _hidden(rel):
            return await super().write(rel, data)
        await self._call("prepare_write", rel)  # refuses escapes, makes the parents
        if len(data) <= SINGLE_PUT_BYTES:
            # The server writes atomically (temporary file, then rename).
            await self._api.request("PUT", self._url(rel), _file_body(data))
        else:
            await self._put_in_chunks(rel, data)
        return await self.stat(rel)

    async def _put_in_chunks(self, rel: str, data: bytes) -> None:
        # Chunked uploads append in place, so they go to a temporary name that the kernel then
        # renames over the target (atomic). Not the API's DELETE + PATCH: those leave a gap
        # and litter the folder with .ipynb_checkpoints.
        tmp = posixpath.join(posixpath.dirname(rel), f"upload-{uuid.uuid4().hex}.part")
        try:
            for index, start in enumerate(range(0, len(data), CHUNK_BYTES), start=1):
                last = start + CHUNK_BYTES >= len(data)
                body = {
                    **_file_body(data[start : start + CHUNK_BYTES]),
                    "chunk": -1 if last else index,
                }
                await self._api.request("PUT", self._url(tmp), body)
            await self._call("move", tmp, rel)
        except BaseException:
            await self._call("remove", tmp)
            raise


def _hidden(rel: str) -> bool:
    """The contents API refuses dot-files (allow_hidden is off by default): those go
    through the kernel, which lists them like any other file."""
    return any(part.startswith(".") for part in rel.split("/"))


_READ = {"type": "file", "format": "base64", "content": "1"}


def _file_body(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode("ascii")}
