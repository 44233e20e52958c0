"""The requests google-genai sends, recorded from the SDK itself against a real gateway: one
call of every method the gateway serves (plus the kernel's session routes, which are ours).
They are the fuzzer's starting points: ids they name become placeholders ({interaction},
{environment}, {agent}, {upload}) that the fuzzer fills with live ids or hostile ones."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx

from jupyter_interactions._sdk import errors

# Headers the transport adds by itself, or that the fuzzer sets (auth).
_DROPPED = {
    "host",
    "content-length",
    "accept-encoding",
    "connection",
    "user-agent",
    "x-goog-api-client",
    "x-goog-api-key",
    "authorization",
}
SCRIPTED = {"type": "dynamic", "model": "scripted"}
ABSENT_AGENT = "fuzz-absent-agent"
CODE = "```python\nprint(6 * 7)\n```"
SESSION = {
    "x-interactions-session": "fuzz.ipynb",
    "x-interactions-thread": "t",
    "x-interactions-cell": "3 0f1e2d3c",  # the kernel's cell, for record and replay
}
CSV = base64.b64encode(b"a,b\n1,2\n").decode()
# An MCP server on loopback that nothing serves: reachable by the rule, never connected to
# unless a run starts (the fuzzer's agent turns go to an absent agent).
MCP = {"type": "mcp_server", "name": "nothing", "url": "http://127.0.0.1:9/mcp"}


@dataclass
class Seed:
    """One request as sent on the wire; `target` is the percent-encoded path and query."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def route(self) -> str:
        """A label for reports: method and path with placeholders, no query."""
        return f"{self.method} {self.target.split('?')[0]}"


def record(url: str, token: str) -> list[Seed]:
    """Run one of each call through google-genai against the gateway at `url`, recording
    every request; then turn the ids they made into placeholders."""
    from google import genai

    seeds: list[Seed] = []

    def keep(request: httpx.Request) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        target = request.url.raw_path.decode("ascii")
        seeds.append(Seed(request.method, target, headers, bytes(request.content)))

    transport = httpx.Client(event_hooks={"request": [keep]}, timeout=120)
    options = {"base_url": url, "retry_options": {"attempts": 1}, "httpx_client": transport}
    sdk = genai.Client(api_key=token, http_options=options)
    try:
        made = _calls(sdk)
    finally:
        sdk.close()
        transport.close()
    return [_with_placeholders(seed, made) for seed in seeds] + _session_seeds()


