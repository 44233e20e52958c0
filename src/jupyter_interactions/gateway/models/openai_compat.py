"""`openai`: any OpenAI-compatible `/chat/completions` server (Ollama, vLLM, llama-server...).

Configured under `models` in jupyter_interactions.json, e.g.
`{"qwen": {"adapter": "openai", "base_url": "http://127.0.0.1:11434/v1", "model": "qwen2.5"}}`.
Options: `base_url` and `model` (required), `api_key` (sent as a bearer token, never shown),
`timeout` (seconds to wait for the next streamed bytes, default 300), `headers` (extra
HTTP headers). Requests stream (`stream: true`, usage included) over httpx2, the HTTP client
google-genai already brings; closing the stream closes the connection, which is how these
servers learn to stop generating.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx2

from ...config import Secret
from ...errors import ConfigError, InteractionsError, RequestError, UpstreamError
from ...launch import is_loopback
from ._chat_completions import ChunkReader, chat_body
from .base import COMMON_GENERATION_FIELDS, Model, ModelEvent, ModelRequest


class OpenAICompatibleModel(Model):
    needs_configuration = True
    # Passed on as chat-completions fields (thinking_level as reasoning_effort); a server
    # that refuses one answers 400, which fails the turn with that server's message.
    generation_fields = COMMON_GENERATION_FIELDS | {"tool_choice", "thinking_level"}
    tool_choices = frozenset({"auto", "any"})
    structured_output = True

    def __init__(
        self,
        name: str = "openai",
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        if not base_url or not model:
            raise ConfigError(
                f"model {name!r} needs 'base_url' and 'model' under models.{name} in "
                'jupyter_interactions.json, e.g. {"adapter": "openai", "base_url": '
                '"http://127.0.0.1:11434/v1", "model": "qwen2.5"}'
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        # api_key and header values stay out of reprs and logs.
        self._api_key = Secret(api_key) if api_key else None
        self._headers = {k: Secret(v) for k, v in (headers or {}).items()}
        self._client: httpx2.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel({self.name!r}, base_url={self.base_url!r})"

    def _client_here(self) -> httpx2.AsyncClient:
        # A connection pool belongs to one event loop; a new loop gets a new pool.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx2.AsyncClient(
                timeout=httpx2.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                # Loopback servers (Ollama, llama-server) are reached directly, never through
                # an http_proxy from the environment; remote ones honour it (and SSL_CERT_FILE).
                trust_env=not is_loopback(urlsplit(self.base_url).hostname or ""),
            )
            self._client_loop = loop
        return self._client

    def _request_headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", **{k: str(v) for k, v in self._headers.items()}}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = chat_body(request, model=self.model)
        client = self._client_here()
        url = f"{self.base_url}/chat/completions"
        reader = ChunkReader.for_request(request)
        try:
            async with client.stream(
                "POST", url, json=body, headers=self._request_headers()
            ) as response:
                if response.status_code >= 400:
                    detail = _error_text(await response.aread())
                    raise self._status_error(response.status_code, detail)
                async for field, data in _sse(response):
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise UpstreamError(
                            f"model {self.name!r}: {self.base_url} streamed something that is "
                            "not JSON; is base_url an OpenAI-compatible endpoint?"
                        ) from None
                    if not isinstance(chunk, dict):
                        continue
                    if field == "error" or "error" in chunk:
                        raise self._status_error(502, _error_text(data.encode()))
                    for event in reader.feed(chunk):
                        yield event
        except httpx2.ConnectError as exc:
            raise ConfigError(
                f"model {self.name!r}: cannot connect to {self.base_url} ({_reason(exc)}); "
                f"start that server or fix base_url under models.{self.name} in "
                "jupyter_interactions.json"
            ) from None
        except httpx2.TimeoutException:
            raise UpstreamError(
                f"model {self.name!r}: {self.base_url} sent nothing for {self.timeout:g} s; "
                "the server may be overloaded, or raise 'timeout' for this model",
                status=504,
            ) from None
        except httpx2.TransportError as exc:
            raise UpstreamError(
                f"model {self.name!r}: the connection to {self.base_url} failed "
                f"({_reason(exc)}); try again"
            ) from None
        for event in reader.finish():
            yield event

    def _status_error(self, status: int, detail: str) -> InteractionsError:
        if self._api_key:
            detail = detail.replace(str(self._api_key), "***")
        where = f"model {self.name!r}: {self.base_url} answered {status} ({detail})"
        if status in (401, 403):
            return ConfigError(f"{where}; set a valid api_key under models.{self.name}")
        if status == 404:
            return ConfigError(
                f"{where}; check base_url (it usually ends in /v1) and that the server has "
                f"model {self.model!r}"
            )
        if status in (400, 413, 422):
            return RequestError(where)
        if status == 429:
            return UpstreamError(f"{where}; wait and try again", status=429)
        return UpstreamError(f"{where}; try again later or read that server's log")

    async def aclose(self) -> None:
        client, self._client, self._client_loop = self._client, None, None
        if client is not None:
            await client.aclose()


async def _sse(response: httpx2.Response) -> AsyncIterator[tuple[str, str]]:
    """(field, data) for each server-sent event; llama-server reports failures mid-stream
    as an `error:` field rather than `data:`."""
    field, lines = "data", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield field, "\n".join(lines)
            field, lines = "data", []
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        name, _, value = line.partition(":")
        if name in ("data", "error"):
            field = name
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield field, "\n".join(lines)


def _error_text(raw: bytes) -> str:
    """The server's own error message, short: OpenAI's {"error": {"message"}} and variants."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "no details"
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or error
    return str(error)[:300]


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
