"""A gateway for the documented agent and environment examples, and helpers they share.

The examples run as the docs write them, with only base_url, the model name and the agent
(Google's antigravity-* -> `local-agent`) changed. This gateway names the deterministic
`scripted` model `local`, so `local-agent`'s default model runs the fenced code blocks of an
input and then answers; the docs' prose inputs (no code) get a plain answer. The real local
model in an agent loop is tested in tests/gateway/test_agents.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import GatewayProcess, start_gateway

TERMINAL = {"completed", "failed", "cancelled", "incomplete", "budget_exceeded", "requires_action"}


@pytest.fixture(scope="module")
def docs_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(
        tmp_path_factory.mktemp("docs-gateway"), models={"local": {"adapter": "scripted"}}
    )
    yield process
    process.stop()


@pytest.fixture
def client(docs_gateway: GatewayProcess) -> Iterator[Any]:
    """The docs' `client = genai.Client()`, pointed at the docs gateway."""
    sdk = docs_gateway.client()
    yield sdk
    sdk.close()


def wait_for(client: Any, interaction_id: str, timeout: float = 120) -> Any:
    """Poll as the docs' background examples do, until the interaction stops."""
    deadline = time.monotonic() + timeout
    while True:
        interaction = client.interactions.get(interaction_id)
        if interaction.status in TERMINAL or time.monotonic() > deadline:
            return interaction
        time.sleep(0.2)


def fence(code: str) -> str:
    return f"```python\n{code}\n```"
