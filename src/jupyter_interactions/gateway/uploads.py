"""Resumable uploads into environments (Google's protocol, see resources.UploadHandler): the
bytes collect in a partial file outside the environment and appear in it, as one file or an
archive's files, only when the upload is finalized. A live remote sandbox gets them too.
"""

from __future__ import annotations

import asyncio
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConflictError, NotFoundError, RequestError
from ..sandbox.base import FileInfo, clean_relative, resolve_inside
from ..sandbox.directory import DirectoryFiles, give_to_owner
from ..sandbox.disk import replace_across
from .engine import new_id
from .environments import EnvironmentManager, lives_upstream
from .upstream_files import no_uploads

__all__ = ["Uploads"]


@dataclass
class Upload:
    environment_id: str
    path: str
    size: int | None
    overwrite: bool
    extract: bool
    partial: Path
    offset: int = 0


class Uploads:
    def __init__(self, data_dir: Path, environments: EnvironmentManager) -> None:
        self.partials = Path(data_dir) / "uploads"
        self.environments = environments
        self._uploads: dict[str, Upload] = {}

    async def start(self) -> None:
        """Drop partial uploads a previous gateway left: their sessions died with it."""
        await asyncio.to_thread(shutil.rmtree, self.partials, True)

    async def start_upload(
        self, environment_id: str, path: str, size: int | None, overwrite: bool, extract: bool
    ) -> str:
        environments = self.environments
        if lives_upstream(await environments.resource(environment_id)):
            raise no_uploads(environment_id)
        rel = clean_relative(path)
        if not rel and not extract:
            raise RequestError("give a file path to upload to, e.g. 'workspace/data.csv'")
        target = resolve_inside(environments.root(environment_id), rel)
        if not extract and target.exists() and not overwrite:
            raise ConflictError(f"{rel!r} already exists; pass overwrite=True to replace it")
        upload_id = new_id("upload")
        partial = self.partials / upload_id
        await asyncio.to_thread(self._create_partial, partial)
        self._uploads[upload_id] = Upload(environment_id, rel, size, overwrite, extract, partial)
        return upload_id

    def _create_partial(self, partial: Path) -> None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(b"")

    async def upload_chunk(
        self, upload_id: str, offset: int, data: bytes, finalize: bool
    ) -> list[FileInfo] | None:
        """Append a chunk; on finalize, move the file (or the archive's files) into place."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise NotFoundError("unknown or finished upload; start the upload again")
        if offset != upload.offset:
            raise RequestError(
                f"upload offset {offset} does not match the {upload.offset} bytes received"
            )
        await asyncio.to_thread(self._append, upload.partial, data)
        upload.offset += len(data)
        if not finalize:
            return None
        del self._uploads[upload_id]
        try:
            if upload.size is not None and upload.offset != upload.size:
                raise RequestError(
                    f"upload ended after {upload.offset} bytes but {upload.size} were announced"
                )
            paths = await asyncio.to_thread(self._place, upload)
        finally:
            upload.partial.unlink(missing_ok=True)
        files = await self.environments.files(upload.environment_id)
        if not isinstance(files, DirectoryFiles):  # a live remote sandbox gets them as well
            root = self.environments.root(upload.environment_id)
            for path in paths:
                await files.write(path, await asyncio.to_thread((root / path).read_bytes))
        return [await files.stat(p) for p in paths]

    @staticmethod
    def _append(partial: Path, data: bytes) -> None:
        with partial.open("ab") as handle:
            handle.write(data)

    def _place(self, upload: Upload) -> list[str]:
        root = self.environments.root(upload.environment_id)
        if upload.extract:
            return self._extract(upload, root)
        target = resolve_inside(root, upload.path)
        if target.is_dir():
            raise RequestError(f"{upload.path!r} is a directory; choose a file path")
        if target.exists() and not upload.overwrite:
            raise ConflictError(
                f"{upload.path!r} already exists; pass overwrite=True to replace it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_across(upload.partial, target)  # the environment may be on a quota disk
        give_to_owner(root, target)
        return [upload.path]

    def _extract(self, upload: Upload, root: Path) -> list[str]:
        destination = resolve_inside(root, upload.path)
        destination.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(upload.partial) as archive:
                members = archive.getmembers()
                for member in members:
                    if not upload.overwrite and (destination / member.name).exists():
                        raise ConflictError(
                            f"{member.name!r} already exists; pass overwrite=True to replace it"
                        )
                # The "data" filter refuses absolute paths, .. and links that escape.
                archive.extractall(destination, filter="data")
            give_to_owner(root, destination)
        except tarfile.TarError as exc:
            raise RequestError(f"extract=True needs a tar or tar.gz archive: {exc}") from None
        prefix = upload.path
        return [f"{prefix}/{m.name}" if prefix else m.name for m in members if m.isfile()]
