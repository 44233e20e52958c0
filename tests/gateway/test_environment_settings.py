"""An environment's variables (`env` of the interaction's environment object) and its network
allowlist, through the real SDK against a real gateway: the agent's code sees the variables in
Python and bash, turn after turn and in forks; updates merge; values never come back in a
response, the gateway's log or its database's readable files. An allowlist lets the agent's
code reach the listed hosts (here only a listener this test opens on loopback) and no others.
What this gateway cannot honour (credentials, header transforms, an allowlist in a tier
without a network namespace) is refused with a message that says what to do."""

from __future__ import annotations

import os
import secrets
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.conftest import GatewayProcess, start_gateway

from jupyter_interactions._sdk import errors
from jupyter_interactions.sandbox.isolation import available_tiers

SCRIPTED = {"type": "dynamic", "model": "scripted"}
SHOW_PYTHON = "```python\nimport os\nprint(os.environ.get('API_URL'), os.environ.get('TOKEN'))\n```"
SHOW_BASH = '```bash\necho "$API_URL $TOKEN"\n```'


def outputs(interaction: Any) -> list[str]:
    return [
        "".join(getattr(block, "text", "") or "" for block in step.result)
        if not isinstance(step.result, str)
        else step.result
        for step in interaction.steps or []
        if step.type == "code_execution_result"
    ]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """This module's own gateway (its sandboxes stop with it); conftest's `aclient` uses it."""
    process = start_gateway(tmp_path_factory.mktemp("variables"))
    yield process
    process.stop()


async def agent_turn(aclient: Any, input: str, **options: Any) -> Any:
    """One local-agent turn with the scripted model: each fenced block is one code step."""
    return await aclient.interactions.create(
        agent="local-agent", agent_config=SCRIPTED, input=input, **options
    )


async def test_code_sees_the_variables_and_their_values_are_never_served(
    aclient: Any, gateway: GatewayProcess
) -> None:
    token = "tok-" + secrets.token_hex(12)
    first = await agent_turn(
        aclient,
        SHOW_PYTHON + "\n" + SHOW_BASH,
        environment={
            "type": "remote",
            "env": {"API_URL": "http://example.invalid/v1", "TOKEN": {"value": token}},
        },
    )
    assert first.status == "completed", first
    expected = f"http://example.invalid/v1 {token}\n"
    assert outputs(first) == [expected, expected]
    env_id = first.environment_id

    # The next turn in the same environment (by id) still has them.
    second = await agent_turn(
        aclient, SHOW_BASH, previous_interaction_id=first.id, environment=env_id
    )
    assert outputs(second) == [expected]

    # Names are echoed, values are not (only the code's own output shows what it printed).
    fetched = await aclient.interactions.get(first.id)
    for shown in (first, fetched):
        assert shown.environment.env == {"API_URL": "***", "TOKEN": "***"}
    assert token not in (await aclient.environments.get(env_id)).model_dump_json()
    assert token not in gateway.stderr_path.read_text()
    database = gateway.data_dir / "gateway.sqlite3"
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600


