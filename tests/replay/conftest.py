"""Record/replay fixtures: a stand-in for Google (a real gateway whose config claims
`gemini-test` for the echo model and serves an `antigravity-test` agent built on the local
agent), a gateway that records through it with a key, and helpers for the cassette route."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import GatewayProcess

SCRIPTED = {"type": "dynamic", "model": "scripted"}
NOTEBOOK_SESSION = "sharing-test"


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


def agent_run(client: Any, code_block: str) -> Any:
    """The stand-in's agent runs `code_block` in a fresh environment; it must complete."""
    run = client.interactions.create(
        agent="antigravity-test",
        agent_config=SCRIPTED,
        environment={"type": "remote"},
        input=code_block,
    )
    assert run.status == "completed", run
    return run


def cassette_route(
    gateway: GatewayProcess, session: str = NOTEBOOK_SESSION, **body: Any
) -> dict[str, Any]:
    """GET (no body) or PUT a session's cassette state; an HTTP error raises with its body."""
    url = f"{gateway.url}v1/sessions/{urllib.parse.quote(session, safe='')}/cassette"
    data = json.dumps(body).encode() if body else None
    request = urllib.request.Request(url, data=data, method="PUT" if body else "GET")
    request.add_header("x-goog-api-key", gateway.token)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=120) as response:
        return dict(json.loads(response.read()))


def session_client(gateway: GatewayProcess, session: str = NOTEBOOK_SESSION, cell: str = "") -> Any:
    """An SDK client that says which session (and cell) its requests come from."""
    headers = {"x-interactions-session": session}
    if cell:
        headers["x-interactions-cell"] = cell
    return gateway.client(headers=headers)


def error_body(exc: urllib.error.HTTPError) -> str:
    return str(json.loads(exc.read())["error"]["message"])


@pytest.fixture
def google_key() -> str:
    return "AIza" + secrets.token_urlsafe(30)  # shaped like a real key, to hunt for leaks


@pytest.fixture
def stand_in(gateway_factory: Any, google_key: str) -> GatewayProcess:
    """Google's service, played by a real gateway on loopback that only takes `google_key`."""
    google = gateway_factory(token=google_key, models={"gemini-test": {"adapter": "echo"}})
    client = google.client()
    client.agents.create(id="antigravity-test", base_agent="local-agent")
    client.close()
    return google


@pytest.fixture
def recorder(gateway_factory: Any, stand_in: GatewayProcess, google_key: str) -> GatewayProcess:
    """A gateway holding the key, forwarding Gemini models and Google's agents to the stand-in."""
    return gateway_factory(
        env={"GEMINI_API_KEY": google_key},
        settings={"upstream_url": stand_in.url, "upstream_attempts": 1},
    )


@pytest.fixture
def cassette_dir(tmp_path: Path) -> Path:
    return tmp_path / "notebooks" / "sharing.interactions"
