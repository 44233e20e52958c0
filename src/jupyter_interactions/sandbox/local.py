"""`LocalSandbox`: a stateful Jupyter kernel on this machine, in the strongest isolation tier.

Each sandbox owns an `IsolatedKernel`: a kernel launched through the tier's launcher in a
private runtime directory, running as a uid of its own when the gateway is root (so NPROC
holds and a sweep of that uid removes every process it left). Code runs with its working
directory at `<root>/workspace`. A run that outlives its timeout is interrupted by message;
if that does not take, the kernel is restarted and the result says the state was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import SandboxError, UnsupportedError
from . import kernel_helper
from .base import (
    WORKSPACE,
    FileInfo,
    Limits,
    OutputCallback,
    RunError,
    RunResult,
    Sandbox,
    check_variables_set,
)
from .directory import DirectoryFiles
from .egress import Allowlist, EgressProxy
from .isolation import Identity, Layout, choose_tier, tier_warnings, write_plan
from .kernel import KernelDied, KernelRunner

if TYPE_CHECKING:
    from .pool import WarmPool

__all__ = ["IsolatedKernel", "LocalSandbox"]

INTERRUPT_GRACE_SECONDS = 3.0
EGRESS_SOCKET = "egress.sock"  # in the runtime directory, which the sandbox sees at the same path
_UID_BASE = 1_100_000  # far above any uid a distribution hands out
_UID_SPAN = 1 << 20


def _new_identity() -> Identity:
    if os.geteuid() != 0:
        return Identity()
    uid = _UID_BASE + secrets.randbelow(_UID_SPAN)
    return Identity(uid=uid, gid=uid)


def _chown_tree(path: Path, identity: Identity) -> None:
    """Hand a directory tree to the sandbox's uid (root only; a no-op otherwise)."""
    if not identity.switches:
        return
    uid, gid = identity.uid, identity.gid
    assert uid is not None and gid is not None
    os.lchown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


class _OwnedFiles(DirectoryFiles):
    """DirectoryFiles whose writes belong to the sandbox's uid, so its code can edit them."""

    def __init__(self, root: Path, identity: Identity) -> None:
        super().__init__(root)
        self.identity = identity

    def _write(self, path: str, data: bytes) -> FileInfo:
        info = super()._write(path, data)
        if self.identity.switches:
            real_root = self.root.resolve()
            target = real_root / info.path
            for item in [target, *target.parents]:
                if item == real_root or real_root not in item.parents:
                    break
                os.lchown(item, self.identity.uid or 0, self.identity.gid or 0)
                if item != target:
                    item.chmod(0o755)
            target.chmod(0o644)
        return info


@dataclass
class IsolatedKernel:
    """A started kernel in one tier: its layout, identity and runner. Pools hold these."""

    tier: str
    limits: Limits
    identity: Identity
    layout: Layout
    runner: KernelRunner
    variables: dict[str, str] = field(default_factory=dict)  # set again after a restart
    egress_socket: str | None = None  # relayed again after a restart

    @classmethod
    async def launch(cls, tier: str, root: Path, limits: Limits) -> IsolatedKernel:
        identity = _new_identity()
        layout = await asyncio.to_thread(_prepare_layout, root, identity)
        argv = await asyncio.to_thread(write_plan, tier, layout, limits, identity)

        def before_launch() -> None:
            _chown_tree(layout.connection_file, identity)

        runner = KernelRunner(
            argv,
            connection_file=layout.connection_file,
            socket_prefix=layout.socket_prefix,
            log_file=layout.log_file,
            cwd=layout.runtime,
            before_launch=before_launch,
        )
        kernel = cls(tier, limits, identity, layout, runner)
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
        self.runner.argv = write_plan(self.tier, self.layout, self.limits, self.identity)

    def kernel_pid(self) -> int | None:
        """The kernel's pid on this host (inside bubblewrap, a grandchild of bwrap)."""
        pid = self.runner.pid
        if pid is None or self.tier != "bubblewrap":
            return pid
        queue = [pid]
        while queue:
            current = queue.pop()
            try:
                cmdline = Path(f"/proc/{current}/cmdline").read_bytes()
                children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            except OSError:
                continue
            if b"ipykernel_launcher" in cmdline and current != pid:
                return current
            queue.extend(int(child) for child in children)
        return None

    def renew_cpu_budget(self) -> None:
        """RLIMIT_CPU counts a process's whole life: grant each run its own budget."""
        pid = self.kernel_pid()
        if pid is None:
            return
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            used = -(-ticks // os.sysconf("SC_CLK_TCK"))  # rounded up: never less than a budget
            budget = used + self.limits.cpu_seconds
            _, hard = resource.prlimit(pid, resource.RLIMIT_CPU)
            if self.identity.switches:
                hard = budget + 1
            resource.prlimit(pid, resource.RLIMIT_CPU, (min(budget, hard), hard))
        except (OSError, ValueError, IndexError):
            pass  # the kernel is gone; the run reports that

    async def sweep(self) -> None:
        """Kill every process the sandbox left, even ones that left its process group."""
        if self.identity.switches:
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
        else:
            pid = self.runner.pid
            if pid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)

    async def restart(self) -> None:
        await self.sweep()
        await self.runner.restart()
        setup = kernel_helper.setup_code(self.variables, self.egress_socket)
        await self.runner.execute(setup, silent=True)

    async def destroy(self) -> None:
        await self.sweep()
        await self.runner.shutdown()
        await self.sweep()
        await asyncio.to_thread(shutil.rmtree, self.layout.runtime, True)


