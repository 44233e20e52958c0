"""Live view: one display handle, updated at most ~10 times a second, that leaves nothing behind.

A turn's view appears at its first update as an empty bundle (`{}`: nothing for nbval to
compare, nothing for a frontend to draw) and is removed at the end: the lasting output is the
final bundle, published once as a fresh display_data. Where the cell's outputs are all ours
(`owned_cell`, which the magics use) the view clears the cell, so the saved notebook holds only
the final display; elsewhere (the Python API, whose cell may have printed before) it only
empties its handle. A background job's view instead ends holding the job's final state.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

BLANK: dict[str, Any] = {}  # a display with no data: drawn as nothing, compared as nothing
DEFAULT_INTERVAL = 0.1  # seconds: ~10 updates per second, far below IOPub's rate limit

_OWNED_CELL = contextvars.ContextVar("jupyter_interactions_owned_cell", default=False)


@contextlib.contextmanager
def owned_cell() -> Iterator[None]:
    """Within it, every output of the running cell is ours, so a live view may clear the
    cell when it ends (the magics: their cell holds no code of the user's)."""
    token = _OWNED_CELL.set(True)
    try:
        yield
    finally:
        _OWNED_CELL.reset(token)


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
    """A throttled display handle. Thread-safe: background jobs update it from a worker.

    With `initial` it is shown at once (a job's card); without, at its first update.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        initial: dict[str, Any] | None = None,
        throttle: Throttle | None = None,
    ):
        self.throttle = throttle or Throttle(interval)
        self.updates = 0
        self._lock = threading.Lock()
        self._handle: Any = None
        self._owns_cell = _OWNED_CELL.get()
        if initial is not None:
            self._handle = _display(initial)

    @property
    def display_id(self) -> str | None:
        return getattr(self._handle, "display_id", None)

    def shared_cell(self) -> None:
        """Other code wrote into this cell (a function tool ran): never clear the cell."""
        self._owns_cell = False

    def update(self, render: Callable[[], dict[str, Any]], force: bool = False) -> bool:
        """Render and send, unless an update went out less than `interval` ago."""
        with self._lock:
            if not (self.throttle.ready() or force):
                return False
            if self._handle is None:
                self._handle = _display(BLANK)
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
        """Leave nothing behind: the cell's next output (the final display, or the error)
        replaces the view where the cell is ours; elsewhere the handle is emptied."""
        with self._lock:
            handle, self._handle = self._handle, None
            if handle is None:
                return
            if self._owns_cell:
                from IPython.display import clear_output

                clear_output(wait=True)
            else:
                handle.update(BLANK, raw=True)
            self.updates += 1


def _display(data: dict[str, Any]) -> Any:
    from IPython.display import display

    return display(data, raw=True, display_id=True)


# --- richer views (widgets) --------------------------------------------------------------
# The widgets package installs a factory here when a widget front end is live; the core
# never imports widgets. `rich_view(kind, **context)` returns a view or None (then the
# Markdown/text display above is used). Kinds: "run" (a turn), "job", "files".
RICH_VIEWS: list[Callable[..., Any]] = []


def rich_view(kind: str, **context: Any) -> Any:
    """A richer view of `kind` from the installed factory, or None."""
    return RICH_VIEWS[-1](kind, **context) if RICH_VIEWS else None
