"""`DirectoryFiles`: the SandboxFiles contract over a directory on this machine.

The gateway's environment file routes and the local sandbox both use it: an environment's
files are a directory the gateway owns, and the local sandbox's kernel works inside it.
File I/O runs in a worker thread so a large file never stalls the gateway's event loop.
"""

from __future__ import annotations

import asyncio
import os
import stat as stat_module
import tempfile
from pathlib import Path

from ..errors import NotFoundError, RequestError
from .base import FileInfo, SandboxFiles, clean_relative, guess_mime, resolve_inside


def give_to_owner(root: Path, *paths: Path) -> None:
    """Give written paths (with their new parents, and a directory's whole tree) to the
    owner of `root`. A gateway running as root writes what the sandbox's own uid, the
    owner of an environment once a sandbox started there, must be able to change."""
    if os.geteuid() != 0:
        return
    root = root.resolve()
    owner = root.stat()
    if owner.st_uid == 0:
        return  # no sandbox identity yet: the sandbox takes the whole tree when it starts
    for path in paths:
        tree = path.rglob("*") if path.is_dir() and not path.is_symlink() else ()
        for item in (*tree, path, *path.parents):
            if item == root or root not in item.parents:
                break
            if item.lstat().st_uid != owner.st_uid:
                os.lchown(item, owner.st_uid, owner.st_gid)


class DirectoryFiles(SandboxFiles):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _info(self, real: Path) -> FileInfo:
        st = real.stat()
        is_dir = stat_module.S_ISDIR(st.st_mode)
        rel = real.relative_to(self.root.resolve()).as_posix()
        rel = "" if rel == "." else rel
        return FileInfo(
            path=rel,
            type="directory" if is_dir else "file",
            size=0 if is_dir else st.st_size,
            modified=st.st_mtime,
            mime_type=guess_mime(rel, is_dir),
        )

    def _list(self, path: str, recursive: bool) -> list[FileInfo]:
        real = resolve_inside(self.root, path, must_exist=True)
        if not real.is_dir():
            return [self._info(real)]
        entries: list[FileInfo] = []
        walker = sorted(real.rglob("*")) if recursive else sorted(real.iterdir())
        real_root = self.root.resolve()
        for child in walker:
            # Symlinks that leave the root are not listed (and cannot be read).
            target = child.resolve()
            if target != real_root and real_root not in target.parents:
                continue
            try:
                entries.append(self._info(child.parent.resolve() / child.name))
            except FileNotFoundError:  # removed while listing, or a dangling link
                continue
        return entries

    def _stat(self, path: str) -> FileInfo:
        return self._info(resolve_inside(self.root, path, must_exist=True))

    def _read(self, path: str) -> bytes:
        real = resolve_inside(self.root, path, must_exist=True)
        if real.is_dir():
            raise RequestError(f"{clean_relative(path)!r} is a directory; list it instead")
        if not real.exists():
            raise NotFoundError(f"no file {clean_relative(path)!r} in this environment")
        return real.read_bytes()

    def _write(self, path: str, data: bytes) -> FileInfo:
        rel = clean_relative(path)
        if not rel:
            raise RequestError("give a file path to write, not the environment root")
        real = resolve_inside(self.root, rel)
        if real.is_dir():
            raise RequestError(f"{rel!r} is a directory; choose a file path")
        real.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file beside the target, then rename: readers never see half.
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o644)  # not mkstemp's 0600: the sandbox's uid reads it too
            os.replace(tmp, real)
            give_to_owner(self.root, real)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._info(real)

    async def list(self, path: str = "", recursive: bool = False) -> list[FileInfo]:
        return await asyncio.to_thread(self._list, path, recursive)

    async def stat(self, path: str) -> FileInfo:
        return await asyncio.to_thread(self._stat, path)

    async def read(self, path: str) -> bytes:
        return await asyncio.to_thread(self._read, path)

    async def write(self, path: str, data: bytes) -> FileInfo:
        return await asyncio.to_thread(self._write, path, data)
