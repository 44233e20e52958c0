"""An environment's files while its sandbox starts: a pre-started kernel's quota disk is
mounted over the environment's directory, after its files were moved aside; what is read
or written meanwhile waits for the move, so nothing is missed and nothing is hidden; the
hand-over alone mounts the root it moves, puts everything back when it fails, and ext4's
lost+found is never shown as the user's."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import tarfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_interactions.config import GatewayConfig
from jupyter_interactions.errors import SandboxError
from jupyter_interactions.gateway.environments.manager import EnvironmentManager
from jupyter_interactions.gateway.environments.sandboxes import LiveSandboxes
from jupyter_interactions.gateway.environments.tar_download import directory_tar
from jupyter_interactions.gateway.state.store import Store
from jupyter_interactions.sandbox import disk
from jupyter_interactions.sandbox.base import Limits
from jupyter_interactions.sandbox.pool import WarmPool

# How long a read or write that does not wait for the move gets to show it: an upper bound
# for this test to see the old behaviour, never a speed the test asserts.
UNGUARDED_SECONDS = 3.0


def _inline(target: str, content: str) -> dict[str, Any]:
    return {"type": "inline", "content": content, "target": target}


def _mount_points(under: Path) -> list[str]:
    """The mount points at or below `under`, one per mount, from this process's mount table."""
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        points = [line.split()[4] for line in table]
    return [point for point in points if point == str(under) or point.startswith(f"{under}/")]


@contextlib.asynccontextmanager
async def _gateway_parts(
    tmp_path: Path, limits: Limits | None = None
) -> AsyncIterator[tuple[EnvironmentManager, LiveSandboxes]]:
    """An environment manager whose sandboxes come from a warm pool of one (with quota
    disks); every part stopped, and every mount below `tmp_path` gone, afterwards."""
    if not await asyncio.to_thread(disk.supported):
        pytest.skip("no quota disks here (needs root, loop devices and mkfs.ext4)")
    config = GatewayConfig(data_dir=tmp_path, warm_pool_size=1)
    store = Store(tmp_path)
    await store.open()
    environments = EnvironmentManager(tmp_path, store)
    pool = WarmPool(size=1, base_dir=tmp_path / "sandboxes")
    live = LiveSandboxes(config, pool_factory=lambda: pool, limits=limits)
    environments.live = live
    try:
        await pool.wait_ready("auto", live.limits)
        yield environments, live
    finally:
        await live.close()
        await pool.close()
        await store.close()
        for point in reversed(_mount_points(tmp_path)):  # what the code under test left
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _pause_at_the_bind_mount(
    monkeypatch: pytest.MonkeyPatch, resume: threading.Event
) -> asyncio.Event:
    """Hold every hand-over at its bind mount (the root's files aside, the slot's image
    renamed into the root, the disk not yet over it) until `resume`; the returned event is
    set once one is held there."""
    loop = asyncio.get_running_loop()
    moving = asyncio.Event()
    real_run: Callable[..., None] = disk._run

    def run_paused_at_the_bind_mount(*argv: str) -> None:
        if argv[1:2] == ("--bind",):
            loop.call_soon_threadsafe(moving.set)
            resume.wait(120)
        real_run(*argv)

    monkeypatch.setattr(disk, "_run", run_paused_at_the_bind_mount)
    return moving


