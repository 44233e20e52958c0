"""What every widget shares: its built assets, a deterministic repr with a text fallback,
id-keyed calls from the front end answered off the kernel's main thread, and the kernel-side
followers a view runs, stopped when it closes (from either side).

A widget's mimebundle always carries `text/plain` and `text/markdown` of its current content
besides the widget view, so nbconvert, nbviewer and GitHub show the result without widget
state, and nbval compares stable text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import anywidget
import traitlets

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def asset(name: str) -> Path:
    """A built front-end file; a clear error if `make install` (npm run build) never ran."""
    path = STATIC / name
    if not path.exists():
        raise FileNotFoundError(
            f"the widgets' front end is not built ({path} is missing): run `make install`, or "
            "`npm ci && npm run build` in js/"
        )
    return path


class CallError(Exception):
    """A call from the front end that failed with a message meant for the user."""


class Follower(Protocol):
    """A kernel thread that follows a stream for a view."""

    def stop(self) -> None:
        """End it soon, from any thread, without waiting for it."""


class ViewWidget(anywidget.AnyWidget):
    """Base of our widgets: fallback bundle, stable repr, `calls` from the front end, and the
    followers it runs (stopped when the view closes)."""

    _css = traitlets.Unicode().tag(sync=True)
    # Path of the gateway under the page's base URL ("interactions/") when the page may
    # follow it itself; "" when only the kernel can reach it.
    gateway = traitlets.Unicode("").tag(sync=True)
    follower = traitlets.Unicode("kernel").tag(sync=True)  # "browser" | "kernel"

    def setup_instance(self, /, *args: Any, **kwargs: Any) -> None:
        """What close() uses, set before any `__init__` (traitlets calls this first): a widget
        is closed when collected, also one whose construction failed (e.g. a subclass's
        arguments naming a front-end file that was never built)."""
        self._followers: dict[str, Follower] = {}
        self._followers_lock = threading.Lock()
        self._view_closed = False
        super().setup_instance(*args, **kwargs)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("_css", asset("widgets.css").read_text())
        super().__init__(**kwargs)
        self._calls: dict[str, Callable[..., Any]] = {}
        self.on_msg(self._on_front_end)

    # --- calls from the front end ------------------------------------------------------------

    def answer(self, method: str, handler: Callable[..., Any]) -> None:
        """Serve `method` calls: `handler(**args)` returns a JSON-able dict, or a (dict, bytes)
        pair whose bytes ride as a buffer; raising CallError answers its message."""
        self._calls[method] = handler

    def _on_front_end(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "call":
            # Gateway I/O runs in a worker: the comm handler returns at once.
            threading.Thread(target=self._serve, args=(content,), daemon=True).start()
        else:
            self.on_front_end_message(content)

    def on_front_end_message(self, content: dict[str, Any]) -> None:
        """Messages other than calls (subclasses override)."""

    def _serve(self, call: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": "reply", "id": call.get("id")}
        buffers: list[bytes] = []
        handler = self._calls.get(str(call.get("method")))
        try:
            if handler is None:
                raise CallError(f"unknown call {call.get('method')!r}")
            result = handler(**(call.get("args") or {}))
            if isinstance(result, tuple):
                result, data = result
                buffers.append(bytes(data))
            reply["result"] = result
        except CallError as exc:
            reply["error"] = str(exc)
        except Exception as exc:  # reported to the view, never lost in the kernel's log
            log.debug("call %s failed", call.get("method"), exc_info=True)
            reply["error"] = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        self.send(reply, buffers or None)

    # --- followers, and closing ---------------------------------------------------------------

    def keep(self, key: str, follower: Follower) -> bool:
        """Stop `follower` when the view closes. False (nothing kept) when it is closed
        already or `key` has a follower: the caller then does not start it."""
        with self._followers_lock:
            if self._view_closed or key in self._followers:
                return False
            self._followers[key] = follower
            return True

    def stop_following(self, key: str) -> None:
        """Stop the follower of `key`, if any (the page closed the part of the view that asked
        for it); the view stays open."""
        with self._followers_lock:
            follower = self._followers.pop(key, None)
        if follower is not None:
            follower.stop()

    def release(self, key: str, follower: Follower) -> None:
        """`follower` of `key` has ended by itself."""
        with self._followers_lock:
            if self._followers.get(key) is follower:
                del self._followers[key]

    @traitlets.observe("comm")
    def _hear_comm_close(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            change["new"].on_close(self._closed_by_front_end)

    def _closed_by_front_end(self, _message: Any) -> None:
        """The front end closed the comm (its model was closed): no view of this widget can
        come back, so it closes here too (on the kernel's main thread)."""
        self.close()

    def close(self) -> None:
        """Close the comm and stop every follower (never waits for one: each ends by itself
        as soon as it wakes, and releases its stream)."""
        with self._followers_lock:
            self._view_closed = True
            followers, self._followers = list(self._followers.values()), {}
        for follower in followers:
            follower.stop()
        super().close()

    # --- display ------------------------------------------------------------------------------

    def fallback(self) -> dict[str, str]:
        """`text/plain` and `text/markdown` of the current content (subclasses override)."""
        return {"text/plain": repr(self)}

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
        return {**(data or {}), **self.fallback()}, {**(metadata or {}), **self.metadata()}

    def metadata(self) -> dict[str, Any]:
        """Provenance metadata for the output (subclasses override)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
