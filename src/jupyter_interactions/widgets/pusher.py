"""Kernel-side following, coalesced: the events a view is pushed leave the kernel in at most
~20 custom messages a second for the whole kernel, however many views are followed.

Each tick (every 1/RATE s) sends one message: all pending events of the view that has waited
longest. So twenty followed jobs cost IOPub and the front end what one does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

RATE = 20  # messages a second, per kernel, in all


class Receiver(Protocol):
    def send(self, content: Any, buffers: Any = None) -> None: ...


class Pusher:
    def __init__(self, rate: float = RATE) -> None:
        self.interval = 1.0 / rate
        self.sent = 0  # messages sent (the benchmark and tests read it)
        self._pending: OrderedDict[tuple[int, str], tuple[Receiver, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def push(self, view: Receiver, interaction_id: str, event: dict[str, Any]) -> None:
        """Queue `event` of `interaction_id` for `view` (thread-safe, never blocks on I/O)."""
        key = (id(view), interaction_id)
        with self._lock:
            entry = self._pending.get(key)
            if entry is None:
                self._pending[key] = (view, [event])  # joins the back of the line
            else:
                entry[1].append(event)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="widget-pusher", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> None:
        """Send everything pending now (a view's final state must not wait)."""
        while self._send_one():
            pass

    def _send_one(self) -> bool:
        with self._lock:
            if not self._pending:
                return False
            (_, interaction_id), (view, events) = self._pending.popitem(last=False)
        view.send({"type": "events", "id": interaction_id, "events": events})
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
