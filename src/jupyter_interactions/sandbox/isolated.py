"""`IsolatedKernel`: one local sandbox kernel, launched in a tier, with its cgroup and its
processes: start, restart, the processes it has, and killing them.

The kernel runs under the launcher's supervisor (the process jupyter_client started), in a
private runtime directory, as a uid of its own when the gateway is root (so NPROC holds and
a sweep of that uid removes every process it left), and in a cgroup of its own where the
machine allows (`cgroups.py`). Pools hold these, so the cgroup and the runtime directory
follow the kernel from a pool's slot to the sandbox that takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import kernel_helper
from .base import WORKSPACE, Limits
from .cgroups import OomNotifier, SandboxCgroup, detect
from .isolation import Identity, Layout, launch_plan
from .kernel import KernelRunner

__all__ = ["IsolatedKernel"]

_UID_BASE = 1_100_000  # far above any uid a distribution hands out
_UID_SPAN = 1 << 20
SWEEP_SECONDS = 10.0  # for the supervisor to kill and reap everything


def _new_identity() -> Identity:
    if os.geteuid() != 0:
        return Identity()
    uid = _UID_BASE + secrets.randbelow(_UID_SPAN)
    return Identity(uid=uid, gid=uid)


def _prepare_layout(root: Path, identity: Identity) -> Layout:
    root.mkdir(parents=True, exist_ok=True)
    (root / WORKSPACE).mkdir(exist_ok=True)
    runtime = Path(os.path.realpath(tempfile.mkdtemp(prefix="ji-sandbox-")))
    layout = Layout(root=root, runtime=runtime)
    for directory in layout.home_and_tmp:
        directory.mkdir()
    identity.take(root)
    identity.take(runtime)
    return layout


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(child) for child in text.split())
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of each of its threads, recursively)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        children = _children(queue.pop())
        found.extend(children)
        queue.extend(children)
    return found


def _living(pids: list[int]) -> list[int]:
    """Those not dead already (a zombie waits for its parent to reap it)."""
    living = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            living.append(pid)
    return living


@dataclass
class IsolatedKernel:
    """A started kernel in one tier: its layout, identity, cgroup and runner."""

    tier: str
    limits: Limits
    identity: Identity
    layout: Layout
    runner: KernelRunner
    cgroup: SandboxCgroup | None = None
    oom: OomNotifier | None = None
    variables: dict[str, str] = field(default_factory=dict)  # set again after a restart
    egress_socket: str | None = None  # relayed again after a restart

    @classmethod
    async def launch(
        cls, tier: str, root: Path, limits: Limits, use_cgroups: bool = True
    ) -> IsolatedKernel:
        identity = _new_identity()
        # Probed once (and stale cgroups of dead gateways removed): off the event loop.
        support = await asyncio.to_thread(detect) if use_cgroups else None
        cgroup = None
        if support is not None:
            cgroup = await asyncio.to_thread(
                SandboxCgroup.create, support, limits.memory_bytes, limits.processes
            )
        try:
            layout = await asyncio.to_thread(_prepare_layout, root, identity)
        except BaseException:
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)
            raise
        procs = cgroup.procs_files if cgroup is not None else None
        plan = await asyncio.to_thread(launch_plan, tier, layout, limits, identity, procs)
        runner = KernelRunner(plan, runtime=layout.runtime)
        kernel = cls(tier, limits, identity, layout, runner, cgroup)
        if cgroup is not None:
            kernel.oom = cgroup.oom_notifier()
        try:
            await runner.start()
            await runner.execute(kernel_helper.install_code(), silent=True)
        except BaseException:
            await kernel.destroy()
            raise
        return kernel

    def relocate(self, root: Path) -> None:
        """Record that the environment directory is now at `root` (a restart relaunches
        there); the running kernel follows the directory itself."""
        self.layout = Layout(root=root, runtime=self.layout.runtime)
        procs = self.cgroup.procs_files if self.cgroup is not None else None
        self.runner.plan = launch_plan(self.tier, self.layout, self.limits, self.identity, procs)

    async def move_to(self, root: Path) -> None:
        """`relocate`, for a kernel whose directory was bound onto `root` rather than
        renamed: outside bubblewrap (whose /sandbox stays bound) it changes directory."""
        self.relocate(root)
        if self.tier != "bubblewrap":
            workspace = str(self.layout.workspace)
            await self.runner.execute(f"__import__('os').chdir({workspace!r})", silent=True)

    def kernel_pid(self) -> int | None:
        """The kernel's pid on this host: below the supervisor (and bubblewrap)."""
        supervisor = self.runner.pid
        if supervisor is None:
            return None
        for pid in descendants(supervisor):
            try:
                if b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
        return None

    async def renew_cpu_budget(self) -> None:
        """Without a cgroup to watch, RLIMIT_CPU is the budget, and it counts a process's
        whole life: the kernel grants itself the run's budget from what it has used so far
        (it may raise its own soft limit up to the hard one; the gateway may not, unless it
        runs as the same uid)."""
        budget = kernel_helper.cpu_budget_code(self.limits.cpu_seconds)
        await self.runner.execute(budget, silent=True)

    async def kill_below_kernel(self) -> None:
        """Kill every process the kernel started, and reap them, keeping the kernel."""
        pid = self.kernel_pid()
        if pid is None:
            return
        for _ in range(100):  # until a pass finds none: forks may race the first passes
            found = _living(descendants(pid))
            if not found:
                break
            for process in found:
                with contextlib.suppress(OSError):
                    os.kill(process, signal.SIGKILL)
            await asyncio.sleep(0.005)
        with contextlib.suppress(BaseException):
            await self.runner.execute(kernel_helper.reap_code(), silent=True)

    async def sweep(self) -> None:
        """Kill every process of the sandbox, the kernel included, and wait until the
        supervisor has reaped them all and exited."""
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.kill)
        supervisor = self.runner.pid
        if supervisor is not None and self.runner.alive:
            with contextlib.suppress(OSError):
                os.kill(supervisor, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.runner.exited(), SWEEP_SECONDS)
        if self.cgroup is None and self.identity.switches:
            await self._kill_uid()

    async def _kill_uid(self) -> None:
        # kill(-1) from the sandbox's own uid reaches exactly that uid's processes.
        with contextlib.suppress(OSError):
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                "kill -9 -1",
                user=self.identity.uid,
                group=self.identity.gid,
                extra_groups=[],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await process.wait()

    async def restart(self) -> None:
        await self.sweep()
        await self.runner.restart()
        setup = kernel_helper.setup_code(self.variables, self.egress_socket)
        await self.runner.execute(setup, silent=True)

    async def destroy(self) -> None:
        await self.sweep()
        await self.runner.shutdown()
        if self.oom is not None:
            self.oom.close()
            self.oom = None
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.remove)
        await asyncio.to_thread(shutil.rmtree, self.layout.runtime, True)
