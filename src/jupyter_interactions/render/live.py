"""Live view: one display handle, updated at most ~10 times a second, emptied at the end.

The handle starts empty and ends empty, so nbval (which records only a handle's first
display) and the saved notebook (which holds its last) agree; the lasting output is the
final bundle, published once as a fresh display_data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

EMPTY: dict[str, str] = {"text/plain": ""}
DEFAULT_INTERVAL = 0.1  # seconds: ~10 updates per second, far below IOPub's rate limit


class Throttle:
    """Says whether enough time has passed since the last accepted call. Thread-safe, so
    several views can share one budget (background jobs do)."""

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ):
        self.interval = interval
        self.clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def ready(self) -> bool:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.interval:
                return False
            self._last = now
            return True


def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
    """A fresh display_data (the final, lasting output of a cell)."""
    from IPython.display import display

    display(data, raw=True, metadata=metadata or {})


class LiveView:
    """A throttled display handle. Thread-safe: background jobs update it from a worker."""

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        initial: dict[str, Any] | None = None,
        throttle: Throttle | None = None,
    ):
        from IPython.display import display

        self.throttle = throttle or Throttle(interval)
        self.updates = 0
        self._lock = threading.Lock()
        self._handle = display(initial or EMPTY, raw=True, display_id=True)

    @property
    def display_id(self) -> str | None:
        return getattr(self._handle, "display_id", None)

    def update(self, render: Callable[[], dict[str, Any]], force: bool = False) -> bool:
        """Render and send, unless an update went out less than `interval` ago."""
        with self._lock:
            if not (self.throttle.ready() or force) or self._handle is None:
                return False
            self._handle.update(render(), raw=True)
            self.updates += 1
            return True

    def replace(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        """Set the handle's lasting content (a background job's final state)."""
        with self._lock:
            if self._handle is not None:
                self._handle.update(data, raw=True, metadata=metadata or {})
                self.updates += 1

    def clear(self) -> None:
        self.replace(EMPTY)
