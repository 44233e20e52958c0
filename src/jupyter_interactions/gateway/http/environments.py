"""Routes of environments (`client.environments.create/get/list/delete`) and their files:
listing, downloading (a file, or a directory as a tar) and Google's resumable upload."""

from __future__ import annotations

import contextlib
from typing import Any

from ...errors import RequestError
from ...sandbox.base import SandboxFiles, clean_relative
from ..environments.manager import file_resource
from ..environments.tar_download import directory_tar
from ..upstream.files import UpstreamFiles
from . import requests as routes
from .base import BaseHandler

# -- environments and their files -----------------------------------------------------------------


class EnvironmentsHandler(BaseHandler):
    async def get(self) -> None:
        wanted = routes.list_environments(self.request)
        page = wanted.page
        environments = await self.state.environments.list(page.offset, page.fetch, wanted.mode)
        self.send_json(page.answer("environments", environments))

    async def post(self) -> None:
        body = await routes.create_environment(self.request)
        if body.get("env"):
            raise RequestError(
                "environment variables go on the interaction's environment, not here"
            )
        self.send_json(await self.state.environments.create(body))


class EnvironmentHandler(BaseHandler):
    async def get(self, environment_id: str) -> None:
        environment_id = routes.environment(self.request, environment_id)
        self.send_json(await self.state.environments.get(environment_id))

    async def delete(self, environment_id: str) -> None:
        await self.send_deleted(
            self.state.environments.delete(routes.environment(self.request, environment_id))
        )


class FilesHandler(BaseHandler):
    async def get(self, environment_id: str, path: str) -> None:
        read = routes.read_files(self.request, environment_id, path)
        files = await self.state.environments.files(read.environment_id)
        if read.media:
            await self._download(files, read.path, read.recursive)
            return
        entries = await files.list(read.path, recursive=read.recursive)
        page = read.page
        listed = [file_resource(e) for e in page.window(entries)]
        self.send_json(page.answer("files", listed))

    async def _download(self, files: SandboxFiles, path: str, recursive: bool) -> None:
        """A file's bytes; a directory as a POSIX tar (uncompressed) of its regular files,
        named relative to it: the files directly in it, or all below it with
        recursive=true. Streamed a file at a time; symlinks are never followed."""
        if isinstance(files, UpstreamFiles):  # Google's service makes its own tar
            self.set_header("Content-Type", "application/octet-stream")
            self.finish(await files.read(path))
            return
        info = await files.stat(path)
        if info.type != "directory":
            self.set_header("Content-Type", info.mime_type)
            self.finish(await files.read(path))
            return
        name = clean_relative(path).rsplit("/", 1)[-1] or "environment"
        self.set_header("Content-Type", "application/x-tar")
        self.set_header("Content-Disposition", f'attachment; filename="{name}.tar"')
        chunks = directory_tar(files, path, recursive=recursive)
        async with contextlib.aclosing(chunks):  # a client that goes away closes the file
            async for chunk in chunks:
                self.write(chunk)
                await self.flush()
        self.finish()


class UploadHandler(BaseHandler):
    """Google's resumable protocol: PUT starts (answering X-Goog-Upload-URL), POSTs carry
    the bytes; the last, with `finalize`, answers `x-goog-upload-status: final` + the file."""

    async def put(self, environment_id: str, path: str) -> None:
        start = routes.start_upload(self.request, environment_id, path)
        upload_id = await self.state.uploads.start_upload(
            start.environment_id, start.path, start.size, start.overwrite, start.extract
        )
        url = f"{self.request.protocol}://{self.request.host}{self.request.path}?upload_id={upload_id}"
        self.set_header("X-Goog-Upload-URL", url)
        self.set_header("X-Goog-Upload-Status", "active")
        self.send_json({})

    async def post(self, environment_id: str, path: str) -> None:
        chunk = routes.upload_chunk(self.request, environment_id, path)
        placed = await self.state.uploads.upload_chunk(
            chunk.upload_id, chunk.offset, self.request.body or b"", chunk.finalize
        )
        if placed is None:
            self.set_header("X-Goog-Upload-Status", "active")
            self.send_json({})
            return
        self.set_header("X-Goog-Upload-Status", "final")
        self.send_json({"files": [file_resource(info) for info in placed]})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Without a status header the SDK retries the chunk; "final" makes it read the error.
        self.set_header("X-Goog-Upload-Status", "final")
        super().write_error(status_code, **kwargs)
