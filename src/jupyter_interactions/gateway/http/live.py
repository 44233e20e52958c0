"""Live interactions over WebSocket (`client.aio.interactions.connect`, route
`interactions/live`): text in, streamed text out, on this gateway's own models.

A live interaction waits for input. It is made by `interactions.create(model=...,
background=True)` without `input`, or on the socket by an `interaction.create` event. Each
`input` event is one turn: a `user_input` step, then the model's steps, streamed as they
come. `interaction.complete` ends it `completed` after the turn under way, `interaction.cancel`
ends it `cancelled` at once, and `interaction.disconnect` (or a dropped socket) leaves it
waiting for a later `connect(id)`; with no input for `IDLE_SECONDS` (runs/live.py) it ends
`incomplete`.

Everything goes through the interaction's event log, so `get(id, stream=True)` follows the
same conversation over SSE, and the socket is that log in the live vocabulary (no status
updates, no echo of the client's own input, the end as `interaction.completed` with an RPC
status or `interaction.cancelled`). Connecting to any other interaction follows it: live
while it runs, replayed once it has ended (from `next_output_seq_num` when given).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import tornado.websocket

from ...errors import InteractionsError, RequestError, UnsupportedError
from ...protocol import STOPPED_EARLY
from ..runs.live import LiveConversation
from ..state.auth_tokens import Need
from ..validation import bodies, rules, strict_json
from ..validation.strict_json import INT64_MAX
from .base import BaseHandler

# The name its log lines have always carried (servers' logs and filters match it).
log = logging.getLogger("jupyter_interactions.gateway.live")

# The fields of `interaction.create` (the SDK's CreateInteractionEvent); tools are refused
# by open_live with its reason.
_CREATE_FIELDS = frozenset(
    {"model", "system_instruction", "previous_interaction_id", "store", "tools"}
)
# How a live interaction's end reads as a google.rpc.Status (LiveInteractionCompletedEvent).
_RPC_STATUS = {
    "completed": {"code": 0},
    "requires_action": {"code": 9, "message": "requires_action: function results are awaited"},
    "incomplete": {"code": 11, "message": f"incomplete: {STOPPED_EARLY['incomplete']}"},
    "budget_exceeded": {
        "code": 8,
        "message": f"budget_exceeded: {STOPPED_EARLY['budget_exceeded']}",
    },
    "failed": {"code": 13, "message": "failed: the error event before this one says why"},
}
_SUPPORTED = "text input events, interaction.complete, interaction.cancel, interaction.disconnect"


class LiveHandler(tornado.websocket.WebSocketHandler, BaseHandler):  # type: ignore[misc]
    """One live socket: set up by its first event, then inputs in and events out."""

    def token_need(self) -> Need:
        # Any interaction at the handshake; the one a token names is checked at connect.
        return Need("read")

    def open(self, *args: Any) -> None:
        self.interaction_id: str | None = None
        self.conversation: LiveConversation | None = None  # set when this socket may talk
        self._relaying: asyncio.Future[None] | None = None
        self._created = False  # this socket made the interaction: it says interaction.created
        self._input_steps: set[int] = set()

    def on_close(self) -> None:
        # The interaction goes on without us; only the relay of its events stops.
        if self._relaying is not None:
            self._relaying.cancel()

    async def on_message(self, message: str | bytes) -> None:
        try:  # strict JSON, nesting bounded: what every route's body is held to
            payload = strict_json.loads(message.encode() if isinstance(message, str) else message)
        except RequestError as exc:
            return self._fail("invalid_argument", exc.message, close=True)
        events = payload.get("events") if isinstance(payload, dict) else None
        for event in events if isinstance(events, list) else [payload]:
            if not isinstance(event, dict) or self.ws_connection is None:
                return self._fail("invalid_argument", "live events are JSON objects", close=True)
            try:
                await self._on_event(str(event.get("event_type", "")), event)
            except InteractionsError as exc:
                self._fail(exc.code, exc.message, close=self.interaction_id is None)

    async def _on_event(self, kind: str, event: dict[str, Any]) -> None:
        if self.interaction_id is None:
            if kind == "interaction.connect":
                await self._connect(str(event.get("id") or ""), event.get("next_output_seq_num"))
            elif kind == "interaction.create":
                await self._create(event)
            else:
                raise RequestError(
                    "a live socket starts with interaction.connect {id} or interaction.create "
                    f"{{model}}, not {kind or 'an event without event_type'}"
                )
        elif kind == "input":
            self._talking().send(event.get("content"))
        elif kind == "interaction.complete":
            self._talking().complete()
        elif kind == "interaction.cancel":
            self._talking()
            await self.engine.cancel(self.interaction_id)
        elif kind == "interaction.disconnect":
            self.close(1000)
        else:
            what = kind or "an event without event_type"
            raise UnsupportedError(
                f"{what} is not supported here; a live socket takes {_SUPPORTED}"
            )

    async def _connect(self, interaction_id: str, next_seq: Any) -> None:
        if not interaction_id:
            raise RequestError("interaction.connect needs the id of an interaction")
        if self.grant is not None and not self.grant.allows(Need("read", interaction_id)):
            self._fail("permission_denied", "this auth token belongs to another interaction")
            return self.close(1008)
        resource = await self.engine.get(interaction_id)  # 404 for an unknown id
        run = self.engine.runs.get(interaction_id)
        if run is not None and run.live is not None:
            if self.grant is None or self.grant.allows(Need("live", interaction_id)):
                self.conversation = run.live
        shown = {k: resource[k] for k in ("id", "status", "model", "agent") if k in resource}
        connected = {"event_type": "interaction.connected", "interaction_id": interaction_id}
        self._send({**connected, "interaction": shown})
        seq = rules.number(next_seq or 1, "next_output_seq_num", 1, INT64_MAX, whole=True)
        self._start(interaction_id, int(seq) - 1)

    async def _create(self, event: dict[str, Any]) -> None:
        if self.grant is not None:
            raise RequestError("an auth token connects to its own interaction; it creates none")
        unknown = sorted(set(event) - _CREATE_FIELDS - {"event_type"})
        if unknown:
            raise UnsupportedError(
                f"interaction.create field(s) {', '.join(unknown)} are not supported here; it "
                f"takes {', '.join(sorted(_CREATE_FIELDS - {'tools'}))}"
            )
        body = {**{k: event[k] for k in _CREATE_FIELDS if k in event}, "background": True}
        await bodies.interaction_body(body)  # as a POST /interactions body is checked
        session, thread = self.session_headers()
        run = await self.engine.create(body, session, thread, live=True)
        self.conversation = run.live
        self._created = True
        self._start(run.id, 0)

    def _talking(self) -> LiveConversation:
        if self.conversation is None:
            raise RequestError(
                f"interaction {self.interaction_id!r} takes no input on this socket: it is not "
                "a live one waiting for input, or this auth token may only read it"
            )
        return self.conversation

    # -- events out ----------------------------------------------------------------------------

    def _start(self, interaction_id: str, after: int) -> None:
        self.interaction_id = interaction_id
        self._relaying = asyncio.ensure_future(self._relay_events(interaction_id, after))

    async def _relay_events(self, interaction_id: str, after: int) -> None:
        try:
            async for frames in await self.engine.open_stream(interaction_id, after):
                for frame in frames:
                    event = self._live_event(json.loads(frame.split("\ndata: ", 1)[1]))
                    if event is not None:
                        self._send(event)
            self.close(1000)  # the interaction has ended: nothing more comes
        except tornado.websocket.WebSocketClosedError:
            pass
        except Exception:  # a broken relay must end this socket, never the gateway
            log.exception("live relay of %s failed", interaction_id)
            self.close(1011)

    def _live_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """An event of the log as the live protocol has it (None: not sent on the socket)."""
        kind = event["event_type"]
        if kind.startswith("step."):
            if kind == "step.start" and event["step"].get("type") == "user_input":
                self._input_steps.add(event["index"])
            return None if event["index"] in self._input_steps else event
        if kind == "interaction.created":
            if not self._created:
                return None  # a connecting client got interaction.connected instead
            created = {"event_type": kind, "interaction_id": event["interaction"]["id"]}
            return {**created, "event_id": event["event_id"]}
        if kind == "interaction.completed":
            return _live_end(event)
        return event if kind == "error" else None  # status updates are not live events

    def _send(self, event: dict[str, Any]) -> None:
        self.write_message(json.dumps(event, separators=(",", ":"), allow_nan=False))

    def _fail(self, code: str, message: str, close: bool = False) -> None:
        try:
            self._send({"event_type": "error", "error": {"code": code, "message": message}})
        except tornado.websocket.WebSocketClosedError:
            return
        if close:
            self.close(1008)


def _live_end(event: dict[str, Any]) -> dict[str, Any]:
    interaction = event["interaction"]
    status = interaction["status"]
    end: dict[str, Any] = {"event_type": "interaction.completed", "event_id": event["event_id"]}
    if status == "cancelled":
        end["event_type"] = "interaction.cancelled"
    else:
        end["status"] = _RPC_STATUS.get(status, {"code": 2, "message": status})
        end["updated"] = interaction.get("updated")
    if interaction.get("usage"):
        end["usage"] = interaction["usage"]
    return end
