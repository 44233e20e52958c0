"""The warm pool: a new sandbox takes a started kernel, re-rooted at its environment."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jupyter_interactions.sandbox.isolation import available_tiers
from jupyter_interactions.sandbox.local import LocalSandbox
from jupyter_interactions.sandbox.pool import WarmPool


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[WarmPool]:
    warm = WarmPool(size=1, base_dir=tmp_path)
    yield warm
    await warm.close()


@pytest.mark.parametrize("tier", ["bubblewrap", "landlock", "limits"])
async def test_first_step_from_the_pool_is_fast_and_sees_the_environment(
    pool: WarmPool, tmp_path: Path, tier: str
) -> None:
    if tier not in available_tiers():
        pytest.skip(f"isolation tier {tier!r} does not work on this machine")
    await pool.wait_ready(tier)
    root = tmp_path / "env"
    (root / "workspace").mkdir(parents=True)
    (root / "workspace" / "given.txt").write_text("from the gateway")
    (root / "notes.md").write_text("kept")
    sandbox = LocalSandbox(root=root, tier=tier, pool=pool)
    started = time.perf_counter()
    await sandbox.start()
    try:
        result = await sandbox.run(
            "print(open('given.txt').read())\nopen('made.txt', 'w').write('1')"
        )
        first_step = time.perf_counter() - started
        assert result.stdout == "from the gateway\n", result.text()
        # Generous bound for a loaded CI machine; the benchmark measures the real figure.
        assert first_step < 1.0
        assert await sandbox.files.read("workspace/made.txt") == b"1"
        assert await sandbox.files.read("notes.md") == b"kept"
        assert sandbox.isolation == tier
        outside = tmp_path / "outside.txt"
        escape = await sandbox.run(f"open({str(outside)!r}, 'w').write('x')")
        if tier != "limits":
            assert escape.error is not None and not outside.exists()
        # The pool refills itself for the next sandbox.
        await pool.wait_ready(tier)
        second = LocalSandbox(root=tmp_path / "env2", tier=tier, pool=pool)
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
