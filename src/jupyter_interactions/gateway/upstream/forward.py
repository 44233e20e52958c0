"""Forwarding to Google's service: with the key the gateway holds, every model or agent id not
served here runs there (gemini-*, gemma-*, Google's agents, names configured with
`{"adapter": "google"}`), and its events are relayed into our own event log. Without a key,
ids that look like Google's get a 400 saying how to set one.

The gateway keeps its own interaction ids; the upstream id of each turn is stored beside it
so the next turn's `previous_interaction_id` is translated. Upstream failures (after the
SDK's retries) end the interaction `failed` with an `error` event that says what Google
answered and what to do; they never become HTTP 429/5xx here, so the kernel's SDK does not
retry a second time on top of ours. The key never appears in an event, a log line or an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from ...config import GatewayConfig
from ...errors import UpstreamError
from .files import UpstreamFiles, ask_google

# The name its log lines have always carried (servers' logs and filters match it).
log = logging.getLogger("jupyter_interactions.gateway.upstream")

GOOGLE_AGENT_PREFIXES = ("antigravity-", "deep-research-")
# Fields of our create body that Google must not see: transport flags we set ourselves and
# our chain ids, which mean nothing upstream (the engine keeps only Google's environments).
_LOCAL_ONLY = frozenset({"stream", "background", "previous_interaction_id", "store"})
_RESUME_ATTEMPTS = 3


class Emitter(Protocol):
    """What forwarding reports through: the run's event emitter (runs/emitter.py), seen from
    here as this protocol so that upstream/ stays a leaf."""

    status: str | None

    def start(self, step: dict[str, Any]) -> int: ...
    def delta(self, index: int, delta: dict[str, Any]) -> None: ...
    def stop(self, index: int, **extra: Any) -> None: ...
    def close_all(self) -> None: ...
    def error(self, code: str, message: str) -> None: ...
    def add_usage(self, input_tokens: int = 0, output_tokens: int = 0, **other: int) -> None: ...
    async def drain(self) -> None: ...


def runs_on_google(model: str | None, agent: str | None) -> bool:
    """True for ids that can only mean Google's service (for the advice when there is no key)."""
    if agent:
        return agent.startswith(GOOGLE_AGENT_PREFIXES)
    return bool(model and model.startswith("gemini-"))


def _status_advice(status: int | None) -> str:
    if status == 429:
        return "Google's service is rate-limiting this key (429); wait a minute and run it again"
    if status in (401, 403):
        return "Google's service refused the gateway's key; check GEMINI_API_KEY"
    if status is not None and status >= 500:
        return f"Google's service failed ({status}); try again later"
    return "fix the request and run it again"


