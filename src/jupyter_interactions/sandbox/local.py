"""`LocalSandbox`: a stateful Jupyter kernel on this machine, in the strongest isolation tier.

Each sandbox owns an `IsolatedKernel` (`isolated.py`). Code runs with its working directory
at `<root>/workspace`. Limits hold for the whole sandbox where the machine allows: a cgroup
for memory, processes and the CPU time of each run, and a quota disk for the files (see
`enforcement.py`; `warnings` names any that hold only per process). A run that crosses one
is stopped with every process of the sandbox, and the kernel restarts; a run that outlives
its timeout is interrupted by message, the processes it started are killed, and if the
interrupt does not take the kernel is restarted. Each result says when variables were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SandboxError, UnsupportedError
from . import disk, kernel_helper
from .base import (
    CodeRun,
    Limits,
    RunError,
    RunResult,
    Sandbox,
    check_variables_set,
)
from .cgroups import detect
from .directory import DirectoryFiles
from .egress import Allowlist, EgressProxy
from .enforcement import Enforcement, crossed_note, size
from .isolated import IsolatedKernel
from .isolation import choose_tier, tier_warnings
from .kernel import KernelDied
from .watch import LimitWatch

if TYPE_CHECKING:
    from .pool import WarmPool

__all__ = ["LocalSandbox"]

INTERRUPT_GRACE_SECONDS = 3.0
EGRESS_SOCKET = "egress.sock"  # in the runtime directory, which the sandbox sees at the same path


def _death_note(kernel: IsolatedKernel, returncode: int | None) -> RunError:
    signals = {signal.SIGXCPU: "its CPU time limit", signal.SIGKILL: "a kill"}
    cause = "an unexpected exit"
    if returncode is not None:
        number = -returncode if returncode < 0 else returncode - 128
        if number in signals:
            cause = signals[signal.Signals(number)]
        if number == signal.SIGXCPU:
            cause = f"its CPU time limit ({kernel.limits.cpu_seconds} CPU-seconds per run)"
    return RunError(
        name="KernelDied",
        value=f"the sandbox kernel was stopped by {cause}; it was restarted and its "
        "variables are lost",
    )


class LocalSandbox(Sandbox):
    """A stateful kernel sandbox on this machine. `tier`: "auto" (strongest available),
    "bubblewrap", "landlock" or "limits". `pool`: a WarmPool to take a started kernel from.
    `disks`: the DiskQuotas that keeps a given root's quota disk mounted after this sandbox
    stops (the gateway's, for its environments); without it, only a temporary root (no
    `root`) gets a quota disk, and a given root's files are counted after each run."""

    kind = "local"

    def __init__(
        self,
        *,
        root: Path | None = None,
        limits: Limits | None = None,
        tier: str = "auto",
        pool: WarmPool | None = None,
        disks: disk.DiskQuotas | None = None,
        interrupt_grace: float = INTERRUPT_GRACE_SECONDS,
        **options: Any,
    ) -> None:
        super().__init__(root=Path(root) if root is not None else None, limits=limits, **options)
        self.tier = tier
        self.pool = pool
        self.disks = disks
        self.interrupt_grace = interrupt_grace
        self.kernel: IsolatedKernel | None = None
        self.egress: EgressProxy | None = None
        self.enforcement: Enforcement | None = None
        self._own_root = False
        self._lock = asyncio.Lock()
        self._stopped = False

    def __repr__(self) -> str:
        return f"LocalSandbox(root={str(self.root)!r}, isolation={self.isolation!r})"

    async def start(self) -> None:
        if self.kernel is not None:
            return
        tier = choose_tier(self.tier)
        if self.root is None:
            # Named after this process, as its cgroups are: whose leftover it is shows.
            self.root = Path(tempfile.mkdtemp(prefix=f"ji-env-{os.getpid()}-"))
            self._own_root = True
            if self.disks is None:
                self.disks = disk.DiskQuotas()
        quota = (
            self.disks is not None
            and self.limits.disk_bytes > 0
            and await asyncio.to_thread(disk.supported)  # probed once: a mount, off the loop
        )
        kernel = None
        if self.pool is not None:
            kernel = await self.pool.take(tier, self.limits, self.root, self.disks)
        if kernel is None:
            if quota and self.disks is not None:
                await self.disks.attach(self.root, self.limits.disk_bytes)
            kernel = await IsolatedKernel.launch(tier, self.root, self.limits)
        self.kernel = kernel
        self.isolation = tier
        self.enforcement = Enforcement(
            tier, detect() if kernel.cgroup is not None else None, disk.is_disk(self.root)
        )
        self.warnings = tier_warnings(tier) + self.enforcement.warnings(self.limits)
        self.files = DirectoryFiles(self.root)  # writes go to the root's owner: the sandbox's uid
        self._stopped = False

    def _require_kernel(self) -> IsolatedKernel:
        if self.kernel is None:
            raise SandboxError("the sandbox is not started; call `await sandbox.start()` first")
        return self.kernel

    async def _run(self, run: CodeRun) -> RunResult:
        kernel = self._require_kernel()
        code = kernel_helper.code_for(run.code, run.language)
        async with self._lock:
            refusal = await self._over_disk_quota()
            if refusal is not None:
                return RunResult(error=refusal)
            watch = None
            if kernel.cgroup is not None and kernel.cgroup.directories.get("cpu"):
                watch = LimitWatch(kernel.cgroup, self.limits.cpu_seconds, kernel.oom)
            else:
                await kernel.renew_cpu_budget()
            try:
                result = await self._watched_run(kernel, code, run, watch)
            finally:
                if watch is not None:
                    watch.close()
            if result.error is None:
                result.error = await self._over_disk_quota()
            return result

    async def _watched_run(
        self, kernel: IsolatedKernel, code: str, run: CodeRun, watch: LimitWatch | None
    ) -> RunResult:
        """`run`, its code as the kernel runs it (`code`), until it ends, times out or
        crosses a limit that `watch` watches."""
        task = asyncio.ensure_future(kernel.runner.execute(code, on_output=run.on_output))
        waiting: set[asyncio.Future[Any]] = {task}
        if watch is not None:
            waiting.add(watch.crossed)
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=run.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await kernel.runner.interrupt()
            raise
        crossed = watch.crossed_after_run() if watch is not None and done else None
        if crossed is not None:
            return await self._end_by_limit(kernel, task, crossed)
        if task not in done:
            return await self._stop_overrun(kernel, task, run.timeout)
        try:
            return task.result()
        except KernelDied as died:
            return await self._recover(kernel, died)

    async def _end_by_limit(
        self, kernel: IsolatedKernel, task: asyncio.Future[RunResult], limit: str
    ) -> RunResult:
        """The run crossed a sandbox limit: stop every process, restart the kernel."""
        await kernel.sweep()
        try:
            result = await task
        except KernelDied as died:
            result = died.partial or RunResult()
        result.error = RunError("KernelDied", crossed_note(limit, self.limits))
        await self._restart(kernel)
        return result

    async def _stop_overrun(
        self, kernel: IsolatedKernel, task: asyncio.Future[RunResult], limit: float
    ) -> RunResult:
        await kernel.runner.interrupt()
        try:
            result = await asyncio.wait_for(asyncio.shield(task), self.interrupt_grace)
        except (TimeoutError, KernelDied):
            task.cancel()
            await self._restart(kernel)
            return RunResult(
                error=RunError(
                    "KernelRestarted",
                    f"the run exceeded {limit:g} s and did not stop when interrupted: the "
                    "kernel was restarted and its variables are lost",
                ),
                timed_out=True,
            )
        await kernel.kill_below_kernel()  # what the run started ends with it
        result.timed_out = True
        result.error = None  # the KeyboardInterrupt is ours, not the code's
        return result

    async def _recover(self, kernel: IsolatedKernel, died: KernelDied) -> RunResult:
        process = getattr(kernel.runner.manager.provisioner, "process", None)
        returncode = process.poll() if process is not None else None
        result = died.partial or RunResult()
        result.error = _death_note(kernel, returncode)
        await self._restart(kernel)
        return result

    async def _restart(self, kernel: IsolatedKernel) -> None:
        self.restarts += 1
        await kernel.restart()

    async def _over_disk_quota(self) -> RunError | None:
        """Where no quota disk holds the files: a refusal while they take more than the
        quota (counted now), else None."""
        if self.root is None or (self.enforcement is not None and self.enforcement.disk_quota):
            return None
        used = await asyncio.to_thread(disk.usage_bytes, self.root)
        if used <= self.limits.disk_bytes:
            return None
        return RunError(
            "DiskQuotaExceeded",
            f"the environment's files take {size(used)}, more than its disk quota of "
            f"{size(self.limits.disk_bytes)}; this sandbox cannot stop writes as they happen, "
            "so it runs no more code until files are removed from the environment",
        )

    async def set_variables(self, variables: Mapping[str, str]) -> None:
        kernel = self._require_kernel()
        async with self._lock:
            result = await kernel.runner.execute(
                kernel_helper.variables_code(variables), silent=True
            )
        check_variables_set(result)
        kernel.variables.update(variables)
        self.variables.update(variables)

    @classmethod
    def allowlist_refusal(cls, options: Mapping[str, Any]) -> str | None:
        tier = choose_tier(str(options.get("tier", "auto")))
        if tier == "bubblewrap":
            return None
        return (
            f"a network allowlist needs the bubblewrap tier (a network namespace of the "
            f"sandbox's own); here local sandboxes run in the {tier!r} tier, which shares the "
            "host's network: install bubblewrap (with user namespaces enabled)"
        )

    async def allow_network(self, allowlist: Allowlist | None) -> None:
        kernel = self._require_kernel()
        if self.egress is not None:
            self.egress.allowlist = allowlist or Allowlist(())
            self.allowlist = allowlist
            return
        if allowlist is None:
            return
        refusal = self.allowlist_refusal({"tier": self.isolation})
        if refusal:
            raise UnsupportedError(refusal)
        proxy = EgressProxy(kernel.layout.runtime / EGRESS_SOCKET, allowlist, kernel.identity.uid)
        await proxy.start()
        try:
            async with self._lock:
                socket_path = str(proxy.socket_path)
                result = await kernel.runner.execute(
                    kernel_helper.egress_code(socket_path), silent=True
                )
            if result.error is not None:
                raise SandboxError(f"could not open the sandbox's egress: {result.error.value}")
        except BaseException:
            await proxy.close()
            raise
        kernel.egress_socket = socket_path
        self.egress = proxy
        self.allowlist = allowlist

    async def interrupt(self) -> None:
        await self._require_kernel().runner.interrupt()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        egress, self.egress = self.egress, None
        if egress is not None:
            await egress.close()
        kernel, self.kernel = self.kernel, None
        if kernel is not None:
            await kernel.destroy()
        if self._own_root and self.root is not None:
            if self.disks is not None:
                await self.disks.remove(self.root)
            await asyncio.to_thread(shutil.rmtree, self.root, True)
