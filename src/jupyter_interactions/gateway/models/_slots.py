"""`Slots`: at most N turns at once inside an in-process model; later ones wait in arrival order
and are told their place in the queue whenever it changes.

A model object may be shared by event loops in several threads (the gateway has one; tests
have one per test), so the bookkeeping is under a thread lock and each waiter is woken in its
own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    granted: bool = False

    def wake(self) -> bool:
        """Tell the waiter to look again; False if its loop is gone (nobody is waiting)."""
        try:
            self.loop.call_soon_threadsafe(self.changed.set)
        except RuntimeError:
            return False
        return True


class Slots:
    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._busy = 0
        self._queue: list[_Waiter] = []

    @property
    def busy(self) -> int:
        return self._busy

    async def enter(self) -> AsyncIterator[int]:
        """Take a slot. While every slot is busy, yields this turn's place in the queue (1 is
        next) each time it changes; ends once the slot is held. Pair with `release()`."""
        waiter = _Waiter(asyncio.get_running_loop())
        with self._lock:
            if self._busy < self.size and not self._queue:
                self._busy += 1
                return
            self._queue.append(waiter)
        shown, holding = 0, False
        try:
            while True:
                with self._lock:
                    if waiter.granted:
                        holding = True
                        return
                    place = self._queue.index(waiter) + 1
                    waiter.changed.clear()
                if place != shown:
                    shown = place
                    yield place
                await waiter.changed.wait()
        finally:
            if not holding:  # cancelled or closed while waiting
                with self._lock:
                    granted = waiter.granted
                    if not granted:
                        self._queue.remove(waiter)
                        self._wake_all()
                if granted:  # a slot came in the meantime: hand it on
                    self.release()

    def release(self) -> None:
        with self._lock:
            while self._queue:
                waiter = self._queue.pop(0)
                waiter.granted = True
                if waiter.wake():
                    self._wake_all()  # everyone behind it moved up one place
                    return
            self._busy -= 1

    def _wake_all(self) -> None:
        for waiter in self._queue:
            waiter.wake()