class GoogleUpstream:
    """The engine's `Upstream`: runs an interaction on Google's service through the SDK."""

    def __init__(self, config: GatewayConfig) -> None:
        self._key = config.gemini_api_key
        self._url = config.upstream_url
        self._attempts = max(1, int(config.upstream_attempts))
        self._client: Any = None

    def handles(self, model: str | None, agent: str | None) -> bool:
        """Any id the engine does not serve itself can go to Google, given a key."""
        return self._key is not None

    def _aio(self) -> Any:
        """The async google-genai client holding the key (made on first use)."""
        if self._client is None:
            from google import genai

            self._client = genai.Client(
                api_key=str(self._key),
                http_options={
                    "base_url": self._url,
                    "retry_options": {"attempts": self._attempts},
                },
            )
        return self._client.aio

    def _interactions(self) -> Any:
        return self._aio().interactions

    def files(self, environment_id: str) -> UpstreamFiles:
        """The files of an environment on Google's service."""
        return UpstreamFiles(self._aio().environments, environment_id)

    async def environment(self, environment_id: str) -> dict[str, Any]:
        """An environment on Google's service, as Google describes it."""
        found = await ask_google(self._aio().environments.get, environment_id)
        return dict(found.model_dump(mode="json", exclude_none=True))

    async def delete_environment(self, environment_id: str) -> None:
        await ask_google(self._aio().environments.delete, environment_id)

    async def models(self) -> list[tuple[str, str]]:
        """The ids Google lists that this gateway forwards, as ("models"|"agents", id); none
        without a key. Google's failure is an UpstreamError naming it."""
        if self._key is None:
            return []
        from google.genai import errors as sdk_errors

        listed: list[tuple[str, str]] = []
        try:
            async for model in await self._aio().models.list(config={"page_size": 1000}):
                ident = str(model.name or "").rpartition("/")[2]
                if runs_on_google(ident, None):
                    listed.append(("models", ident))
                elif runs_on_google(None, ident):
                    listed.append(("agents", ident))
        except sdk_errors.APIError as exc:
            message = f"Google's service answered {exc.code} when asked for its models"
            raise UpstreamError(message) from None
        except Exception as exc:  # the transport's own (aiohttp or httpx): unreachable
            raise UpstreamError(f"cannot reach Google's service ({type(exc).__name__})") from None
        return listed

    async def run(
        self, body: dict[str, Any], previous_upstream_id: str | None, emitter: Emitter
    ) -> UpstreamRun:
        from ..._sdk import errors as sdk_errors

        request = {k: v for k, v in body.items() if k not in _LOCAL_ONLY}
        if previous_upstream_id:
            request["previous_interaction_id"] = previous_upstream_id
        relay = Relay(emitter)
        interactions = self._interactions()
        try:
            if body.get("agent"):
                # Google's agents run in the background; attach to their stream.
                started = await interactions.create(**request, background=True)
                relay.upstream_id = started.id
                stream = await interactions.get(started.id, stream=True)
            else:
                stream = await interactions.create(**request, stream=True)
            await self._consume(interactions, stream, relay, sdk_errors)
        except sdk_errors.APIStatusError as exc:
            self._fail(emitter, exc.status_code, _message_of(exc))
        except sdk_errors.APIConnectionError as exc:
            self._fail(emitter, None, f"cannot reach Google's service ({type(exc).__name__})")
        except BaseException:
            if relay.upstream_id and body.get("agent") and not relay.finished:
                await self._cancel_quietly(interactions, relay.upstream_id)
            raise
        return UpstreamRun(relay.upstream_id, relay.environment_id)

    async def _consume(self, interactions: Any, stream: Any, relay: Relay, errors: Any) -> None:
        """Relay events; if the connection drops mid-stream, re-attach from the last event."""
        for attempt in range(_RESUME_ATTEMPTS + 1):
            try:
                async for event in stream:
                    relay.event(event.model_dump(mode="json", exclude_none=True))
                    await relay.emitter.drain()
                return
            except errors.APIConnectionError:
                if relay.finished or not relay.upstream_id or attempt == _RESUME_ATTEMPTS:
                    raise
                log.warning("upstream stream dropped; re-attaching (attempt %d)", attempt + 1)
                stream = await interactions.get(
                    relay.upstream_id, stream=True, last_event_id=relay.last_event_id
                )

    @staticmethod
    def _fail(emitter: Emitter, status: int | None, detail: str) -> None:
        message = f"Google's service answered {status or 'nothing'}: {detail}; "
        message += _status_advice(status)
        emitter.close_all()
        emitter.error(f"upstream_{status or 'unreachable'}", message)
        emitter.status = "failed"

    @staticmethod
    async def _cancel_quietly(interactions: Any, upstream_id: str) -> None:
        try:
            await interactions.cancel(upstream_id)
        except Exception as exc:  # best effort: the local cancel already happened
            log.warning("could not cancel upstream interaction: %s", type(exc).__name__)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aio.aclose()
            self._client = None


@dataclass(frozen=True)
class UpstreamRun:
    """What an upstream run leaves for the next turn: Google's ids for it and its sandbox."""

    id: str | None
    environment_id: str | None = None


class Relay:
    """Maps events of another run (Google's, or a recorded one) onto our emitter, with our own
    step indexes and event ids."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.upstream_id: str | None = None
        self.environment_id: str | None = None
        self.last_event_id: str | None = None
        self.finished = False
        self._index: dict[int, int] = {}

    def event(self, event: dict[str, Any]) -> None:
        self.last_event_id = event.get("event_id") or self.last_event_id
        kind = event.get("event_type")
        emitter = self.emitter
        interaction = event.get("interaction") or {}
        self.environment_id = interaction.get("environment_id") or self.environment_id
        if kind == "interaction.created":
            self.upstream_id = interaction.get("id") or self.upstream_id
        elif kind == "step.start":
            self._index[event["index"]] = emitter.start(event.get("step") or {})
        elif kind == "step.delta" and event.get("index") in self._index:
            emitter.delta(self._index[event["index"]], event.get("delta") or {})
        elif kind == "step.stop" and event.get("index") in self._index:
            emitter.stop(self._index[event["index"]])
        elif kind == "interaction.completed":
            self.finished = True
            self.upstream_id = interaction.get("id") or self.upstream_id
            _add_usage(emitter, interaction.get("usage") or {})
            status = interaction.get("status")
            if status not in (None, "completed", "requires_action"):
                emitter.status = status
        elif kind == "error":
            error = event.get("error") or {}
            emitter.error(
                str(error.get("code") or "upstream"), str(error.get("message") or "upstream error")
            )
            emitter.status = "failed"


def _add_usage(emitter: Emitter, usage: dict[str, Any]) -> None:
    emitter.add_usage(
        input_tokens=int(usage.get("total_input_tokens") or 0),
        output_tokens=int(usage.get("total_output_tokens") or 0),
        **{
            k: int(usage[k])
            for k in ("total_thought_tokens", "total_tool_use_tokens", "total_cached_tokens")
            if usage.get(k)
        },
    )


def _message_of(exc: Any) -> str:
    """The upstream's own error message, without echoing request headers (the key)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return f"HTTP {getattr(exc, 'status_code', '?')}"


__all__ = ["GoogleUpstream", "Relay", "UpstreamRun", "runs_on_google"]
