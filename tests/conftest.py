"""Shared fixtures: a REAL gateway subprocess on loopback, and google-genai clients for it.

`start_gateway(root)` runs `python -m jupyter_interactions.gateway.cli serve --port 0` with its
own data dir, runtime dir and config file under `root`, and returns a `GatewayProcess`
(`.url`, `.token`, `.data_dir`, `.stop()`, `.restart()`, `.client()`). The config adds a few
test models, loaded the way any plugin is (an entry point in a dist-info on PYTHONPATH):

- `slow`: echoes the last user input word by word, `delay` seconds apart (default 0.05);
- `transcript`: answers with every message it was given, `role:text | role:text ...`;
- `broken`: streams a word, then raises;
- `echo-many`: the echo model with up to 10,000 chunks (for throughput).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jupyter_interactions.launch import serve_command

TEST_MODELS: dict[str, dict[str, Any]] = {
    "slow": {"adapter": "ji-slow", "delay": 0.05},
    "transcript": {"adapter": "ji-transcript"},
    "broken": {"adapter": "ji-broken"},
    "echo-many": {"adapter": "echo", "chunks": 10000},
}

_PLUGIN = '''
"""Test-only model plugins for the gateway (written by tests/conftest.py)."""
import asyncio
import contextlib

from jupyter_interactions.gateway.models.base import Finish, Model, TextDelta, Usage


def _last_user(request):
    return next((m.text for m in reversed(request.messages) if m.role == "user"), "")


class SlowEcho(Model):
    def __init__(self, name, delay=0.05, **options):
        super().__init__(name, **options)
        self.delay = float(delay)

    async def stream(self, request):
        words = _last_user(request).split()
        for word in words:
            await asyncio.sleep(self.delay)
            yield TextDelta(word + " ")
        yield Usage(input_tokens=len(words), output_tokens=len(words))
        yield Finish("stop")


class Transcript(Model):
    async def stream(self, request):
        yield TextDelta(" | ".join(f"{m.role}:{m.text}" for m in request.messages))
        yield Finish("stop")


class Broken(Model):
    async def stream(self, request):
        yield TextDelta("partial ")
        raise RuntimeError("the model crashed on purpose")
'''

_ENTRY_POINTS = """[jupyter_interactions.models]
ji-slow = ji_test_models:SlowEcho
ji-transcript = ji_test_models:Transcript
ji-broken = ji_test_models:Broken
"""


def write_test_models(root: Path) -> Path:
    plugins = root / "plugins"
    info = plugins / "ji_test_models-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (plugins / "ji_test_models.py").write_text(_PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ji-test-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(_ENTRY_POINTS)
    return plugins


def end_process(
    proc: subprocess.Popen[Any], timeout: float = 15, sig: int = signal.SIGTERM
) -> int | None:
    """End a process this test started: `sig`, then SIGKILL if it is still there after
    `timeout` seconds. Returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@dataclass