async def _until(event: asyncio.Event, task: asyncio.Future[Any]) -> None:
    """Wait for `event`, or for `task` to end first (then the assertion says so)."""
    waiting = asyncio.ensure_future(event.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert event.is_set(), "the sandbox did not take the pool's kernel"


async def test_files_read_and_written_while_a_pooled_sandbox_moves_them_land_on_its_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resume = threading.Event()
    async with _gateway_parts(tmp_path) as (environments, live):
        notes = _inline("/workspace/notes/readme.md", "# Project Notes\n")
        env_id = (await environments.create({"type": "remote", "sources": [notes]}))["id"]

        # Hold the hand-over at its bind mount (the order of events of an agent turn that
        # ends before the sandbox it started in the background is ready, then a download).
        moving = _pause_at_the_bind_mount(monkeypatch, resume)
        acquiring = asyncio.ensure_future(live.acquire(env_id, environments.root(env_id)))
        try:
            await _until(moving, acquiring)

            async def read() -> bytes:
                files = await environments.files(env_id)
                return await files.read("workspace/notes/readme.md")

            reading = asyncio.ensure_future(read())
            added = _inline("/workspace/given.txt", "given mid-move")
            writing = asyncio.ensure_future(environments.update(env_id, {"sources": [added]}))
            await asyncio.wait({reading, writing}, timeout=UNGUARDED_SECONDS)
            assert live.storage_lock(env_id).locked()  # the cause of the wait: the move
            resume.set()
            lease = await acquiring

            assert await reading == b"# Project Notes\n"
            await writing
            seen = await lease.sandbox.run(
                "print(open('notes/readme.md').read().strip(), open('given.txt').read())"
            )
            assert seen.stdout == "# Project Notes given mid-move\n", seen.text()
            assert disk.is_disk(environments.root(env_id))
            files = await environments.files(env_id)
            assert await files.read("workspace/given.txt") == b"given mid-move"
            live.release(lease)
        finally:
            resume.set()  # a failed assertion must not leave the hand-over waiting


async def test_a_root_asked_for_mid_hand_over_is_mounted_by_the_hand_over_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resume = threading.Event()
    async with _gateway_parts(tmp_path) as (environments, live):
        notes = _inline("/workspace/notes.md", "kept")
        env_id = (await environments.create({"type": "remote", "sources": [notes]}))["id"]
        moving = _pause_at_the_bind_mount(monkeypatch, resume)
        root = environments.root(env_id)
        acquiring = asyncio.ensure_future(live.acquire(env_id, root))
        try:
            await _until(moving, acquiring)
            # The slot's image is in the root now, nothing mounted over it yet: asking for
            # the root (as every route does, without the storage lock) must not mount it.
            assert (root / disk.IMAGE).exists()
            assert environments.root(env_id) == root
            assert _mount_points(root) == []
            resume.set()
            lease = await acquiring
            assert _mount_points(root) == [str(root)]  # the hand-over's bind mount, once
            files = await environments.files(env_id)
            assert await files.read("workspace/notes.md") == b"kept"
            live.release(lease)
        finally:
            resume.set()


async def test_files_that_do_not_fit_the_pooled_disk_stay_where_they_were(
    tmp_path: Path,
) -> None:
    quota = Limits(disk_bytes=16 * 1024**2)
    async with _gateway_parts(tmp_path, quota) as (environments, live):
        notes = _inline("/workspace/notes.md", "kept")
        env_id = (await environments.create({"type": "remote", "sources": [notes]}))["id"]
        big = os.urandom(24 * 1024**2)  # random: no copy can leave it sparse
        await (await environments.files(env_id)).write("workspace/big.bin", big)
        root = environments.root(env_id)

        with pytest.raises(SandboxError, match=r"do not fit its disk quota.*disk_bytes"):
            await live.acquire(env_id, root)

        files = await environments.files(env_id)
        assert await files.read("workspace/notes.md") == b"kept"
        assert await files.read("workspace/big.bin") == big
        assert _mount_points(root) == []
        assert sorted(path.name for path in root.parent.iterdir()) == [env_id]
        assert not (root / disk.IMAGE).exists()


async def test_ext4s_lost_and_found_is_never_listed_forked_or_downloaded(
    tmp_path: Path,
) -> None:
    async with _gateway_parts(tmp_path) as (environments, live):
        notes = _inline("/workspace/lost+found/mine.md", "the user's own")
        env_id = (await environments.create({"type": "remote", "sources": [notes]}))["id"]
        root = environments.root(env_id)
        await live.disks.attach(root, disk._MIN_BYTES)
        assert _mount_points(root) == [str(root)]
        (root / "lost+found").mkdir()  # as fsck leaves it: not empty
        (root / "lost+found" / "#12").write_bytes(b"recovered")
        expected = ["workspace", "workspace/lost+found", "workspace/lost+found/mine.md"]

        files = await environments.files(env_id)
        assert [entry.path for entry in await files.list("", recursive=True)] == expected
        assert [entry.path for entry in await files.list("")] == ["workspace"]
        chunks = [chunk async for chunk in directory_tar(files, "", recursive=True)]
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            assert archive.getnames() == ["workspace/lost+found/mine.md"]
        fork = (await environments.create({"from_environment": env_id}))["id"]
        forked = await environments.files(fork)
        assert [entry.path for entry in await forked.list("", recursive=True)] == expected
