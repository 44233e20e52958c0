"""Helpers shared by the model adapter tests (a module, not a conftest, so tests import it)."""

from __future__ import annotations

import socket

from jupyter_interactions.gateway.models.base import (
    Finish,
    Model,
    ModelEvent,
    ModelRequest,
    TextDelta,
)

LLAMA_KEY = "test-key-4f9c2a"


async def collect(model: Model, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def assert_contract(events: list[ModelEvent]) -> None:
    """What every adapter promises: exactly one Finish, and it comes last."""
    finishes = [e for e in events if isinstance(e, Finish)]
    assert len(finishes) == 1, events
    assert events[-1] is finishes[0], events


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