def _prepare_layout(root: Path, identity: Identity) -> Layout:
    root.mkdir(parents=True, exist_ok=True)
    (root / WORKSPACE).mkdir(exist_ok=True)
    runtime = Path(os.path.realpath(tempfile.mkdtemp(prefix="ji-sandbox-")))
    layout = Layout(root=root, runtime=runtime)
    layout.home.mkdir()
    layout.tmp.mkdir()
    _chown_tree(root, identity)
    _chown_tree(runtime, identity)
    return layout


def _death_note(kernel: IsolatedKernel, returncode: int | None) -> RunError:
    signals = {signal.SIGXCPU: "its CPU time limit", signal.SIGKILL: "a kill (e.g. memory)"}
    cause = "an unexpected exit"
    if returncode is not None:
        number = -returncode if returncode < 0 else returncode - 128
        if number in signals:
            cause = signals[signal.Signals(number)]
        if number == signal.SIGXCPU:
            cause = f"its CPU time limit ({kernel.limits.cpu_seconds} s)"
    return RunError(
        name="KernelDied",
        value=f"the sandbox kernel was stopped by {cause}; it was restarted and its "
        "variables are lost",
    )


class LocalSandbox(Sandbox):
    """A stateful kernel sandbox on this machine. `tier`: "auto" (strongest available),
    "bubblewrap", "landlock" or "limits". `pool`: a WarmPool to take a started kernel from."""

    kind = "local"

    def __init__(
        self,
        *,
        root: Path | None = None,
        limits: Limits | None = None,
        tier: str = "auto",
        pool: WarmPool | None = None,
        interrupt_grace: float = INTERRUPT_GRACE_SECONDS,
        **options: Any,
    ) -> None:
        super().__init__(root=Path(root) if root is not None else None, limits=limits, **options)
        self.tier = tier
        self.pool = pool
        self.interrupt_grace = interrupt_grace
        self.kernel: IsolatedKernel | None = None
        self.egress: EgressProxy | None = None
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
            self.root = Path(tempfile.mkdtemp(prefix="ji-env-"))
            self._own_root = True
        kernel = None
        if self.pool is not None:
            kernel = await self.pool.take(tier, self.limits, self.root)
        if kernel is None:
            kernel = await IsolatedKernel.launch(tier, self.root, self.limits)
        self.kernel = kernel
        self.isolation = tier
        self.warnings = tier_warnings(tier)
        self.files = _OwnedFiles(self.root, kernel.identity)
        self._stopped = False

    def _require_kernel(self) -> IsolatedKernel:
        if self.kernel is None:
            raise SandboxError("the sandbox is not started; call `await sandbox.start()` first")
        return self.kernel

    async def run(
        self,
        code: str,
        *,
        language: Literal["python", "bash"] = "python",
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> RunResult:
        kernel = self._require_kernel()
        code = kernel_helper.code_for(code, language)
        limit = timeout if timeout is not None else self.limits.wall_seconds
        async with self._lock:
            kernel.renew_cpu_budget()
            task = asyncio.ensure_future(kernel.runner.execute(code, on_output=on_output))
            try:
                return await asyncio.wait_for(asyncio.shield(task), limit)
            except TimeoutError:
                return await self._stop_overrun(kernel, task, limit)
            except KernelDied as died:
                return await self._recover(kernel, died)
            except asyncio.CancelledError:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await kernel.runner.interrupt()
                raise

    async def _stop_overrun(
        self, kernel: IsolatedKernel, task: asyncio.Future[RunResult], limit: float
    ) -> RunResult:
        await kernel.runner.interrupt()
        try:
            result = await asyncio.wait_for(asyncio.shield(task), self.interrupt_grace)
        except (TimeoutError, KernelDied):
            task.cancel()
            await kernel.restart()
            return RunResult(
                stderr=f"[the run exceeded {limit:g} s and did not stop when interrupted: "
                "the kernel was restarted and its variables are lost]\n",
                timed_out=True,
            )
        result.timed_out = True
        result.error = None  # the KeyboardInterrupt is ours, not the code's
        return result

    async def _recover(self, kernel: IsolatedKernel, died: KernelDied) -> RunResult:
        process = getattr(kernel.runner.manager.provisioner, "process", None)
        returncode = process.poll() if process is not None else None
        result = died.partial or RunResult()
        result.error = _death_note(kernel, returncode)
        await kernel.restart()
        return result

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
            await asyncio.to_thread(shutil.rmtree, self.root, True)
