"""The widget tests' fixtures: the real-kernel ones of tests/kernel, and a session of each
test's own on the shared loopback gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.kernel.conftest import isolated, kernel

from jupyter_interactions import Session

__all__ = ["isolated", "kernel", "session"]


@pytest.fixture
def session(gateway: Any, request: pytest.FixtureRequest) -> Iterator[Session]:
    """A session with a key of its own (no other test's jobs or threads), closed after."""
    key = f"{request.node.name}-{time.monotonic_ns()}"
    s = Session(key, url=gateway.url, token=gateway.token)
    yield s
    s.close()
