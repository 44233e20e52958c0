"""`WarmPool`: started, isolated kernels kept ready so a new sandbox's first step is fast.

A pooled kernel is launched on a slot directory of its own (`<base_dir>/.warm-*`). Taking
it moves whatever the environment root already holds into the slot, then renames the slot
onto the root. Bind mounts, Landlock rules and the kernel's working directory all follow
the directory itself, not its name, so isolation stays exactly as launched; only kernels
whose slot is on the root's filesystem can be adopted (else the sandbox starts cold).
Where sandboxes get quota disks (`disk.py`), a slot is one: taking it binds that disk onto
the root (a new environment's root, not yet a disk of its own) and copies the root's files
in; an environment that has its disk already starts cold.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from . import disk
from .base import WORKSPACE, Limits
from .isolated import IsolatedKernel
from .isolation import choose_tier

__all__ = ["WarmPool"]

log = logging.getLogger(__name__)
PoolKey = tuple[str, Limits]


class WarmPool:
    """Keeps `size` started kernels per (tier, limits) ready. `base_dir` should be on the
    same filesystem as the environment roots (the gateway's environments directory)."""

    def __init__(self, size: int = 1, base_dir: Path | None = None) -> None:
        self.size = size
        self.base_dir = Path(base_dir) if base_dir is not None else Path(tempfile.gettempdir())
        self._ready: dict[PoolKey, list[IsolatedKernel]] = {}
        self._filling: dict[PoolKey, set[asyncio.Task[IsolatedKernel]]] = {}
        self._slot_disks = disk.DiskQuotas()
        self._images: dict[Path, Path] = {}  # slot -> its disk's image, beside it
        self._closed = False

    def __repr__(self) -> str:
        ready = {f"{tier}": len(kernels) for (tier, _), kernels in self._ready.items()}
        return f"WarmPool(size={self.size}, ready={ready})"

    def warm(self, tier: str = "auto", limits: Limits | None = None) -> None:
        """Start filling the pool for this tier and limits (returns at once)."""
        self._fill((choose_tier(tier), limits or Limits()))

    async def wait_ready(self, tier: str = "auto", limits: Limits | None = None) -> None:
        """Wait until the pool holds `size` ready kernels for this tier and limits."""
        key = (choose_tier(tier), limits or Limits())
        self._fill(key)
        while self._filling.get(key):
            await asyncio.wait(set(self._filling[key]))

    def _fill(self, key: PoolKey) -> None:
        if self._closed:
            return
        filling = self._filling.setdefault(key, set())
        missing = self.size - len(self._ready.get(key, [])) - len(filling)
        for _ in range(max(missing, 0)):
            task = asyncio.ensure_future(self._launch(key))
            filling.add(task)
            task.add_done_callback(functools.partial(self._landed, key))

    async def _launch(self, key: PoolKey) -> IsolatedKernel:
        tier, limits = key
        slot = self.base_dir / f".warm-{secrets.token_hex(6)}"
        if limits.disk_bytes > 0 and await asyncio.to_thread(disk.supported):
            image = self.base_dir / f"{slot.name}{disk.IMAGE}"
            self._images[slot] = image
            await self._slot_disks.attach(slot, limits.disk_bytes, image=image)
        try:
            return await IsolatedKernel.launch(tier, slot, limits)
        except BaseException:
            await self._drop_slot(slot)
            raise

    async def _drop_slot(self, slot: Path) -> None:
        await self._slot_disks.remove(slot)
        image = self._images.pop(slot, None)
        if image is not None:
            await asyncio.to_thread(image.unlink, True)

    def _landed(self, key: PoolKey, task: asyncio.Task[IsolatedKernel]) -> None:
        self._filling.get(key, set()).discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.warning("could not pre-start a sandbox kernel: %s", task.exception())
            return
        if not self._closed:  # else close() destroys it
            self._ready.setdefault(key, []).append(task.result())

    def ready(self, tier: str = "auto", limits: Limits | None = None) -> list[IsolatedKernel]:
        """The kernels ready now for this tier and limits, next to be taken first."""
        return list(self._ready.get((choose_tier(tier), limits or Limits()), []))

    async def take(
        self, tier: str, limits: Limits, root: Path, disks: disk.DiskQuotas | None = None
    ) -> IsolatedKernel | None:
        """A started kernel re-rooted at `root`, or None (the caller starts one cold).
        `disks` keeps a slot's quota disk mounted on `root` from then on (without it, such
        a slot is not handed over). Waits for a kernel already being started rather than
        starting a second one."""
        key = (choose_tier(tier), limits)
        ready = self._ready.setdefault(key, [])
        if not ready and self._filling.get(key):
            await asyncio.wait(set(self._filling[key]), return_when=asyncio.FIRST_COMPLETED)
        if not ready:
            self._fill(key)
            return None
        kernel = ready.pop(0)
        try:
            adopted = await self._adopt(kernel, root, disks)
        except OSError as exc:
            log.warning("could not hand a pre-started kernel to %s: %s", root, exc)
            await kernel.destroy()
            await self._drop_slot(kernel.layout.root)
            adopted = False
        else:
            if not adopted:
                ready.insert(0, kernel)  # still good for another root
        self._fill(key)
        return kernel if adopted else None

    async def _adopt(
        self, kernel: IsolatedKernel, root: Path, disks: disk.DiskQuotas | None
    ) -> bool:
        slot = kernel.layout.root
        image = self._images.get(slot)
        if image is None:
            return await asyncio.to_thread(_adopt, kernel, root)
        root.parent.mkdir(parents=True, exist_ok=True)
        if disks is None or disk.is_disk(root) or not _same_filesystem(image, root.parent):
            return False
        await self._slot_disks.hand_over(slot, root, disks, image)
        del self._images[slot]
        await asyncio.to_thread(kernel.identity.take, root)
        await kernel.move_to(root)
        return True

    async def close(self) -> None:
        """Stop every kernel the pool holds or is starting. Idempotent."""
        self._closed = True
        tasks = [task for tasks in self._filling.values() for task in tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                kernel = await task
                await kernel.destroy()
                await self._drop_slot(kernel.layout.root)
        kernels = [kernel for kernels in self._ready.values() for kernel in kernels]
        self._ready.clear()
        await asyncio.gather(*(kernel.destroy() for kernel in kernels))
        for kernel in kernels:
            await self._drop_slot(kernel.layout.root)
            await asyncio.to_thread(shutil.rmtree, kernel.layout.root, True)


def _same_filesystem(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def _adopt(kernel: IsolatedKernel, root: Path) -> bool:
    """Make the kernel's slot directory become `root`, keeping root's existing files."""
    slot = kernel.layout.root
    root.parent.mkdir(parents=True, exist_ok=True)
    if not _same_filesystem(slot, root.parent):
        return False  # a rename cannot cross filesystems
    if root.exists():
        for entry in list(root.iterdir()):
            if entry.name == WORKSPACE and entry.is_dir() and not entry.is_symlink():
                for item in list(entry.iterdir()):
                    os.rename(item, slot / WORKSPACE / item.name)
                entry.rmdir()
            else:
                os.rename(entry, slot / entry.name)
    os.rename(slot, root)  # replaces the now empty root directory
    kernel.identity.take(root)
    kernel.relocate(root)
    return True
