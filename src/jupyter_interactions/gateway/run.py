"""`Run`: one interaction while it executes: its resource, its event log and its followers.

Events are numbered (`ev_1`, `ev_2`, ...) as they are published, written to the store in
batches (one batch per loop tick), and only then shown to followers, so anything a client
has seen is on disk and a resume is a plain read. A follower that falls behind reads the
whole backlog in one go; nobody polls.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from .emitter import Emitter
from .store import Store

log = logging.getLogger(__name__)

# A producer more than this many events ahead of the store waits for it to catch up.
MAX_UNCOMMITTED = 1000


def sse_frame(event_type: str, seq: int, data: str) -> str:
    return f"event: {event_type}\nid: ev_{seq}\ndata: {data}\n\n"


def frame_from_stored(data: str) -> str:
    event = json.loads(data)
    seq = int(str(event.get("event_id", "ev_0"))[3:] or 0)
    return sse_frame(event.get("event_type", "message"), seq, data)


class Run:
    def __init__(
        self,
        resource: dict[str, Any],
        *,
        store: Store | None,
        row: dict[str, Any],
        on_end: Callable[[Run], None],
    ) -> None:
        self.id: str = resource["id"]
        self.resource = resource
        self.row = row  # previous_id, upstream_id, session, thread, input: what the store keeps
        self.store = store  # None when the request said store=false
        self.emitter = Emitter(self.publish, self.drain)
        self.task: asyncio.Task[None] | None = None
        self.cancel_reason: str | None = None
        self.chain_length = 1
        self.live: Any = None  # a live interaction's turns (engine.LiveTurns), else None
        self.accepted: dict[str, Any] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_end = on_end
        self._seq = 0
        self._drains = 0
        self._committed = 0
        self._terminal_seq: int | None = None
        self._batch: list[tuple[int, str, str]] = []
        self.frames: list[str] = []
        self._changed: asyncio.Future[None] | None = None

    @property
    def ended(self) -> bool:
        return self._terminal_seq is not None

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        if self._terminal_seq is not None:
            return  # nothing follows interaction.completed
        self._seq += 1
        seq = self._seq
        event["event_id"] = f"ev_{seq}"
        data = json.dumps(event, separators=(",", ":"))
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._write_batch)
        self._batch.append((seq, event["event_type"], data))
        if event["event_type"] == "interaction.completed":
            self._terminal_seq = seq

    def _write_batch(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self.store is None:
            self._committed_batch(batch)
            return
        future = self.store.append_events(self.id, [(seq, data) for seq, _, data in batch])
        future.add_done_callback(lambda f: self._committed_batch(batch, f))

    def _committed_batch(
        self, batch: list[tuple[int, str, str]], future: asyncio.Future[Any] | None = None
    ) -> None:
        if future is not None and future.exception() is not None:
            # The store failed (disk full?): followers still get the events, so a client
            # sees the interaction end instead of hanging; the log line says what happened.
            log.error("could not store events of %s: %s", self.id, future.exception())
        self.frames.extend(sse_frame(kind, seq, data) for seq, kind, data in batch)
        self._committed = batch[-1][0]
        self._wake()
        if self._terminal_seq is not None and self._committed >= self._terminal_seq:
            self._on_end(self)
            if not self.done.done():
                self.done.set_result(None)

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def drain(self) -> None:
        if self._seq - self._committed > MAX_UNCOMMITTED:
            await self._wait_change()
            return
        self._drains += 1
        if self._drains % 64 == 0:
            # Let other streams and requests run while a fast producer streams.
            await asyncio.sleep(0)

    async def _wait_change(self) -> None:
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._changed)

    # -- reading -------------------------------------------------------------------------------

    async def follow(self, after_seq: int = 0) -> AsyncIterator[list[str]]:
        """The committed SSE frames after `after_seq`, live until the terminal event."""
        position = after_seq
        while True:
            if position < len(self.frames):
                chunk = self.frames[position:]
                position = len(self.frames)
                yield chunk
                continue
            if self.done.done():
                return
            await self._wait_change()

    def snapshot(self, include_input: bool = False) -> dict[str, Any]:
        resource = dict(self.resource)
        resource["steps"] = copy.deepcopy(self.emitter.steps)
        if self.emitter.usage:
            resource["usage"] = dict(self.emitter.usage)
        if include_input and self.row.get("input") is not None:
            resource["input"] = self.row["input"]
        return resource

    def persist(self) -> asyncio.Future[Any] | None:
        if self.store is None:
            return None
        return self.store.save_interaction({**self.row, "id": self.id, "resource": self.snapshot()})
