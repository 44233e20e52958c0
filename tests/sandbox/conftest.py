"""Sandbox fixtures: every implementation is built by id, so one suite runs against all.

To plug a new implementation into the conformance suite, add one entry to SANDBOXES: an id
and a maker `(request, root, limits) -> Sandbox` (not started; call pytest.skip inside it
when it cannot run here), then subclass `conformance.SandboxConformance` in a test module
with `sandbox_ids = ["your-id"]`. Without `sandbox_ids`, a test module or class runs
against every id.

Tests that use these fixtures run in the session's event loop (the conformance class carries
`pytest.mark.asyncio(loop_scope="session")`), because the local kernels come from a warm pool
shared by the whole session; async fixtures they use need `loop_scope="session"` too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from tests.sandbox.jupyter_servers import jupyter_maker  # remote sandboxes on real loopback servers

from jupyter_interactions.sandbox.base import Limits, Sandbox
from jupyter_interactions.sandbox.disk import DiskQuotas
from jupyter_interactions.sandbox.pool import WarmPool

SandboxMaker = Callable[[pytest.FixtureRequest, Path, Limits], Sandbox]
SandboxFactory = Callable[..., Awaitable[Sandbox]]

# Small enough that hostile tests end fast, large enough for a kernel and matplotlib.
TEST_LIMITS = Limits(
    cpu_seconds=3,
    memory_bytes=1024**3,
    file_bytes=8 * 1024**2,
    processes=64,
    wall_seconds=30.0,
    disk_bytes=256 * 1024**2,
)


# How long an interrupt may take before the kernel is restarted: long, as a loaded machine
# needs, since these tests check that it takes (those of a restart set their own).
GRACE = 120.0


def _local(tier: str) -> SandboxMaker:
    def make(request: pytest.FixtureRequest, root: Path, limits: Limits) -> Sandbox:
        from jupyter_interactions.sandbox.isolation import available_tiers
        from jupyter_interactions.sandbox.local import LocalSandbox

        if tier not in available_tiers():
            pytest.skip(f"isolation tier {tier!r} does not work on this machine")
        pool = request.getfixturevalue("warm_pool")
        disks = request.getfixturevalue("disk_quotas")
        return LocalSandbox(
            root=root, limits=limits, tier=tier, pool=pool, disks=disks, interrupt_grace=GRACE
        )

    return make


SANDBOXES: dict[str, SandboxMaker] = {
    "local-bubblewrap": _local("bubblewrap"),
    "local-landlock": _local("landlock"),
    "local-limits": _local("limits"),
    "jupyter-server": jupyter_maker("jupyter-server"),
    "kernel-gateway": jupyter_maker("kernel-gateway"),
}
LOCAL_IDS = [name for name in SANDBOXES if name.startswith("local-")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sandbox_id" in metafunc.fixturenames:
        ids = getattr(metafunc.cls, "sandbox_ids", None)
        ids = ids or getattr(metafunc.module, "sandbox_ids", None) or list(SANDBOXES)
        metafunc.parametrize("sandbox_id", ids)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def warm_pool(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WarmPool]:
    """Started local kernels for the whole session; filled on first use of each tier."""
    pool = WarmPool(size=2, base_dir=tmp_path_factory.mktemp("warm"))
    yield pool
    await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def disk_quotas() -> AsyncIterator[DiskQuotas]:
    """Keeps the quota disks of a test's local sandboxes mounted, as the gateway does for
    its environments; unmounted at the end of the test, after its sandboxes stopped."""
    disks = DiskQuotas()
    yield disks
    await disks.close()


@pytest_asyncio.fixture(loop_scope="session")
async def sandbox_factory(
    request: pytest.FixtureRequest,
    sandbox_id: str,
    tmp_path: Path,
    warm_pool: WarmPool,
    disk_quotas: DiskQuotas,
) -> AsyncIterator[SandboxFactory]:
    """`await sandbox_factory(root=None, limits=None, start=True)`; all stopped at teardown."""
    make = SANDBOXES[sandbox_id]
    made: list[Sandbox] = []

    async def factory(
        root: Path | None = None, limits: Limits | None = None, start: bool = True
    ) -> Sandbox:
        sandbox = make(request, root or tmp_path / f"env{len(made)}", limits or TEST_LIMITS)
        made.append(sandbox)
        if start:
            await sandbox.start()
        return sandbox

    yield factory
    for sandbox in made:
        await sandbox.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """A started sandbox of the parametrized kind."""
    return await sandbox_factory()
