"""The warm pool: a new sandbox takes a started kernel, re-rooted at its environment (on the
environment's quota disk where sandboxes get one), and the pool refills itself."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jupyter_interactions.sandbox import disk
from jupyter_interactions.sandbox.disk import DiskQuotas
from jupyter_interactions.sandbox.isolation import available_tiers
from jupyter_interactions.sandbox.local import LocalSandbox
from jupyter_interactions.sandbox.pool import WarmPool


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[WarmPool]:
    warm = WarmPool(size=1, base_dir=tmp_path)
    yield warm
    await warm.close()


@pytest.fixture
async def disks() -> AsyncIterator[DiskQuotas]:
    quotas = DiskQuotas()
    yield quotas
    await quotas.close()


@pytest.mark.parametrize("tier", ["bubblewrap", "landlock", "limits"])
async def test_a_new_sandbox_takes_the_pools_kernel_and_sees_the_environment(
    pool: WarmPool, disks: DiskQuotas, tmp_path: Path, tier: str
) -> None:
    if tier not in available_tiers():
        pytest.skip(f"isolation tier {tier!r} does not work on this machine")
    await pool.wait_ready(tier)
    pooled = pool.ready(tier)[0]
    root = tmp_path / "env"
    (root / "workspace").mkdir(parents=True)
    (root / "workspace" / "given.txt").write_text("from the gateway")
    (root / "notes.md").write_text("kept")
    # What a sandbox's code may have left (a fork copies it): moved onto the disk as it is.
    os.mkfifo(root / "workspace" / "pipe")
    (root / "workspace" / "alias").symlink_to("given.txt")
    sandbox = LocalSandbox(root=root, tier=tier, pool=pool, disks=disks)
    await sandbox.start()
    try:
        assert (
            sandbox.kernel is pooled
        )  # started before the sandbox was: the first step waits for no start
        assert disk.is_disk(root) == disk.supported()
        result = await sandbox.run(
            "import os\nprint(open('given.txt').read())\nopen('made.txt', 'w').write('1')\n"
            "print(os.path.basename(os.getcwd()))"
        )
        assert result.stdout == "from the gateway\nworkspace\n", result.text()
        assert await sandbox.files.read("workspace/made.txt") == b"1"
        assert await sandbox.files.read("notes.md") == b"kept"
        assert (await sandbox.files.stat("workspace/pipe")).type == "fifo"
        assert (await sandbox.files.stat("workspace/alias")).type == "symlink"
        assert sandbox.isolation == tier
        outside = tmp_path / "outside.txt"
        escape = await sandbox.run(f"open({str(outside)!r}, 'w').write('x')")
        if tier != "limits":
            assert escape.error is not None and not outside.exists()
        # The pool refills itself for the next sandbox, which sees only its own files.
        await pool.wait_ready(tier)
        second = LocalSandbox(root=tmp_path / "env2", tier=tier, pool=pool, disks=disks)
        async with second:
            assert (await second.run("import os; print(os.path.exists('given.txt'))")).stdout == (
                "False\n"
            )
    finally:
        await sandbox.stop()


async def test_without_a_ready_kernel_the_sandbox_starts_cold(tmp_path: Path) -> None:
    pool = WarmPool(size=0, base_dir=tmp_path)
    try:
        async with LocalSandbox(root=tmp_path / "env", pool=pool) as sandbox:
            assert (await sandbox.run("print(1)")).stdout == "1\n"
    finally:
        await pool.close()
