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
from pathlib import Path, PurePath
from typing import Any, ClassVar, Literal

from ..errors import NotFoundError, RequestError, SandboxError, SandboxUnavailable
from . import jupyter_kernel
from .base import Limits, OutputCallback, RunError, RunResult, Sandbox, SandboxFiles, clean_relative
from .jupyter_files import ContentsFiles, KernelFiles
from .jupyter_remote import Exchange, KernelChannel, KernelLost, ServerAPI

__all__ = ["JupyterSandbox"]

log = logging.getLogger(__name__)

HELPER = f"__import__('sys').modules[{jupyter_kernel.MODULE_NAME!r}]"
# Installs the helper as a module, leaving nothing in the user's namespace.
BOOTSTRAP = (
    "import sys, types\n"
    "module = types.ModuleType(NAME)\n"
    "exec(SOURCE, module.__dict__)\n"
    "sys.modules[NAME] = module\n"
)
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
    remote gateway and its own contents API is not where they run).
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
        model = await self._api.request(
            "POST", "api/kernels", {"name": self.kernel_name, "path": ""}
        )
        self.kernel_id = model["id"]
        try:
            self._channel = await KernelChannel.connect(
                self._api, self.kernel_id, self.start_timeout
            )
            await self._wait_ready()
            async with self._lock:
                await self._setup()
            self.files = await self._choose_files()
        except BaseException:
            await self.stop()
            raise
        self.isolation = "remote"
        self.timings["start"] = time.perf_counter() - began

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

    async def _wait_ready(self) -> None:
        channel = self._live_channel()
        exchange = channel.request("shell", "kernel_info_request", {})

        async def replied() -> None:
            while (await exchange.next())["msg_type"] != "kernel_info_reply":
                pass

        try:
            await asyncio.wait_for(replied(), self.start_timeout)
        except (asyncio.TimeoutError, KernelLost) as exc:
            raise SandboxUnavailable(
                f"the {self.kernel_name!r} kernel on {self._api.shown} did not become ready "
                f"({exc or 'timed out'}); check that kernel's spec on the server and its log"
            ) from None
        finally:
            channel.forget(exchange)

    async def _setup(self) -> None:
        """Install the helper module and move into the workspace (after every restart)."""
        source = Path(jupyter_kernel.__file__).read_text()
        code = (
            f"exec({BOOTSTRAP!r}, {{'NAME': {jupyter_kernel.MODULE_NAME!r}, 'SOURCE': {source!r}}})"
        )
        _, reply = await self._execute(
            code, silent=True, expressions={"r": f"{HELPER}.setup({self.remote_root!r})"}
        )
        answer = self._expression(reply, "setup")
        self.remote_root_abs = answer["root"]
        self._needs_setup = False

    async def _choose_files(self) -> SandboxFiles:
        mode = self.files_mode
        if mode == "auto":
            try:
                await self._api.request("GET", "api/contents", query={"content": "0"})
                mode = "contents"
            except (NotFoundError, SandboxError):
                mode = "kernel"
        if mode == "contents":
            return ContentsFiles(self._api, self.remote_root)
        if mode == "kernel":
            return KernelFiles(self._call)
        raise RequestError(
            f"files={mode!r} is not a file backend; use 'auto', 'contents' or 'kernel'"
        )

    def _live_channel(self) -> KernelChannel:
        self._kernel()
        if self._channel is None or self._channel.lost is not None:
            raise SandboxUnavailable(
                f"lost the connection to the kernel on {self._api.shown}; check that the "
                "server is still running, then start a new sandbox"
            )
        return self._channel

    # -- running code ---------------------------------------------------------------------

    async def run(
        self,
        code: str,
        *,
        language: Literal["python", "bash"] = "python",
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> RunResult:
        if language == "bash":
            code = f"{HELPER}.bash({code!r})"
        elif language != "python":
            raise RequestError(
                f"language {language!r} is not supported here; use 'python' or 'bash'"
            )
        limit = self.limits.wall_seconds if timeout is None else timeout
        async with self._lock:
            if self._needs_setup:
                await self._setup()
            result, _ = await self._execute(code, timeout=limit, on_output=on_output)
        return result

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
        exchange = channel.request(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": silent,
                "store_history": not silent,
                "user_expressions": expressions or {},
                "allow_stdin": False,
                "stop_on_error": False,
            },
        )
        collector = asyncio.ensure_future(_collect(exchange, result, reply, on_output))
        try:
            try:
                await asyncio.wait_for(asyncio.shield(collector), timeout)
            except asyncio.TimeoutError:
                result.timed_out = True
                await self._stop_overrun(collector)
        except KernelLost as exc:
            self._needs_setup = True
            if self.kernel_id is None:
                raise SandboxError("the sandbox was stopped while this code ran") from None
            if channel.lost is not None:
                raise SandboxUnavailable(
                    f"lost the connection to the kernel on {self._api.shown} ({exc}); check "
                    "that the server is still running, then start a new sandbox"
                ) from None
            raise SandboxError(
                f"the remote kernel died while running this code ({exc}); its variables are "
                "gone, and the next run starts in a fresh kernel"
            ) from None
        finally:
            collector.cancel()
            channel.forget(exchange)
        self.timings["last_execute"] = time.perf_counter() - began
        return result, reply

    async def _stop_overrun(self, collector: asyncio.Future[None]) -> None:
        """Interrupt; if the kernel does not come back within the grace, restart it."""
        await self.interrupt()
        try:
            await asyncio.wait_for(asyncio.shield(collector), self.interrupt_grace)
            return
        except asyncio.TimeoutError:
            pass
        log.warning("kernel %s ignored an interrupt; restarting it", self.kernel_id)
        await self._api.request("POST", f"api/kernels/{self._kernel()}/restart")
        self.warnings.append(
            "a run ignored its interrupt, so the kernel was restarted and its variables are gone"
        )
        self._needs_setup = True

    async def _call(self, function: str, *args: Any) -> Any:
        """Call a function of the in-kernel helper; its JSON answer, errors mapped to ours."""
        expression = f"{HELPER}.{function}({', '.join(repr(a) for a in args)})"
        async with self._lock:
            if self._needs_setup:
                await self._setup()
            _, reply = await self._execute("", silent=True, expressions={"r": expression})
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