def _calls(sdk: Any) -> dict[str, list[str]]:
    """One call of each kind; returns the ids made, by placeholder."""
    it = sdk.interactions
    first = it.create(model="echo", input="hello")
    try:  # media a text-only model cannot see: a 400, still a request the SDK sends
        it.create(
            model="echo", input=[{"text": "see"}, {"type": "image", "uri": "https://x/y.png"}]
        )
    except errors.APIError:
        pass
    it.create(
        model="echo",
        input=[{"text": "describe"}, {"type": "document", "data": CSV, "mime_type": "text/csv"}],
        system_instruction="Be brief.",
        generation_config={"temperature": 0.2, "top_p": 0.9, "max_output_tokens": 64, "seed": 7},
        tools=[{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        previous_interaction_id=first.id,
    )
    paused = it.create(
        model="echo",
        input='call get_weather {"city": "Paris"}',
        tools=[{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
    )
    call = next(s for s in paused.steps if s.type == "function_call")
    it.create(
        model="echo",
        previous_interaction_id=paused.id,
        input=[{"type": "function_result", "call_id": call.id, "name": call.name, "result": "21C"}],
    )
    for _ in it.create(model="echo", input="streamed", stream=True):
        pass
    background = it.create(model="echo", input="in the background", background=True)
    it.get(first.id)
    it.get(first.id, include_input=True)
    for _ in it.get(background.id, stream=True, last_event_id="ev_1"):
        pass
    try:
        it.cancel(first.id)  # finished: a 400, still a request the SDK sends
    except errors.APIError:
        pass
    gone = it.create(model="echo", input="to delete", store=True)
    it.delete(gone.id)
    token = it.auth_tokens.create(first.id)
    it.auth_tokens.delete(first.id, token.auth_token)
    try:
        it.auth_tokens.create(first.id, expire_time="2099-01-01T00:00:00Z")  # past 20 h: a 400
    except errors.APIError:
        pass

    environment = sdk.environments.create(
        sources=[{"type": "inline", "content": "a,b\n1,2\n", "target": "workspace/data.csv"}],
        network={"allowlist": [{"domain": "pypi.org"}]},
    )
    env = environment.id
    sdk.environments.list(page_size=2)
    sdk.environments.list(mode="on_demand")
    sdk.environments.get(env)
    sdk.environments.files.list(env, "workspace", recursive=True)
    sdk.environments.files.download(environment=env, path="workspace/data.csv")
    sdk.environments.files.download(environment=env, path="workspace")  # a directory: a tar
    sdk.environments.files.upload(
        environment=env, path="workspace/up.txt", file=b"uploaded", mime_type="text/plain"
    )
    spare = sdk.environments.create(from_environment=env)
    sdk.environments.delete(spare.id)

    sdk.agents.create(
        id="fuzz-agent",
        base_agent="local-agent",
        system_instruction="Answer in code.",
        agent_config={"type": "antigravity", "model": "scripted"},
        base_environment={
            "type": "remote",
            "sources": [{"type": "inline", "content": "x", "target": "workspace/x.txt"}],
        },
    )
    sdk.agents.list(page_size=2)
    list(sdk.models.list(config={"page_size": 6}))  # two pages: pageSize, then pageToken
    sdk.models.get(model="echo")
    sdk.agents.get("fuzz-agent")
    sdk.agents.create(id="fuzz-spare", base_agent="local-agent", base_environment=env, tools=[MCP])
    sdk.agents.delete("fuzz-spare")
    # An agent turn as the SDK sends it, to an agent that does not exist: the fuzzer checks
    # what reaches the engine without starting a sandbox for each request.
    # Every documented form of its environment (placement.py).
    for environment in (
        {"type": "remote", "env": {"FUZZ": "1"}},
        "remote",
        env,
        {"environment_id": env, "sources": [{"type": "inline", "content": "y", "target": "y"}]},
        {"type": "remote", "from_environment": env},
    ):
        try:
            it.create(
                agent=ABSENT_AGENT,
                agent_config={**SCRIPTED, "max_steps": "3", "max_wall_seconds": 60},
                environment=environment,
                input=CODE,
                tools=[MCP, {"type": "code_execution"}],
                extra_headers=SESSION,
            )
        except errors.APIError:
            pass
    return {
        "{interaction}": [first.id, paused.id, background.id, gone.id],
        "{environment}": [env, spare.id],
        "{agent}": ["fuzz-agent", "fuzz-spare"],
    }


def _with_placeholders(seed: Seed, made: dict[str, list[str]]) -> Seed:
    target, body = seed.target, seed.body.decode("utf-8", "replace")
    upload = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("upload_id")
    if upload:
        target = target.replace(upload[0], "{upload}")
    for placeholder, ids in made.items():
        for made_id in ids:
            target = target.replace(made_id, placeholder)
            body = body.replace(f'"{made_id}"', f'"{placeholder}"')
    return Seed(seed.method, target, seed.headers, body.encode())


def _session_seeds() -> list[Seed]:
    """The kernel's own routes (client.SessionRoutes): thread heads, jobs and the cassette.
    The cassette seeds never record: a recording writes where its path says, and the fuzzer's
    mutations must not pick where on this machine that is."""
    json_headers = {"content-type": "application/json"}
    head = json.dumps({"head": "{interaction}"}).encode()
    missing = json.dumps({"mode": "replay", "path": "/nonexistent/fuzz.interactions"}).encode()
    return [
        Seed("GET", "/v1/sessions/fuzz.ipynb"),
        Seed("PUT", "/v1/sessions/fuzz.ipynb/threads/main", json_headers, head),
        Seed("PUT", "/v1/sessions/fuzz.ipynb/threads/other", json_headers, b'{"head": null}'),
        Seed("DELETE", "/v1/sessions/fuzz.ipynb/threads/other"),
        Seed("DELETE", "/v1/sessions/gone.ipynb/threads"),
        Seed("GET", "/v1/sessions/fuzz.ipynb/cassette"),
        Seed("PUT", "/v1/sessions/fuzz.ipynb/cassette", json_headers, b'{"mode": "off"}'),
        Seed("PUT", "/v1/sessions/fuzz.ipynb/cassette", json_headers, missing),
        # The job board's stream of a session's job changes (it stays open: the fuzzer reads
        # its first event), fresh and resumed.
        Seed("GET", "/v1/sessions/fuzz.ipynb/events"),
        Seed("GET", "/v1/sessions/fuzz.ipynb/events?last_event_id=se_0123abcd_1"),
        Seed("GET", "/health"),
        # A directory's tar with everything below it (the SDK's download has no `recursive`).
        Seed("GET", "/v1beta/environments/{environment}/files/workspace?alt=media&recursive=true"),
    ]