class GatewayProcess:
    root: Path
    token: str
    env: dict[str, str]
    data_dir: Path
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    prefix: list[str] = field(default_factory=list)  # e.g. a namespace wrapper that execs
    args: list[str] = field(default_factory=list)  # more `serve` options, e.g. --auto
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stderr_path = self.root / "gateway.stderr"

    @property
    def runtime_file(self) -> Path:
        """This gateway's own runtime file (one per process, named by its pid)."""
        assert self.proc is not None
        name = f"jupyter-interactions-gateway-{self.proc.pid}.json"
        return Path(self.env["JUPYTER_RUNTIME_DIR"]) / name

    def start(self, timeout: float = 30) -> GatewayProcess:
        serve = serve_command(token=self.token, data_dir=self.data_dir)
        command = [*self.prefix, *serve, *self.args]
        stderr = self.stderr_path.open("a")
        self.proc = subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        stderr.close()
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if selector.select(timeout=0.1):
                    line = self.proc.stdout.readline()
                    if line.startswith("Serving on "):
                        self.url = line.removeprefix("Serving on ").strip()
                        return self
                    if not line and self.proc.poll() is not None:
                        break
        finally:
            selector.close()
        self.stop()
        raise RuntimeError(f"the gateway did not start:\n{self.stderr_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        end_process(proc, timeout, sig)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def restart(self, sig: int = signal.SIGTERM) -> GatewayProcess:
        self.stop(sig)
        return self.start()

    @contextlib.asynccontextmanager
    async def aio(self, **http_options: Any) -> AsyncIterator[Any]:
        """`client().aio`, closed (with its sync twin) on exit."""
        sdk = self.client(**http_options)
        try:
            yield sdk.aio
        finally:
            await sdk.aio.aclose()
            sdk.close()

    def client(self, token: str | None = None, **http_options: Any) -> Any:
        from google import genai

        options = {"base_url": self.url, "retry_options": {"attempts": 1}, **http_options}
        return genai.Client(api_key=token or self.token, http_options=options)


def start_gateway(
    root: Path,
    *,
    token: str | None = None,
    models: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
    args: list[str] | None = None,
    data_dir: Path | None = None,
) -> GatewayProcess:
    """Start a real gateway subprocess whose files all live under `root`. `models` adds
    model names, `settings` other GatewayConfig settings (its config file), `env` variables,
    `prefix` a command that runs the gateway's (and must exec it, keeping its pid), `args`
    more options of `serve`, `data_dir` another data dir than `root/data`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "jupyter_interactions.json"
    config.write_text(json.dumps({**(settings or {}), "models": {**TEST_MODELS, **(models or {})}}))
    child_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "JUPYTER_INTERACTIONS_DATA_DIR")
    }
    plugins = write_test_models(root)
    child_env.update(
        {
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "JUPYTER_INTERACTIONS_CONFIG": str(config),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(plugins), os.environ.get("PYTHONPATH", "")) if p
            ),
            **(env or {}),
        }
    )
    gateway = GatewayProcess(
        root=root,
        token=token or secrets.token_urlsafe(16),
        env=child_env,
        data_dir=Path(data_dir) if data_dir is not None else root / "data",
        prefix=list(prefix or []),
        args=list(args or []),
    )
    return gateway.start()


@pytest.fixture(scope="session", autouse=True)
def _no_sandbox_leftovers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Last to end: quota disks and cgroups of sandboxes are gone, even after a failure."""
    from tests.sandbox.leftovers import remove_leftovers

    yield
    remove_leftovers(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session", autouse=True)
def _private_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test touches the real Jupyter runtime dir (where a user's gateway file lives)."""
    saved = os.environ.get("JUPYTER_RUNTIME_DIR")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("runtime"))
    yield
    if saved is None:
        os.environ.pop("JUPYTER_RUNTIME_DIR", None)
    else:
        os.environ["JUPYTER_RUNTIME_DIR"] = saved


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Any]:
    """Start private gateways (e.g. to restart them); all are stopped after the test."""
    started: list[GatewayProcess] = []

    def factory(**kwargs: Any) -> GatewayProcess:
        gateway = start_gateway(tmp_path / f"gateway{len(started)}", **kwargs)
        started.append(gateway)
        return gateway

    yield factory
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway shared by the whole session."""
    process = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield process
    process.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[Any]:
    """A sync google-genai client pointed at the shared gateway (no retries)."""
    sdk = gateway.client()
    yield sdk
    sdk.close()


@pytest.fixture
async def aclient(gateway: GatewayProcess) -> AsyncIterator[Any]:
    """`client.aio` (the async google-genai client) pointed at the shared gateway."""
    async with gateway.aio() as aio:
        yield aio


class Api:
    """The same calls through google-genai's sync client (run in a worker thread, so the
    test's event loop stays free) or its async client: one test body covers both."""

    def __init__(self, sdk: Any, mode: str) -> None:
        self.sdk = sdk
        self.mode = mode

    def _target(self, path: str) -> Any:
        target = self.sdk.aio if self.mode == "async" else self.sdk
        for name in path.split("."):
            target = getattr(target, name)
        return target

    async def call(self, method_path: str, /, *args: Any, **kwargs: Any) -> Any:
        """e.g. `await api.call("interactions.create", model="echo", input="hi")`."""
        method = self._target(method_path)
        if self.mode == "async":
            return await method(*args, **kwargs)
        import asyncio

        return await asyncio.to_thread(method, *args, **kwargs)

    async def events(
        self, method_path: str, /, *args: Any, limit: int | None = None, **kwargs: Any
    ) -> list:
        """Call a streaming method and collect its events (stop after `limit`, closing the
        stream early as a client that goes away would)."""
        method = self._target(method_path)
        if self.mode == "async":
            stream = await method(*args, **kwargs)
            collected = []
            async for event in stream:
                collected.append(event)
                if limit is not None and len(collected) >= limit:
                    break
            await stream.close()
            return collected
        import asyncio

        def consume() -> list:
            stream = method(*args, **kwargs)
            collected = []
            for event in stream:
                collected.append(event)
                if limit is not None and len(collected) >= limit:
                    break
            stream.close()
            return collected

        return await asyncio.to_thread(consume)


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest, gateway: GatewayProcess) -> AsyncIterator[Api]:
    """Runs the test once with the sync client and once with the async one."""
    sdk = gateway.client()
    yield Api(sdk, request.param)
    await sdk.aio.aclose()
    sdk.close()
