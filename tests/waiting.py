"""Waiting in a test for a change that comes by an event the test cannot wait on directly
(a thread's view of the gateway, a line in a server's log)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    predicate: Callable[[], Any], bound: float = 60, failure: Callable[[], str] | str = ""
) -> None:
    """Poll `predicate` until it holds. `bound` (seconds) only ends a hang: the failure is
    that the change never came (`failure` says what was seen instead), never a speed."""
    deadline = time.monotonic() + bound
    while not predicate():
        if time.monotonic() >= deadline:
            seen = failure() if callable(failure) else failure
            raise AssertionError(f"the change never came{': ' + seen if seen else ''}")
        time.sleep(0.02)
