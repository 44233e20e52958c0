"""A remote sandbox's files: through the contents API where the server has it, else through
code run in the kernel (Kernel Gateway and Enterprise Gateway have no /api/contents).

Both refuse escapes lexically with clean_relative before anything is sent; the kernel
backend also checks real paths inside the kernel, so a symlink cannot lead out of the root.
"""

from __future__ import annotations

import base64
import posixpath
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..errors import NotFoundError, RequestError, SandboxError
from .base import WORKSPACE, FileInfo, SandboxFiles, clean_relative, guess_mime
from .jupyter_remote import ServerAPI

# One file chunk per message: well under the servers' 10 MiB websocket and body limits
# once base64 (4/3) and JSON framing are added.
CHUNK_BYTES = 4 * 1024**2
# Above this a contents-API upload goes in chunks (the server's LargeFileManager protocol).
SINGLE_PUT_BYTES = 32 * 1024**2

KernelCall = Callable[..., Awaitable[Any]]
"""`await call("stat", "a/b.txt")`: a function of the in-kernel helper, its JSON result."""


def _info(data: dict[str, Any]) -> FileInfo:
    return FileInfo(
        path=data["path"],
        type=data["type"],
        size=int(data["size"]),
        modified=float(data["modified"]),
        mime_type=data["mime_type"],
    )


class KernelFiles(SandboxFiles):
    """Files through the kernel itself: base64 over the kernel protocol, in chunks."""

    def __init__(self, call: KernelCall) -> None:
        self._call = call

    async def list(self, path: str = "", recursive: bool = False) -> list[FileInfo]:
        return [
            _info(entry) for entry in await self._call("listdir", clean_relative(path), recursive)
        ]

    async def stat(self, path: str) -> FileInfo:
        return _info(await self._call("stat", clean_relative(path)))

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
            return _info(await self._call("write_commit", tmp, rel))
        except BaseException:
            await self._call("write_abort", tmp)
            raise


class ContentsFiles(SandboxFiles):
    """Files through the server's contents API, under `root` (relative to its root_dir)."""

    def __init__(self, api: ServerAPI, root: str) -> None:
        self._api = api
        self._root = root.strip("/")
        # Directories known to exist, so a write does not re-create every parent each time.
        self._made: set[str] = {self._root, posixpath.join(self._root, WORKSPACE)}

    def _remote(self, rel: str) -> str:
        return posixpath.join(self._root, rel) if rel else self._root

    def _url(self, rel: str) -> str:
        return "api/contents/" + quote(self._remote(rel))

    def _from_model(self, model: dict[str, Any]) -> FileInfo:
        remote = model["path"].strip("/")
        rel = "" if remote == self._root else posixpath.relpath(remote, self._root)
        is_dir = model["type"] == "directory"
        stamp = str(model.get("last_modified") or "1970-01-01T00:00:00+00:00")
        return FileInfo(
            path=rel,
            type="directory" if is_dir else "file",
            size=0 if is_dir else int(model.get("size") or 0),
            modified=datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp(),
            mime_type=guess_mime(rel, is_dir),
        )

    async def _model(self, rel: str, **query: str) -> dict[str, Any]:
        try:
            return await self._api.request("GET", self._url(rel), query=query)
        except NotFoundError:
            raise NotFoundError(f"no file {rel or '/'!r} in this environment") from None

    async def list(self, path: str = "", recursive: bool = False) -> list[FileInfo]:
        rel = clean_relative(path)
        model = await self._model(rel, content="1")
        if model["type"] != "directory":
            return [self._from_model(model)]
        entries: list[FileInfo] = []
        for child in sorted(model.get("content") or [], key=lambda m: m["path"]):
            info = self._from_model(child)
            entries.append(info)
            if recursive and info.type == "directory":
                entries.extend(await self.list(info.path, recursive=True))
        return sorted(entries, key=lambda e: e.path)

    async def stat(self, path: str) -> FileInfo:
        return self._from_model(await self._model(clean_relative(path), content="0"))

    async def read(self, path: str) -> bytes:
        rel = clean_relative(path)
        try:
            model = await self._model(rel, type="file", format="base64", content="1")
        except SandboxError:
            if (await self.stat(rel)).type == "directory":
                raise RequestError(f"{rel or '/'!r} is a directory; list it instead") from None
            raise
        return base64.b64decode(model.get("content") or "")

    async def _make_parents(self, rel: str) -> None:
        parts = self._remote(rel).split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory in self._made:
                continue
            await self._api.request(
                "PUT", "api/contents/" + quote(directory), {"type": "directory"}
            )
            self._made.add(directory)

    async def write(self, path: str, data: bytes) -> FileInfo:
        rel = clean_relative(path)
        if not rel:
            raise RequestError("give a file path to write, not the environment root")
        await self._make_parents(rel)
        try:
            return await self._put(rel, data)
        except SandboxError:
            # A parent we thought existed may have been removed since (by code in the kernel).
            self._made = {self._root}
            await self._make_parents(rel)
            return await self._put(rel, data)

    async def _put(self, rel: str, data: bytes) -> FileInfo:
        if len(data) <= SINGLE_PUT_BYTES:
            # The server writes atomically (temporary file, then rename).
            model = await self._api.request("PUT", self._url(rel), _file_body(data))
            return self._from_model(model)
        # Chunked uploads append in place, so they go to a temporary name, renamed at the end.
        tmp = posixpath.join(posixpath.dirname(rel), f"upload-{uuid.uuid4().hex}.part")
        try:
            chunks = range(0, len(data), CHUNK_BYTES)
            for index, start in enumerate(chunks, start=1):
                number = -1 if start + CHUNK_BYTES >= len(data) else index
                body = {**_file_body(data[start : start + CHUNK_BYTES]), "chunk": number}
                await self._api.request("PUT", self._url(tmp), body)
            try:
                await self._api.request("DELETE", self._url(rel))
            except NotFoundError:
                pass
            model = await self._api.request("PATCH", self._url(tmp), {"path": self._remote(rel)})
        except BaseException:
            try:
                await self._api.request("DELETE", self._url(tmp))
            except (SandboxError, NotFoundError):
                pass
            raise
        return self._from_model(model)


def _file_body(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode("ascii")}