async def _collect(
    exchange: Exchange,
    result: RunResult,
    reply: dict[str, Any],
    on_output: OutputCallback | None,
) -> None:
    """Fill `result` from the messages of one execute_request. `execute_reply` (shell) and
    `status: idle` (iopub) come in either order; the run is over only with both."""
    replied = idle = False
    while not (replied and idle):
        message = await exchange.next()
        kind, content = message.get("msg_type"), message.get("content", {})
        if kind == "stream":
            name, text = content.get("name", "stdout"), content.get("text", "")
            if name == "stderr":
                result.stderr += text
            else:
                result.stdout += text
            if on_output is not None:
                try:
                    on_output("stderr" if name == "stderr" else "stdout", text)
                except Exception:  # a broken listener must not abandon the run mid-way
                    log.exception("on_output callback failed")
        elif kind in ("display_data", "execute_result"):
            result.outputs.append(dict(content.get("data", {})))
        elif kind == "error":
            result.error = RunError(
                name=content.get("ename", "Error"),
                value=content.get("evalue", ""),
                traceback=list(content.get("traceback", [])),
            )
        elif kind == "status" and content.get("execution_state") == "idle":
            idle = True
        elif kind == "execute_reply":
            replied = True
            reply.update(content)
            if content.get("status") == "error" and result.error is None:
                result.error = RunError(content.get("ename", "Error"), content.get("evalue", ""))
            elif content.get("status") == "aborted" and result.error is None:
                result.error = RunError("Aborted", "the kernel aborted this run")


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
