"""Kernel-side following, coalesced: the events a view is pushed leave the kernel in at most
~20 custom messages a second for the whole kernel, however many views are followed.

Each tick (every 1/RATE s) sends one message: all pending events of the view that has waited
longest. So twenty followed jobs cost IOPub and the front end what one does. Events may come
as raw JSON payloads (bytes, as a follower read them off the stream): a message's payloads are
decoded together, in the pusher's thread, once, just before it is sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

log = logging.getLogger(__name__)

RATE = 20  # messages a second, per kernel, in all

Event = dict[str, Any] | bytes  # a wire event, decoded or as the raw JSON of its `data`


class Receiver(Protocol):
    def send(self, content: Any, buffers: Any = None) -> None: ...


def decoded(events: list[Event]) -> list[dict[str, Any]]:
    """The events as dicts, in order; raw payloads decoded by one json.loads for them all."""
    if all(isinstance(event, dict) for event in events):
        return events  # type: ignore[return-value]
    raw = [e if isinstance(e, bytes) else json.dumps(e).encode() for e in events]
    return list(json.loads(b"[" + b",".join(raw) + b"]"))


class Pusher:
    def __init__(self, rate: float = RATE) -> None:
        self.interval = 1.0 / rate
        self.sent = 0  # messages sent (the benchmark and tests read it)
        self._pending: OrderedDict[tuple[int, str], tuple[Receiver, list[Event]]] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._followers = 0

    def push(self, view: Receiver, interaction_id: str, event: Event) -> None:
        """Queue `event` of `interaction_id` for `view` (thread-safe, never blocks on I/O)."""
        self.push_all(view, interaction_id, (event,))

    def push_all(self, view: Receiver, interaction_id: str, events: Iterable[Event]) -> None:
        """Queue `events` (in order) for `view`: one lock and one wake-up for them all."""
        key = (id(view), interaction_id)
        with self._lock:
            entry = self._pending.get(key)
            if entry is None:
                self._pending[key] = (view, list(events))  # joins the back of the line
            else:
                entry[1].extend(events)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="widget-pusher", daemon=True)
                self._thread.start()
        self._wake.set()

    @contextlib.contextmanager
    def following(self) -> Iterator[None]:
        """Count a stream follower while it runs (see `turn`)."""
        with self._lock:
            self._followers += 1
        try:
            yield
        finally:
            with self._lock:
                self._followers -= 1

    def turn(self) -> float:
        """Seconds between two messages of one view while every follower has events: how
        long a follower may let its stream's events gather before reading them."""
        return self.interval * max(1, self._followers)

    def flush(self) -> None:
        """Send everything pending now (a view's final state must not wait)."""
        while self._send_one():
            pass

    def _send_one(self) -> bool:
        with self._lock:
            if not self._pending:
                return False
            (_, interaction_id), (view, events) = self._pending.popitem(last=False)
        try:
            view.send({"type": "events", "id": interaction_id, "events": decoded(events)})
        except Exception:  # e.g. its comm closed as it was sent: the others' go on
            log.debug("events for a view of %s were dropped", interaction_id, exc_info=True)
            return True
        self.sent += 1
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            if not self._send_one():
                with self._lock:
                    if not self._pending:
                        self._thread = None
                        return
                continue
            time.sleep(self.interval)
            if self._pending:
                self._wake.set()


PUSHER = Pusher()