async def test_an_update_merges_and_a_fork_inherits(aclient: Any) -> None:
    first = await agent_turn(
        aclient,
        "```python\nprint('ready')\n```",
        environment={"type": "remote", "env": {"API_URL": "one", "TOKEN": "kept"}},
    )
    env_id = first.environment_id
    updated = await agent_turn(
        aclient,
        SHOW_BASH + "\n```bash\ncat added.txt\n```",
        environment={
            "type": "remote",
            "environment_id": env_id,
            "env": {"API_URL": "two"},
            "sources": [{"type": "inline", "content": "x", "target": "workspace/added.txt"}],
        },
    )
    assert updated.environment_id == env_id
    assert outputs(updated) == ["two kept\n", "x"]

    # An update with a bad source changes nothing, not even the good sources before it.
    with pytest.raises(errors.BadRequestError, match="not valid base64"):
        await agent_turn(
            aclient,
            SHOW_BASH,
            environment={
                "type": "remote",
                "environment_id": env_id,
                "env": {"API_URL": "three"},
                "sources": [
                    {"type": "inline", "content": "y", "target": "workspace/first.txt"},
                    {"type": "inline", "content": "%%", "encoding": "base64", "target": "b"},
                ],
            },
        )
    listing = await aclient.environments.files.list(env_id, "workspace")
    assert "first.txt" not in {f.name for f in listing.files}

    fork = await aclient.environments.create(from_environment=f"environments/{env_id}")
    forked = await agent_turn(aclient, SHOW_BASH, environment=fork.id)
    assert outputs(forked) == ["two kept\n"]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"env": {"TOKEN": {"credential": "credentials/abc"}}}, "give the value itself"),
        ({"env": {"BAD NAME": "x"}}, "not a valid variable name"),
        ({"env": {"N": "a\x00b"}}, "cannot contain a NUL"),
        (
            {"network": {"allowlist": [{"domain": "a.org", "transform": {"X-Key": "k"}}]}},
            "header transforms",
        ),
    ],
    ids=["credential", "name", "nul", "transform"],
)
async def test_what_cannot_be_honoured_is_refused(
    aclient: Any, environment: dict[str, Any], message: str
) -> None:
    before = len((await aclient.environments.list(page_size=1000)).environments or [])
    with pytest.raises(errors.BadRequestError) as excinfo:
        await agent_turn(
            aclient, "```python\nprint(1)\n```", environment={"type": "remote", **environment}
        )
    assert message in str(excinfo.value)
    # Nothing half made: no environment was left behind.
    after = len((await aclient.environments.list(page_size=1000)).environments or [])
    assert after == before


async def test_a_disabled_network_is_accepted_and_kept(aclient: Any) -> None:
    created = await aclient.environments.create(network="disabled")
    assert created.network == "disabled"


FETCH = """```python
import urllib.request, urllib.error
try:
    print(urllib.request.urlopen("http://127.0.0.1:{port}/data", timeout=10).read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code, exc.read().decode().strip())
except OSError as exc:
    print("failed", type(exc).__name__)
```"""


class _Data(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"from host")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def listener() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Data)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.skipif("bubblewrap" not in available_tiers(), reason="needs bubblewrap here")
async def test_an_allowlist_lets_the_agent_reach_listed_hosts_only(
    aclient: Any, listener: int
) -> None:
    closed = await agent_turn(aclient, FETCH.format(port=listener))
    assert outputs(closed) == ["failed URLError\n"]  # no network by default

    allowed = await agent_turn(
        aclient,
        FETCH.format(port=listener),
        environment={"type": "remote", "network": {"allowlist": [{"domain": "127.0.0.1"}]}},
    )
    assert outputs(allowed) == ["from host\n"], allowed
    assert allowed.environment.network.allowlist[0].domain == "127.0.0.1"

    # Narrowed while its sandbox runs: the next turn is refused, and told why.
    narrowed = await agent_turn(
        aclient,
        FETCH.format(port=listener),
        environment={
            "type": "remote",
            "environment_id": allowed.environment_id,
            "network": {"allowlist": [{"domain": "*.example.invalid"}]},
        },
    )
    assert outputs(narrowed) == [
        "403 jupyter-interactions egress: 127.0.0.1 is not in this environment's network "
        "allowlist\n"
    ]


async def test_a_tier_without_a_network_namespace_refuses_an_allowlist(
    gateway_factory: Any,
) -> None:
    gateway = gateway_factory(settings={"sandbox_options": {"tier": "limits"}})
    async with gateway.aio() as aclient:
        with pytest.raises(errors.BadRequestError) as excinfo:
            await aclient.environments.create(network={"allowlist": [{"domain": "pypi.org"}]})
        assert "needs the bubblewrap tier" in str(excinfo.value)
