"""`JupyterSandbox`: the Sandbox contract on a remote kernel, through the REST + websocket API
that Jupyter Server, Kernel Gateway and Enterprise Gateway (kernels as Kubernetes pods) share.

One kernel per sandbox, one persistent websocket to it. Code runs in `<root>/workspace` on
the remote side, where `root` is a directory relative to the server's root_dir.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, ClassVar, Literal

from ..errors import NotFoundError, RequestError, SandboxError, SandboxUnavailable
from . import kernel_helper
from .base import (
    CodeRun,
    Limits,
    OutputCallback,
    RunError,
    RunResult,
    Sandbox,
    SandboxFiles,
    check_variables_set,
    clean_relative,
)
from .jupyter_files import ContentsFiles, KernelFiles
from .jupyter_remote import KernelChannel, KernelLost, ServerAPI, collect_run, kernel_info

__all__ = ["JupyterSandbox"]

log = logging.getLogger(__name__)

_ERRORS_TO_OURS: dict[str, type[Exception]] = {
    "FileNotFoundError": NotFoundError,
    "PermissionError": RequestError,
    "IsADirectoryError": RequestError,
    "NotADirectoryError": RequestError,
}


class JupyterSandbox(Sandbox):
    """A sandbox on a remote Jupyter kernel.

    `url` is the server's base URL; `token` its token (sent as an Authorization header,
    never shown). `root` is the sandbox's directory on the server, relative to the server's
    root_dir (default `interactions/<env_id or a fresh id>`); an absolute local path, as the
    gateway gives every sandbox, stands for `interactions/<its last component>`. `files`
    chooses the file backend: "auto" (the contents API where the server has one), "contents"
    or "kernel" (through code execution, e.g. when jupyter_server forwards kernels to a
    remote gateway and its own contents API is not where they run). `kernel_env` goes with
    the kernel's creation: Kernel Gateway and Enterprise Gateway pass `KERNEL_*` variables to
    the kernel (e.g. KERNEL_NAMESPACE for its Kubernetes pod); jupyter server ignores it.
    """

    kind: ClassVar[str] = "jupyter"

    def __init__(
        self,
        url: str = "http://127.0.0.1:8888/",
        *,
        token: str | None = None,
        kernel_name: str = "python3",
        root: str | PurePath | None = None,
        env_id: str | None = None,
        limits: Limits | None = None,
        headers: dict[str, str] | None = None,
        kernel_env: dict[str, str] | None = None,
        files: Literal["auto", "contents", "kernel"] = "auto",
        start_timeout: float = 120.0,
        request_timeout: float = 60.0,
        interrupt_grace: float = 5.0,
        validate_cert: bool = True,
        **options: Any,
    ) -> None:
        # No local directory backs a remote sandbox: its root lives on the server.
        super().__init__(root=None, limits=limits, **options)
        self.remote_root = _remote_root(root, env_id)
        self.kernel_name = kernel_name
        self.kernel_env = dict(kernel_env or {})
        self.files_mode = files
        self.start_timeout = start_timeout
        self.interrupt_grace = interrupt_grace
        self._api = ServerAPI(
            url,
            token=token,
            headers=headers,
            request_timeout=request_timeout,
            validate_cert=validate_cert,
        )
        self.kernel_id: str | None = None
        self._channel: KernelChannel | None = None
        self._needs_setup = True
        self._known_restarts = 0  # server-side restarts already reported to the user
        self._lock = asyncio.Lock()
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        shown = f"{self._api.shown!r}, root={self.remote_root!r}, kernel={self.kernel_id!r}"
        return f"JupyterSandbox({shown})"

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.kernel_id is not None:
            return
        began = time.perf_counter()
        body: dict[str, Any] = {"name": self.kernel_name, "path": ""}
        if self.kernel_env:  # Kernel Gateway then replaces the kernel's whole environment
            body["env"] = self.kernel_env
        try:
            # Enterprise Gateway answers only once the kernel's pod runs: minutes, at worst.
            model = await self._api.request("POST", "api/kernels", body, timeout=self.start_timeout)
        except (NotFoundError, SandboxError) as exc:
            raise await self._explain_failed_start(exc) from None
        self.kernel_id = model["id"]
        try:
            self._channel = await KernelChannel.connect(
                self._api, self.kernel_id, self.start_timeout
            )
            async with self._lock:
                await self._prepare()
            self.files = await self._choose_files()
        except BaseException:
            await self.stop()
            raise
        self.isolation = "remote"
        self.warnings = [
            "code runs on a remote Jupyter kernel: its isolation and resource limits are the "
            "server's; only the per-run time limit is applied from here"
        ]
        self.timings["start"] = time.perf_counter() - began

    async def _explain_failed_start(self, exc: Exception) -> Exception:
        """Servers answer an unknown kernel name with a bare 404 or 500; say which it was."""
        if isinstance(exc, SandboxUnavailable):
            return exc
        try:
            specs = await self._api.request("GET", "api/kernelspecs")
        except (NotFoundError, SandboxError):
            specs = None
        if not isinstance(specs, dict):
            return SandboxUnavailable(
                f"{self._api.shown} has no kernels API ({exc}); check the URL, including any "
                "base path"
            )
        names = sorted(specs.get("kernelspecs") or {})
        if self.kernel_name not in names:
            return SandboxUnavailable(
                f"{self._api.shown} has no {self.kernel_name!r} kernel; set the kernel_name "
                f"option to one of {names}"
            )
        return exc

    async def stop(self) -> None:
        channel, self._channel = self._channel, None
        kernel_id, self.kernel_id = self.kernel_id, None
        if channel is not None:
            await channel.close()
        if kernel_id is not None:
            try:
                await self._api.request("DELETE", f"api/kernels/{kernel_id}")
            except (SandboxError, NotFoundError) as exc:  # gone already, or the server is
                log.info("could not delete remote kernel %s: %s", kernel_id, exc)
        self._api.close()

    async def interrupt(self) -> None:
        await self._api.request("POST", f"api/kernels/{self._kernel()}/interrupt")

    def _kernel(self) -> str:
        if self.kernel_id is None:
            raise SandboxError("this sandbox is not running; call start() (or use `async with`)")
        return self.kernel_id

    async def _prepare(self) -> None:
        """Wait for a (re)started kernel, install the helper module and move into the
        workspace. Runs at start and before the first run after any restart."""
        await self._wait_ready()
        code = kernel_helper.setup_code(self.variables)
        expressions = {"r": kernel_helper.call("setup", self.remote_root)}
        try:
            _, reply = await asyncio.wait_for(
                self._execute(code, silent=True, expressions=expressions), self.start_timeout
            )
        except asyncio.TimeoutError:
            raise SandboxUnavailable(
                f"the kernel on {self._api.shown} did not answer its setup within "
                f"{self.start_timeout} s; check the server's log"
            ) from None
        self.remote_root_abs = self._expression(reply, "setup")["root"]
        self._needs_setup = False

    async def _wait_ready(self) -> None:
        """Ask for kernel_info until it comes: a request sent while a kernel restarts can be
        lost, so one request with a long wait may never be answered. A websocket the server
        closes meanwhile is reopened while the kernel is still there (a server gives up on a
        slow kernel's socket after its kernel_info_timeout, 60 s by default)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            channel = await self._connected()
            if channel.kernel_state == "dead":
                raise SandboxError(
                    f"the kernel on {self._api.shown} died and the server could not restart "
                    "it; start a new sandbox, and check the server's log"
                )
            exchange = None
            try:
                exchange = channel.request("shell", "kernel_info_request", {})
                await asyncio.wait_for(kernel_info(exchange), min(2.0, self.start_timeout))
                return
            except (asyncio.TimeoutError, KernelLost) as exc:
                if loop.time() >= deadline:
                    raise SandboxUnavailable(
                        f"the {self.kernel_name!r} kernel on {self._api.shown} did not become "
                        f"ready ({exc or 'timed out'}); check that kernel's spec and the "
                        "server's log"
                    ) from None
            finally:
                if exchange is not None:
                    channel.forget(exchange)

    async def _choose_files(self) -> SandboxFiles:
        mode = self.files_mode
        if mode == "auto":
            try:
                await self._api.request("GET", "api/contents", query={"content": "0"})
                mode = "contents"
            except (NotFoundError, SandboxError):
                mode = "kernel"
        if mode == "contents":
            return ContentsFiles(self._call, self._api, self.remote_root)
        if mode == "kernel":
            return KernelFiles(self._call)
        raise RequestError(
            f"files={mode!r} is not a file backend; use 'auto', 'contents' or 'kernel'"
        )

    async def _connected(self) -> KernelChannel:
        """The kernel's websocket, reopened if it dropped between runs (proxies close idle
        sockets; the kernel and its variables live on in the server meanwhile)."""
        kernel_id = self._kernel()
        channel = self._channel
        if channel is not None and channel.lost is None:
            return channel
        if channel is not None:
            await channel.close()
        try:
            channel = await KernelChannel.connect(self._api, kernel_id, self.start_timeout)
        except SandboxUnavailable:
            raise
        except SandboxError:
            try:
                await self._api.request("GET", f"api/kernels/{kernel_id}")
            except NotFoundError:
                raise SandboxUnavailable(
                    f"the remote kernel is gone from {self._api.shown} (shut down, culled "
                    "or the server restarted); start a new sandbox"
                ) from None
            raise
        log.info("reconnected to kernel %s on %s", kernel_id, self._api.shown)
        self._channel, self._known_restarts = channel, 0
        self._needs_setup = True  # it may have restarted while we were away
        return channel

    def _live_channel(self) -> KernelChannel:
        self._kernel()
        if self._channel is None or self._channel.lost is not None:
            raise self._disconnected(self._channel.lost if self._channel else None)
        return self._channel

    def _disconnected(self, exc: Exception | None) -> SandboxUnavailable:
        return SandboxUnavailable(
            f"lost the connection to the kernel on {self._api.shown} ({exc or 'closed'}); the "
            "next run reconnects if the server and the kernel are still up"
        )

    # -- running code ---------------------------------------------------------------------

    async def _run(self, run: CodeRun) -> RunResult:
        code = kernel_helper.code_for(run.code, run.language)
        async with self._lock:
            channel = await self._connected()
            unseen_death = channel.restarts > self._known_restarts
            if self._needs_setup or unseen_death:
                await self._prepare()
            if unseen_death:
                # The kernel died while idle and the server restarted it: say so, as a run
                # that found its kernel dead does, rather than run in a silently fresh kernel.
                self._known_restarts = channel.restarts
                self.restarts += 1
                return RunResult(error=_kernel_died("since the last run"))
            result, _ = await self._execute(code, timeout=run.timeout, on_output=run.on_output)
        return result

    async def set_variables(self, variables: Mapping[str, str]) -> None:
        async with self._lock:
            channel = await self._connected()
            if self._needs_setup or channel.restarts > self._known_restarts:
                # The next run prepares the kernel, and _prepare sets them all.
                self.variables.update(variables)
                return
            result, _ = await self._execute(
                kernel_helper.variables_code(variables), silent=True, timeout=self.start_timeout
            )
        check_variables_set(result)
        self.variables.update(variables)

    async def _execute(
        self,
        code: str,
        *,
        silent: bool = False,
        expressions: dict[str, str] | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> tuple[RunResult, dict[str, Any]]:
        """One execute_request, collected until both its reply and the kernel's idle."""
        result = RunResult()
        reply: dict[str, Any] = {}
        began = time.perf_counter()
        channel = self._live_channel()
        content = {
            "code": code,
            "silent": silent,
            "store_history": not silent,
            "user_expressions": expressions or {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        try:
            exchange = channel.request("shell", "execute_request", content)
        except KernelLost as exc:  # closed just now, before its close callback ran
            raise self._disconnected(exc) from None
        collector = asyncio.ensure_future(collect_run(exchange, result, reply, on_output))
        try:
            try:
                await asyncio.wait_for(asyncio.shield(collector), timeout)
            except asyncio.TimeoutError:
                result.timed_out = True
                if await self._stop_overrun(collector):
                    result.error = None  # the KeyboardInterrupt is ours, not the code's
                else:
                    self.restarts += 1
                    result.error = RunError(
                        "KernelRestarted",
                        f"the run exceeded {timeout:g} s and did not stop when interrupted: "
                        "the kernel was restarted and its variables are lost",
                    )
        except KernelLost as exc:
            self._needs_setup = True
            if self.kernel_id is None:
                raise SandboxError("the sandbox was stopped while this code ran") from None
            if channel.lost is not None:
                raise self._disconnected(exc) from None
            if not exc.restarted:
                raise SandboxError(
                    f"the remote kernel died while running this code and could not be "
                    f"restarted ({exc}); start a new sandbox, and check the server's log"
                ) from None
            # As the local sandbox does: the run's result says so, and the sandbox carries on.
            self._known_restarts = channel.restarts
            self.restarts += 1
            result.error = _kernel_died("while running this code")
        finally:
            collector.cancel()
            channel.forget(exchange)
        self.timings["last_execute"] = time.perf_counter() - began
        return result, reply

    async def _stop_overrun(self, collector: asyncio.Future[None]) -> bool:
        """Interrupt; if the kernel does not come back within the grace, restart it.
        True when the interrupt took (state kept), False when the kernel was restarted."""
        await self.interrupt()
        try:
            await asyncio.wait_for(asyncio.shield(collector), self.interrupt_grace)
            return True
        except asyncio.TimeoutError:
            pass
        log.warning("kernel %s ignored an interrupt; restarting it", self.kernel_id)
        await self._api.request(
            "POST", f"api/kernels/{self._kernel()}/restart", timeout=self.start_timeout
        )
        self._needs_setup = True
        return False

    async def _call(self, function: str, *args: Any) -> Any:
        """Call a function of the in-kernel helper; its JSON answer, errors mapped to ours."""
        expression = kernel_helper.call(function, *args)
        async with self._lock:
            channel = await self._connected()
            if self._needs_setup or channel.restarts > self._known_restarts:
                await self._prepare()  # a death stays unseen, for the next run to report
            try:
                _, reply = await asyncio.wait_for(
                    self._execute("", silent=True, expressions={"r": expression}),
                    self._api.request_timeout,
                )
            except asyncio.TimeoutError:
                raise SandboxError(
                    f"the kernel did not answer a file request ({function}) within "
                    f"{self._api.request_timeout} s: code still running there holds it"
                ) from None
        return self._expression(reply, function)

    def _expression(self, reply: dict[str, Any], function: str) -> Any:
        answer = (reply.get("user_expressions") or {}).get("r") or {}
        if answer.get("status") != "ok":
            name, value = answer.get("ename", "Error"), answer.get("evalue", "no answer")
            error = _ERRORS_TO_OURS.get(name)
            if error is not None:
                raise error(value)
            raise SandboxError(f"the remote kernel failed in {function}: {name}: {value}")
        text = answer.get("data", {}).get("text/plain", "")
        return json.loads(ast.literal_eval(text))


def _kernel_died(when: str) -> RunError:
    return RunError(
        name="KernelDied",
        value=f"the remote kernel died {when}; the server restarted it and its variables are lost",
    )


def _remote_root(root: str | PurePath | None, env_id: str | None) -> str:
    if root is None:
        return f"interactions/{clean_relative(env_id or uuid.uuid4().hex)}"
    if isinstance(root, PurePath) and root.is_absolute():
        return f"interactions/{clean_relative(root.name)}"
    rel = clean_relative(str(root).replace("\\", "/"))
    if not rel:
        raise RequestError(
            "root must name a directory under the server's root_dir, e.g. 'interactions/env1'"
        )
    return rel
