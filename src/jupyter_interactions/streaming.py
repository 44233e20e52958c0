"""A turn's event stream, read off the kernel's main thread, and stopped on an interrupt.

A worker thread reads the stream and feeds the Transcript; the main thread only waits. So an
interrupt (Kernel > Interrupt, SIGINT) lands in our wait, never inside the SDK's HTTP stack.
Interrupted, the turn is cancelled on the server as soon as its id is known (the stream's first
event, `interaction.created`, names it) and the stream is read to its end, so the transcript
keeps everything that came before the cancel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .protocol import PAUSED, TERMINAL
from .render.transcript import Transcript

# How long an interrupted turn waits for its id, the cancel and the end of its stream. A
# further interrupt meanwhile is ignored: the turn is already stopping.
STOP_SECONDS = 15.0


class TurnStream:
    """Feeds `transcript` from `open_stream()` (the SDK's streaming create) in a worker."""

    def __init__(
        self,
        open_stream: Callable[[], AbstractContextManager[Any]],
        transcript: Transcript,
        cancel: Callable[[str], str | None],
        on_event: Callable[[Any], None] | None = None,
    ) -> None:
        self.transcript = transcript
        self._on_event = on_event  # called in the worker after each event is folded
        self.lock = threading.Lock()  # held while the transcript changes or is read
        self.error: BaseException | None = None
        self._open = open_stream
        self._cancel = cancel
        self._changed = threading.Event()
        self._ended = threading.Event()
        self._stopping = False
        self._cancelling: threading.Thread | None = None
        self._cancel_status: str | None = None
        self._cancel_error: BaseException | None = None
        self._worker = threading.Thread(target=self._read, name="interaction-stream", daemon=True)

    def start(self) -> TurnStream:
        self._worker.start()
        return self

    def _read(self) -> None:
        try:
            with self._open() as events:
                for event in events:
                    with self.lock:
                        self.transcript.feed(event)
                    self._changed.set()  # a flag the waiting thread looks at, not a wake-up
                    if self._on_event is not None:
                        self._on_event(event)
                    if self._stopping:
                        self._cancel_once()  # the server has just named the interaction
        except BaseException as exc:  # handed to the waiting thread
            self.error = exc
        finally:
            self._ended.set()

    def wait(
        self, on_change: Callable[[], None] | None = None, interval: float = 0.1
    ) -> Transcript:
        """Wait for the end of the stream, calling `on_change` (lock held) at most every
        `interval` seconds while events come: the worker never has to wake this thread per
        event. Raises what the stream raised; a KeyboardInterrupt can only land here."""
        while not self._ended.wait(None if on_change is None else interval):
            if on_change is not None and self._changed.is_set():
                self._changed.clear()
                with self.lock:
                    on_change()
        if self.error is not None:
            raise self.error
        return self.transcript

    # --- after an interrupt --------------------------------------------------------------

    def stop(self) -> str:
        """Cancel the interaction (now, or once the server names it), read the stream to its
        end, and say in one line what became of it."""
        self._stopping = True
        self._cancel_once()
        deadline = time.monotonic() + STOP_SECONDS
        _wait_through_interrupts(self._ended.wait, deadline)
        if self._cancelling is not None:
            _wait_through_interrupts(self._cancelling.join, deadline)
        with self.lock:
            return self._outcome()

    def _cancel_once(self) -> None:
        with self.lock:
            interaction_id = self.transcript.interaction_id
            running = self.transcript.status not in TERMINAL | PAUSED
            if self._cancelling is not None or interaction_id is None or not running:
                return
            self._cancelling = threading.Thread(
                target=self._send_cancel, args=(interaction_id,), daemon=True
            )
        self._cancelling.start()

    def _send_cancel(self, interaction_id: str) -> None:
        try:
            self._cancel_status = self._cancel(interaction_id)
        except BaseException as exc:
            self._cancel_error = exc

    def _outcome(self) -> str:
        transcript = self.transcript
        interaction_id, status = transcript.interaction_id, transcript.status
        if interaction_id is None:
            if self._ended.is_set():
                return "interrupted before the server answered: nothing was started"
            return (
                "interrupted before the server named the interaction: it is cancelled when it does"
            )
        if status == "cancelled" or self._cancel_status == "cancelled":
            transcript.status = "cancelled"
            return f"interrupted: cancelled {interaction_id}"
        if status in TERMINAL | PAUSED:
            return f"interrupted: {interaction_id} had already ended ({status})"
        if self._cancel_error is not None:
            reason = getattr(self._cancel_error, "message", None) or str(self._cancel_error)
            return (
                f"interrupted, but {interaction_id} could not be cancelled ({reason}); it may "
                f"still be running: %interactions cancel {interaction_id}"
            )
        return f"interrupted: asked the server to cancel {interaction_id}"


def _wait_through_interrupts(wait: Callable[[float], Any], deadline: float) -> None:
    """Call `wait(timeout)` until it returns or the deadline passes, ignoring interrupts."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            wait(remaining)
            return
        except KeyboardInterrupt:
            continue
