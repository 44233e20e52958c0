"""`KernelRunner`: one Jupyter kernel process, driven asynchronously through jupyter_client.

It starts the sandbox's kernel spec with ipc transport through `provisioner.py` (the
isolation launcher, given the sandbox's launch plan, wraps every start and restart), runs
code with output streamed to a callback, and waits for BOTH the shell `execute_reply` and
the iopub `status: idle`, which arrive in either order. A kernel that dies mid-run (e.g.
killed by its CPU limit) ends the run at once: its exit is watched through a pidfd, not
polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

from ..errors import SandboxError
from .base import OutputCallback, RunResult
from .provisioner import PLAN_ARGUMENT, SPEC_NAME, SandboxKernelSpecs

LOG_TAIL_BYTES = 16384


class KernelDied(SandboxError):
    """The kernel process exited while it was running code; `partial` is what it produced."""

    def __init__(self, message: str, partial: RunResult | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class KernelRunner:
    """Lifecycle (start, restart, shutdown) and use (execute, interrupt) of one kernel.

    Its files (connection file, ipc sockets, log) are kept in `runtime`, a private
    directory of the sandbox's that the launcher starts from (`isolation.Layout`)."""

    def __init__(self, plan: dict[str, Any], *, runtime: Path) -> None:
        self.manager = AsyncKernelManager(
            transport="ipc",
            ip=str(runtime / "k"),  # the sockets: k-1, k-2, ...
            connection_file=str(runtime / "kernel.json"),
            kernel_spec_manager=SandboxKernelSpecs(),
            kernel_name=SPEC_NAME,
        )
        self.plan = plan  # the launcher's; a new one takes effect at the next (re)start
        self._log_path = runtime / "kernel.log"
        self._cwd = runtime
        self._log: Any = None
        self.client: Any = None
        self._exited: asyncio.Future[int] | None = None
        self._pidfd: int | None = None

    @property
    def pid(self) -> int | None:
        provisioner = self.manager.provisioner
        process = getattr(provisioner, "process", None)
        return process.pid if process is not None else None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the kernel's log, read through the file this runner opened, never
        by its path: the sandbox can write to its runtime directory, and a link put there
        could show a host file in an error message."""
        if self._log is None:
            return ""
        descriptor = self._log.fileno()
        end = os.fstat(descriptor).st_size
        start = max(0, end - LOG_TAIL_BYTES)
        text = os.pread(descriptor, end - start, start).decode(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    async def start(self, timeout: float = 60.0) -> None:
        if self._log is None:
            # Opened before the kernel first runs: the path is still ours.
            self._log = open(self._log_path, "a+b")
        await self.manager.start_kernel(
            cwd=str(self._cwd), stdout=self._log, stderr=self._log, **{PLAN_ARGUMENT: self.plan}
        )
        self._watch_exit()
        await self._connect(timeout)

    async def _connect(self, timeout: float) -> None:
        self.client = self.manager.client()
        self.client.start_channels()
        ready = asyncio.ensure_future(self.client.wait_for_ready(timeout=timeout))
        assert self._exited is not None
        done, _ = await asyncio.wait({ready, self._exited}, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            with contextlib.suppress(BaseException):
                await ready
            raise SandboxError(
                "the sandbox kernel exited while starting; its log ends with:\n" + self.log_tail()
            )
        try:
            ready.result()
        except RuntimeError as exc:
            raise SandboxError(
                f"the sandbox kernel did not become ready ({exc}); its log ends with:\n"
                + self.log_tail()
            ) from None

    def _watch_exit(self) -> None:
        """Resolve `_exited` when the kernel process ends (pidfd readable), without polling."""
        self._unwatch_exit()
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[int] = loop.create_future()
        self._exited = exited
        pid = self.pid
        if pid is None:
            return
        pidfd = os.pidfd_open(pid)
        self._pidfd = pidfd

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            if not exited.done():
                exited.set_result(pid)

        loop.add_reader(pidfd, on_exit)

    def _unwatch_exit(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    @property
    def alive(self) -> bool:
        return self._exited is not None and not self._exited.done()

    async def exited(self) -> None:
        """Wait until the kernel's process (its supervisor) has exited."""
        if self._exited is not None:
            await asyncio.shield(self._exited)

    async def execute(
        self, code: str, *, on_output: OutputCallback | None = None, silent: bool = False
    ) -> RunResult:
        """Run code; return when the kernel has replied AND gone idle. Raises KernelDied."""
        result = RunResult()
        msg_id = self.client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False
        )
        got_reply = got_idle = False
        iopub = asyncio.ensure_future(self.client.get_iopub_msg())
        shell = asyncio.ensure_future(self.client.get_shell_msg())
        assert self._exited is not None
        try:
            while not (got_reply and got_idle):
                done, _ = await asyncio.wait(
                    {iopub, shell, self._exited}, return_when=asyncio.FIRST_COMPLETED
                )
                if iopub in done:
                    message = iopub.result()
                    iopub = asyncio.ensure_future(self.client.get_iopub_msg())
                    if message["parent_header"].get("msg_id") == msg_id:
                        got_idle |= result.add_message(
                            message["header"]["msg_type"], message["content"], on_output
                        )
                if shell in done:
                    message = shell.result()
                    shell = asyncio.ensure_future(self.client.get_shell_msg())
                    if message["parent_header"].get("msg_id") == msg_id:
                        got_reply = True
                        result.add_reply(message["content"])
                if self._exited in done and not (got_reply and got_idle):
                    raise KernelDied("the sandbox kernel exited while running code", result)
        finally:
            for pending in (iopub, shell):
                pending.cancel()
        return result

    async def interrupt(self) -> None:
        await self.manager.interrupt_kernel()

    async def restart(self, timeout: float = 60.0) -> None:
        """Kill the kernel and start a fresh one on the same connection file (state lost)."""
        if self.client is not None:
            self.client.stop_channels()
        await self.manager.restart_kernel(now=True, **{PLAN_ARGUMENT: self.plan})
        self._watch_exit()
        await self._connect(timeout)

    async def shutdown(self) -> None:
        """Stop the kernel at once (the sandbox keeps nothing worth a polite shutdown)."""
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        with contextlib.suppress(Exception):
            if self.manager.has_kernel:
                await self.manager.shutdown_kernel(now=True)
        self._unwatch_exit()
        if self._log is not None:
            self._log.close()
            self._log = None
