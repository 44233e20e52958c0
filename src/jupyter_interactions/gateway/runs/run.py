"""`Run`: one interaction while it executes: its resource, its event log and its followers.

Events are numbered (`ev_1`, `ev_2`, ...) as they are published, written to the store in
batches (one batch per loop tick), and only then shown to followers, so anything a client
has seen is on disk and a resume is a plain read. A follower that falls behind reads the
whole backlog in one go; nobody polls.

If the store fails, nothing more is shown: the run is stopped and its log is closed right
after the last event anyone saw, with an `error` event and a failed `interaction.completed`,
stored with the failed row in one transaction (retried until it is stored, or the gateway
stops). Until then followers get that error unnumbered, as a notice outside the log.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from ...protocol import now
from ..state.store import Store
from .emitter import Emitter

# The name its log lines have always carried (servers' logs and filters match it).
log = logging.getLogger("jupyter_interactions.gateway.run")

# A producer more than this many events ahead of the store waits for it to catch up.
MAX_UNCOMMITTED = 1000
STORE_FAILED = "store_failed"
# Seconds between attempts to store a failed run's end (doubling up to the last).
SEAL_RETRY = (0.5, 30.0)


def sse_frame(event_type: str, seq: int, data: str) -> str:
    return f"event: {event_type}\nid: ev_{seq}\ndata: {data}\n\n"


def frame_from_stored(data: str) -> str:
    event = json.loads(data)
    seq = int(str(event.get("event_id", "ev_0"))[3:] or 0)
    return sse_frame(event.get("event_type", "message"), seq, data)


def _numbered(seq: int, event: dict[str, Any]) -> tuple[int, str, str]:
    """The event as logged: `event_id` set (in place), and its JSON."""
    event["event_id"] = f"ev_{seq}"
    return seq, event["event_type"], json.dumps(event, separators=(",", ":"), allow_nan=False)


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
        # Called with the run after each batch of events is shown (the job feed listens).
        self.watchers: list[Callable[[Run], None]] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_end = on_end
        self._seq = 0
        self._drains = 0
        self._committed = 0
        self._terminal_seq: int | None = None
        self._batch: list[tuple[int, str, str]] = []
        self.frames: list[str] = []
        self._changed: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None  # the store failed: nothing more is shown
        self._sealing: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        return self._terminal_seq is not None

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, event: dict[str, Any]) -> None:
        if self._terminal_seq is not None:
            return  # nothing follows interaction.completed
        self._seq += 1
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._write_batch)
        self._batch.append(_numbered(self._seq, event))
        if event["event_type"] == "interaction.completed":
            self._terminal_seq = self._seq

    def _write_batch(self) -> None:
        batch, self._batch = self._batch, []
        if not batch or self._failure is not None:
            return
        if self.store is None:
            self._show(batch)
            return
        # The last batch goes to disk together with the final row: both or neither.
        last = batch[-1][0] == self._terminal_seq
        future = self.store.append_events(
            self.id, [(seq, data) for seq, _, data in batch], row=self._row() if last else None
        )
        future.add_done_callback(lambda f: self._stored(batch, f))

    def _stored(self, batch: list[tuple[int, str, str]], future: asyncio.Future[Any]) -> None:
        if self._failure is not None:
            return  # a later batch, stored or not, after one that was not: never shown
        if future.cancelled() or future.exception() is not None:
            self._store_failed(future.exception() if not future.cancelled() else None)
            return
        self._show(batch)

    def _show(self, batch: list[tuple[int, str, str]]) -> None:
        self.frames.extend(sse_frame(kind, seq, data) for seq, kind, data in batch)
        self._committed = batch[-1][0]
        self._wake()
        for watcher in self.watchers:
            watcher(self)
        if self._terminal_seq is not None and self._committed >= self._terminal_seq:
            self._end()

    def _end(self) -> None:
        self._on_end(self)
        if not self.done.done():
            self.done.set_result(None)

    # -- when the store fails ------------------------------------------------------------------

    def _store_failed(self, exc: BaseException | None) -> None:
        """Stop the run and close its log after the last event shown (see the docstring)."""
        if self._failure is not None or self.store is None:
            return
        self._failure = exc or RuntimeError("the write was cancelled")
        message = getattr(exc, "message", None) or str(self._failure)
        log.error("could not store %s; it ends failed: %s", self.id, message)
        error = {"code": STORE_FAILED, "message": f"this interaction was stopped: {message}"}
        shown = self._committed
        self._batch = []
        self._terminal_seq = shown + 2  # an error event and interaction.completed close it
        self.resource["status"] = "failed"
        self.resource["updated"] = now()
        self.resource["errors"] = [*self.resource.get("errors", []), error]
        if self.task is not None and not self.task.done():
            self.task.cancel()
        final: dict[str, Any] = {"id": self.id, "status": "failed"}
        if self.emitter.usage:
            final["usage"] = dict(self.emitter.usage)
        batch = [
            _numbered(shown + 1, {"event_type": "error", "error": error}),
            _numbered(shown + 2, {"event_type": "interaction.completed", "interaction": final}),
        ]
        self._sealing = asyncio.ensure_future(self._seal(shown, batch, error))

    async def _seal(
        self, shown: int, batch: list[tuple[int, str, str]], error: dict[str, Any]
    ) -> None:
        assert self.store is not None
        rows = [(seq, data) for seq, _, data in batch]
        delay, longest = SEAL_RETRY
        while True:
            try:
                await self.store.append_events(self.id, rows, row=self._row(), after_seq=shown)
                break
            except Exception as exc:  # still failing: tell followers now, keep trying
                if not self.done.done():
                    notice = json.dumps({"event_type": "error", "error": error})
                    self.frames.append(f"event: error\ndata: {notice}\n\n")
                    self._wake()
                    self.done.set_result(None)
                if self.store.closed:
                    log.error("%s stays unstored: the gateway stopped (%s)", self.id, exc)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
        del self.frames[shown:]  # the unnumbered notice, if any, becomes the stored events
        self._show(batch)

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def drain(self) -> None:
        if self._failure is not None:
            return
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

    def _row(self) -> dict[str, Any]:
        return {**self.row, "id": self.id, "resource": self.snapshot()}

    def persist(self) -> asyncio.Future[Any] | None:
        """Store the row as it is now. Once the run has ended, its last batch stores it."""
        if self.store is None or self.ended:
            return None
        saved = self.store.save_interaction(self._row())
        saved.add_done_callback(self._row_stored)
        return saved

    def _row_stored(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._store_failed(future.exception() if not future.cancelled() else None)
