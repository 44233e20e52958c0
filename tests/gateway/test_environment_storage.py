"""An environment's files while its sandbox starts: a pre-started kernel's quota disk is
mounted over the environment's directory, after its files were moved aside; what is read
or written meanwhile waits for the move, so nothing is missed and nothing is hidden."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from jupyter_interactions.config import GatewayConfig
from jupyter_interactions.gateway.environments import EnvironmentManager
from jupyter_interactions.gateway.sandboxes import LiveSandboxes
from jupyter_interactions.gateway.store import Store
from jupyter_interactions.sandbox import disk
from jupyter_interactions.sandbox.pool import WarmPool

# How long a read or write that does not wait for the move gets to show it: an upper bound
# for this test to see the old behaviour, never a speed the test asserts.
UNGUARDED_SECONDS = 3.0


def _inline(target: str, content: str) -> dict[str, Any]:
    return {"type": "inline", "content": content, "target": target}


async def test_files_read_and_written_while_a_pooled_sandbox_moves_them_land_on_its_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not await asyncio.to_thread(disk.supported):
        pytest.skip("no quota disks here (needs root, loop devices and mkfs.ext4)")
    config = GatewayConfig(data_dir=tmp_path, warm_pool_size=1)
    store = Store(tmp_path)
    await store.open()
    environments = EnvironmentManager(tmp_path, store)
    resume = threading.Event()
    pool = WarmPool(size=1, base_dir=tmp_path / "sandboxes")
    live = LiveSandboxes(config, pool_factory=lambda: pool)
    environments.live = live
    try:
        await pool.wait_ready("auto", live.limits)
        notes = _inline("/workspace/notes/readme.md", "# Project Notes\n")
        env_id = (await environments.create({"type": "remote", "sources": [notes]}))["id"]

        # Hold the hand-over at its bind mount: the root's files are aside, the disk not
        # yet over the root (the order of events of an agent turn that ends before the
        # sandbox it started in the background is ready, followed by a download).
        loop = asyncio.get_running_loop()
        moving = asyncio.Event()
        real_run = disk._run

        def run_paused_at_the_bind_mount(*argv: str) -> None:
            if argv[1:2] == ("--bind",):
                loop.call_soon_threadsafe(moving.set)
                resume.wait(120)
            real_run(*argv)

        monkeypatch.setattr(disk, "_run", run_paused_at_the_bind_mount)
        acquiring = asyncio.ensure_future(live.acquire(env_id, environments.root(env_id)))
        paused = asyncio.ensure_future(moving.wait())
        await asyncio.wait({acquiring, paused}, return_when=asyncio.FIRST_COMPLETED)
        assert moving.is_set(), "the sandbox did not take the pool's kernel"

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
        await live.close()
        await pool.close()
        await store.close()
