"""Disk quotas for local sandboxes: an environment's files live in an ext4 image of the quota's
size, loop-mounted on the environment's root.

A write past the quota fails inside the sandbox with ENOSPC, and the host's disk grows by at
most the quota (the image is sparse, and mounted with `discard`, so deleted files give the
space back). The image sits in the root directory itself, hidden beneath the mount: deleting
or copying the root takes it along, and nothing in the sandbox can reach it. Mounts need root
(CAP_SYS_ADMIN) and loop devices: `supported()` probes that once. Whoever keeps the files in
use keeps the disk mounted (`DiskQuotas`: the gateway, for as long as it runs); unmounted,
the files stay in the image and the next `attach` mounts it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import SandboxError
from . import safe_files

log = logging.getLogger(__name__)

__all__ = ["IMAGE", "DiskQuotas", "is_disk", "supported", "usage_bytes"]

IMAGE = ".quota.ext4"
_MOUNT_OPTIONS = "loop,discard,nosuid,nodev,noatime"
# Lazy inode tables and journal: the image starts at well under 1 MB, and nothing zeroes
# them later (noinit_itable) to grow it behind the quota's back.
_MKFS = ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"]
_MIN_BYTES = 16 * 1024**2  # ext4 needs room for its own metadata
LOST_AND_FOUND = "lost+found"  # ext4's own, at a disk's root: never the user's

# The roots whose mount or files some thread is changing now. One set for every DiskQuotas: a
# hand-over moves a root from the pool's to the gateway's, and mid-way (its image renamed into
# the root, the bind mount not yet made) nobody else may decide the root needs mounting.
_changes = threading.Condition()
_changing: set[Path] = set()


@contextlib.contextmanager
def _owning(root: Path, wait: bool = True) -> Iterator[bool]:
    """Be the one thread changing `root`'s mount and files while held (yields True); without
    `wait`, yields False at once if another thread is."""
    with _changes:
        if root in _changing and not wait:
            owned = False
        else:
            _changes.wait_for(lambda: root not in _changing)
            _changing.add(root)
            owned = True
    try:
        yield owned
    finally:
        if owned:
            with _changes:
                _changing.discard(root)
                _changes.notify_all()


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise OSError(f"{' '.join(argv[:2])} failed: {(done.stderr or done.stdout).strip()}")


def _mount(image: Path, root: Path) -> None:
    _run("mount", "-o", f"{_MOUNT_OPTIONS},noinit_itable", str(image), str(root))
    lost = root / LOST_AND_FOUND  # made by mkfs; the user never asked for it
    with contextlib.suppress(OSError):  # not empty (fsck put files there): listings skip it
        lost.rmdir()


def _unmount(root: Path, lazily: bool = False) -> None:
    if lazily:
        _run("umount", "-l", str(root))
        return
    try:
        _run("umount", str(root))
    except OSError as exc:
        # Busy (a file route still reading): detach now, release when the last user goes.
        log.warning("unmounting %s lazily: %s", root, exc)
        _run("umount", "-l", str(root))


@functools.cache
def supported() -> bool:
    """Can this process make and mount quota disks? (One small image, made and mounted.)"""
    if os.geteuid() != 0 or not all(map(shutil.which, ("mkfs.ext4", "mount", "umount"))):
        return False
    with tempfile.TemporaryDirectory(prefix="ji-disk-probe-") as scratch:
        root = Path(scratch) / "root"
        root.mkdir()
        try:
            _make(root, _MIN_BYTES)
            _unmount(root)
        except OSError as exc:
            log.info("no disk quotas for sandboxes: %s", exc)
            return False
    return True


def is_disk(root: Path) -> bool:
    """Whether `root` is a mounted quota disk (something is mounted there)."""
    return os.path.ismount(root)


def _make(root: Path, size: int, image: Path | None = None) -> Path:
    """Put the files now in `root` into a new image of `size` bytes and mount it there."""
    size = max(size, _MIN_BYTES)
    staged = root.parent / f".{root.name}.quota-{secrets.token_hex(4)}"
    try:
        with open(staged, "wb") as handle:
            handle.truncate(size)
        _run("mkfs.ext4", *_MKFS, "-d", str(root), str(staged))
    except OSError as exc:
        staged.unlink(missing_ok=True)
        if "No space left" in str(exc) or "Could not allocate" in str(exc):
            raise SandboxError(
                f"the environment's files do not fit its disk quota ({size} bytes); raise "
                "sandbox_options.limits.disk_bytes, or remove files"
            ) from None
        raise
    target = image or root / IMAGE
    # The files are in the image now; the copies beneath the mount would only waste space,
    # but stay aside until the mount holds (and go back if it does not).
    aside = root.parent / f".{root.name}.copied-{secrets.token_hex(4)}"
    aside.mkdir()
    moved: list[Path] = []
    try:
        for entry in list(root.iterdir()):
            os.rename(entry, aside / entry.name)
            moved.append(entry)
        os.replace(staged, target)
        _mount(target, root)
    except BaseException:
        staged.unlink(missing_ok=True)
        if not is_disk(root):  # else the image is the mounted disk's, not ours to drop
            target.unlink(missing_ok=True)
        _move_back(moved, aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return target


def _move_back(entries: list[Path], aside: Path) -> None:
    """Return `entries` (of one directory) from `aside`, where they were moved, and drop it."""
    for entry in entries:
        os.rename(aside / entry.name, entry)
    aside.rmdir()


def usage_bytes(root: Path) -> int:
    """Bytes the files under `root` take on disk (for accounting where no quota holds)."""
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue
    return total


class DiskQuotas:
    """The quota disks one owner keeps mounted; `close` unmounts them (files stay in the
    images). Blocking work runs in a thread; `attach_existing` is the one synchronous call."""

    def __init__(self) -> None:
        self.roots: set[Path] = set()

    def __repr__(self) -> str:
        return f"DiskQuotas(mounted={len(self.roots)})"

    async def attach(self, root: Path, size: int, image: Path | None = None) -> None:
        """Make `root` a quota disk of `size` bytes (keeping its files), or mount the one it
        has. `image`: where a new image goes (default: inside the root, beneath the mount)."""
        await asyncio.to_thread(self._attach, Path(root), size, image)

    def _attach(self, root: Path, size: int, image: Path | None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        with _owning(root):
            if not is_disk(root):
                existing = image if image is not None and image.exists() else root / IMAGE
                if existing.exists():
                    _mount(existing, root)
                else:
                    _make(root, size, image)
            self.roots.add(root)

    def attach_existing(self, root: Path) -> None:
        """Mount the image a root already has (a gateway restarted since): synchronous, for
        callers that cannot wait. Nothing happens for a root without one."""
        root = Path(root)
        with _owning(root, wait=False) as owned:
            # Not owned: a hand-over or attach is mounting it (or a detach unmounting it).
            if not owned or root in self.roots or not (root / IMAGE).exists() or is_disk(root):
                if owned and is_disk(root):
                    self.roots.add(root)
                return
            try:
                _mount(root / IMAGE, root)
            except OSError as exc:
                log.warning("could not mount the disk of %s: %s", root, exc)
                return
            self.roots.add(root)

    async def detach(self, root: Path) -> None:
        """Unmount `root`'s disk (its files stay in the image)."""
        root = Path(root)
        self.roots.discard(root)
        await asyncio.to_thread(self._detach, root)

    @staticmethod
    def _detach(root: Path) -> None:
        with _owning(root):
            if is_disk(root):
                _unmount(root)

    async def hand_over(self, source: Path, target: Path, to: DiskQuotas, image: Path) -> None:
        """Make the disk mounted on `source` (its image at `image`) the disk of `target`, a
        plain directory whose files are copied in; `to` keeps it mounted from now on."""
        await asyncio.to_thread(self._hand_over, Path(source), Path(target), image)
        self.roots.discard(Path(source))
        to.roots.add(Path(target))

    @staticmethod
    def _hand_over(source: Path, target: Path, image: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        with _owning(target):
            staging = target.parent / f".{target.name}.adopting-{secrets.token_hex(4)}"
            staging.mkdir()
            moved: list[Path] = []
            image_moved = bound = False
            try:
                for entry in list(target.iterdir()):
                    os.rename(entry, staging / entry.name)
                    moved.append(entry)
                os.rename(image, target / IMAGE)  # beneath the mount, once it is there
                image_moved = True
                _run("mount", "--bind", str(source), str(target))
                bound = True
                # The environment's files are its sandbox's code's: copied as what they are
                # (a FIFO made anew, not opened; no link followed). Until they all are, the
                # slot's disk stays mounted: a failure (too many entries, a file past the
                # quota) puts everything back where it was.
                safe_files.copy_tree(str(staging), str(target), into=True)
            except BaseException:
                if bound:
                    _unmount(target)
                if image_moved:
                    os.rename(target / IMAGE, image)
                _move_back(moved, staging)
                raise
        # Lazily: a kernel working in the slot keeps it in use until it follows (`move_to`).
        _unmount(source, lazily=True)
        source.rmdir()
        shutil.rmtree(staging)

    async def remove(self, root: Path) -> None:
        """Unmount and delete the disk and every file on it."""
        await self.detach(root)
        await asyncio.to_thread(shutil.rmtree, root, True)

    async def close(self) -> None:
        for root in list(self.roots):
            try:
                await self.detach(root)
            except OSError as exc:
                log.warning("could not unmount the disk of %s: %s", root, exc)
