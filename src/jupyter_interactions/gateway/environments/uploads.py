"""Resumable uploads into environments (Google's protocol, see resources.UploadHandler): the
bytes collect in a partial file outside the environment and appear in it, as one file or an
archive's files, only when the upload is finalized. A live remote sandbox gets them too.

The environment's entries are the sandbox's code's to make, so targets are placed through
DirectoryFiles (no link followed, only regular files replaced); an archive is unpacked in a
directory of the gateway's own first, then moved in entry by entry the same way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import NotFoundError, RequestError
from ...sandbox.base import FileInfo, clean_relative
from ...sandbox.directory import DirectoryFiles
from ..state.stamps import new_id
from ..upstream.files import no_uploads
from .manager import EnvironmentManager, lives_upstream

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
        if not extract:
            await DirectoryFiles(environments.root(environment_id)).check_target(rel, overwrite)
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
        local = DirectoryFiles(self.environments.root(upload.environment_id))
        try:
            if upload.size is not None and upload.offset != upload.size:
                raise RequestError(
                    f"upload ended after {upload.offset} bytes but {upload.size} were announced"
                )
            async with self.environments.holding(upload.environment_id):
                if upload.extract:
                    placed = await self._extract(upload, local)
                else:
                    placed = [await local.place(upload.path, upload.partial, upload.overwrite)]
        finally:
            await asyncio.to_thread(_remove_partial, upload.partial)
        files = await self.environments.files(upload.environment_id)
        if isinstance(files, DirectoryFiles):
            return placed
        for info in placed:  # a live remote sandbox gets them as well
            await files.write(info.path, await local.read(info.path))
        return [await files.stat(info.path) for info in placed]

    @staticmethod
    def _append(partial: Path, data: bytes) -> None:
        with partial.open("ab") as handle:
            handle.write(data)

    async def _extract(self, upload: Upload, local: DirectoryFiles) -> list[FileInfo]:
        """Unpack into a directory of our own, then move each entry in (none if any exists
        and overwrite was not asked); answers the regular files placed."""
        staging = upload.partial.with_name(upload.partial.name + ".d")
        entries = await asyncio.to_thread(_unpack, upload.partial, staging)
        prefix = upload.path
        inside = [
            (f"{prefix}/{rel}" if prefix else rel, kind, source) for rel, kind, source in entries
        ]
        # Every target is checked before the first is placed: all or none.
        for path, kind, _ in [(prefix, "directory", ""), *inside]:
            if kind == "directory":
                await local.make_directories(path, check_only=True)
            else:
                await local.check_target(path, upload.overwrite)
        placed: list[FileInfo] = []
        if prefix:
            await local.make_directories(prefix)
        for path, kind, source in inside:
            if kind == "directory":
                await local.make_directories(path)
            elif kind == "symlink":
                await local.link(path, source, upload.overwrite)
            else:
                placed.append(await local.place(path, staging / source, upload.overwrite))
        return placed


def _unpack(archive: Path, staging: Path) -> list[tuple[str, str, str]]:
    """Unpack a tar (or tar.gz) into `staging`; its entries in order, as (path, kind,
    source): for a file, its path in staging; for a symlink, its target."""
    staging.mkdir(parents=True)
    try:
        with tarfile.open(archive) as tar:
            # The "data" filter refuses absolute paths, .., devices and links that escape.
            tar.extractall(staging, filter="data")
    except tarfile.TarError as exc:
        raise RequestError(f"extract=True needs a tar or tar.gz archive: {exc}") from None
    entries: list[tuple[str, str, str]] = []
    for directory, folders, names in os.walk(staging):
        for name in sorted([*folders, *names]):
            path = Path(directory, name)
            rel = path.relative_to(staging).as_posix()
            if path.is_symlink():
                entries.append((rel, "symlink", os.readlink(path)))
            elif path.is_dir():
                entries.append((rel, "directory", ""))
            else:
                entries.append((rel, "file", rel))
        folders.sort()
    return entries


def _remove_partial(partial: Path) -> None:
    partial.unlink(missing_ok=True)
    shutil.rmtree(partial.with_name(partial.name + ".d"), ignore_errors=True)
