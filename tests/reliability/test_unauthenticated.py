"""2,000 requests without the gateway's token, over every route (with ids that exist): each
is a 401 in the reference's shape, whether the token is missing, wrong in x-goog-api-key or
Authorization, or sent as `?key=` (Google's API takes keys there; the gateway does not, and
must not log them either). Afterwards the gateway's log, a 0600 file, holds none of the
tokens and none of the bodies."""

from __future__ import annotations

import base64
import os
import random
import secrets
import stat
from typing import Any

import httpx2 as httpx

REQUESTS = 2000
SEED = int(os.environ.get("RELIABILITY_SEED", "7"))
MARKER = "BODY-MARKER"
NAMED_TOKEN = "5ec7e7" * 10 + "abcd"  # an auth token in a path, as the SDK deletes one


def routes(ids: dict[str, str]) -> list[tuple[str, str]]:
    """Every route and method the gateway serves, with real ids, under several versions;
    and a few it does not serve (those are 401 too: nothing is said before auth)."""
    served = [
        ("POST", "/v1/interactions"),
        ("GET", "/v1/interactions/{interaction}"),
        ("GET", "/v1/interactions/{interaction}?stream=true&last_event_id=ev_1"),
        ("DELETE", "/v1/interactions/{interaction}"),
        ("POST", "/v1/interactions/{interaction}/cancel"),
        ("POST", "/v1/interactions/{interaction}/auth_tokens"),
        ("DELETE", "/v1/interactions/{interaction}/auth_tokens/" + NAMED_TOKEN),
        ("GET", "/v1/interactions/live"),
        ("GET", "/v1/agents?page_size=5"),
        ("POST", "/v1/agents"),
        ("GET", "/v1/agents/{agent}"),
        ("DELETE", "/v1/agents/{agent}"),
        ("GET", "/v1/environments"),
        ("GET", "/v1/environments?mode=on_demand"),
        ("POST", "/v1/environments"),
        ("GET", "/v1/environments/{environment}"),
        ("DELETE", "/v1/environments/{environment}"),
        ("GET", "/v1/environments/{environment}/files/workspace?recursive=true"),
        ("GET", "/v1/environments/{environment}/files/workspace/data.txt?alt=media"),
        ("GET", "/v1/environments/{environment}/files/workspace?alt=media&recursive=true"),
        ("PUT", "/upload/v1/environments/{environment}/files/workspace/new.txt"),
        ("POST", "/upload/v1/environments/{environment}/files/workspace/new.txt?upload_id=u_1"),
        ("GET", "/v1/sessions/nb.ipynb"),
        ("DELETE", "/v1/sessions/nb.ipynb/threads"),
        ("PUT", "/v1/sessions/nb.ipynb/threads/main"),
        ("DELETE", "/v1/sessions/nb.ipynb/threads/main"),
        ("GET", "/v1/sessions/nb.ipynb/cassette"),
        ("PUT", "/v1/sessions/nb.ipynb/cassette"),
        ("GET", "/v1/sessions/nb.ipynb/events"),
        ("GET", "/v1/sessions/nb.ipynb/events?last_event_id=se_0123abcd_1"),
        ("GET", "/v1/models?pageSize=2&pageToken=2"),
        ("GET", "/v1/models/echo"),
        ("GET", "/v1/nothing/here"),
        ("PATCH", "/v1/interactions"),
    ]
    found = []
    for version in ("v1", "v1beta", "v1alpha", "v1beta1/projects/p/locations/global"):
        for method, path in served:
            for name, value in ids.items():
                path = path.replace("{" + name + "}", value)
            found.append((method, path.replace("/v1/", f"/{version}/", 1)))
    return found


def credentials(pick: random.Random, token: str) -> tuple[dict[str, str], str, list[str]]:
    """Headers and a query for one request, and the secrets they carry (to look for)."""
    wrong = secrets.token_urlsafe(pick.choice([8, 24, 32]))
    basic = base64.b64encode(f"user:{wrong}".encode()).decode()
    choices: list[tuple[dict[str, str], str]] = [
        ({}, ""),
        ({"x-goog-api-key": wrong}, ""),
        ({"x-goog-api-key": ""}, ""),
        ({"x-goog-api-key": token + wrong[:4]}, ""),
        ({"Authorization": f"Bearer {wrong}"}, ""),
        ({"Authorization": f"token {wrong}"}, ""),
        ({"Authorization": f"Basic {basic}"}, ""),
        ({}, f"key={wrong}"),
        ({}, f"key={token}"),  # the right token, where Google's API would take it
        ({"x-goog-api-key": wrong}, f"key={wrong}&alt=json"),
    ]
    headers, query = pick.choice(choices)
    return headers, query, [wrong, basic]


def test_every_route_refuses_a_missing_or_wrong_token_and_logs_no_secret(
    gateway_factory: Any,
) -> None:
    gateway = gateway_factory()
    ids = _resources(gateway)
    pick = random.Random(SEED)
    secrets_sent = {gateway.token, NAMED_TOKEN}
    statuses: dict[int, int] = {}
    table = routes(ids)
    with httpx.Client(base_url=gateway.url.rstrip("/"), timeout=60) as http:
        for index in range(REQUESTS):
            method, path = pick.choice(table)
            headers, query, carried = credentials(pick, gateway.token)
            secrets_sent.update(carried)
            if query:
                path += ("&" if "?" in path else "?") + query
            body = f'{{"model": "echo", "input": "{MARKER}-{index}", "head": null}}'.encode()
            response = http.request(
                method, path, headers=headers, content=body if method in ("POST", "PUT") else None
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code == 401, (method, path, response.text)
            error = response.json()["error"]
            assert error["code"] == "unauthenticated" and "token" in error["message"]
            assert gateway.token not in response.text
    assert statuses == {401: REQUESTS}

    gateway.stop()  # every line is written
    log_file = gateway.stderr_path
    assert stat.S_IMODE(os.stat(log_file).st_mode) == 0o600
    log = log_file.read_text()
    assert log.count(" 401 ") >= REQUESTS  # the access lines are there, and clean:
    leaked = [s for s in secrets_sent if s in log]
    assert not leaked, f"{len(leaked)} secrets in the gateway's log"
    assert MARKER not in log


def _resources(gateway: Any) -> dict[str, str]:
    """An interaction, an environment with a file, and an agent, made with the token."""
    sdk = gateway.client()
    try:
        interaction = sdk.interactions.create(model="echo", input="exists")
        environment = sdk.environments.create(
            sources=[{"type": "inline", "content": "x", "target": "workspace/data.txt"}]
        )
        agent = sdk.agents.create(id="exists", base_agent="local-agent")
        return {"interaction": interaction.id, "environment": environment.id, "agent": agent.id}
    finally:
        sdk.close()
