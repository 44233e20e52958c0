"""Live sandboxes of the local agent on a remote kernel (a real Jupyter Server on loopback):
the environment's files come from that sandbox, its sources are copied in, and deleting the
environment or stopping the gateway shuts its kernel down. Plus a sandbox kind chosen per
environment that does not exist, which fails the interaction with a message saying why."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import GatewayProcess, start_gateway
from tests.sandbox.jupyter_servers import RunningServer, jupyter_server

SCRIPTED = {"type": "dynamic", "model": "scripted"}


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


def kernels(server: RunningServer) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        server.url + "api/kernels", headers={"Authorization": f"token {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with jupyter_server(tmp_path_factory.mktemp("remote")) as server:
        yield server


@pytest.fixture
def remote_gateway(remote: RunningServer, tmp_path: Path) -> Iterator[GatewayProcess]:
    settings = {"sandbox": "jupyter", "sandbox_options": {"url": remote.url, "token": remote.token}}
    process = start_gateway(tmp_path / "gateway", settings=settings)
    yield process
    process.stop()


async def test_agent_on_a_remote_kernel_files_and_lifecycle(
    remote: RunningServer, remote_gateway: GatewayProcess
) -> None:
    sdk = remote_gateway.client()
    aio = sdk.aio
    try:
        before = len(kernels(remote))
        it = await aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment={
                "type": "remote",
                "sources": [{"type": "inline", "content": "abc", "target": "workspace/in.txt"}],
            },
            input=fence(
                "import os\ndata = open('in.txt').read()\n"
                "open('out.txt', 'w').write(data * 2)\nprint(os.getcwd().endswith('workspace'))"
            ),
        )
        assert it.status == "completed", it
        result = next(s for s in it.steps if s.type == "code_execution_result")
        assert result.result == "True\n"
        env = it.environment_id
        assert len(kernels(remote)) == before + 1  # the sandbox stays up between turns

        # The files live on the remote server; the gateway serves them from the sandbox.
        listing = await aio.environments.files.list(env, "workspace")
        assert {"in.txt", "out.txt"} <= {f.name for f in listing.files}
        assert (remote.root_dir / "interactions" / env / "workspace" / "out.txt").read_text() == (
            "abcabc"
        )
        data = sdk.environments.files.download(environment=env, path="workspace/out.txt")
        assert data == b"abcabc"

        # An upload while the sandbox is live reaches the remote kernel's files.
        await aio.environments.files.upload(environment=env, path="workspace/up.txt", file=b"xy")
        again = await aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment=env,
            input=fence("print(len(data), open('up.txt').read())"),
        )
        step = next(s for s in again.steps if s.type == "code_execution_result")
        assert step.result == "3 xy\n", step.result
        assert len(kernels(remote)) == before + 1  # the same kernel served the second turn

        await aio.environments.delete(env)
        assert len(kernels(remote)) == before  # deleting the environment stopped its kernel

        await aio.interactions.create(
            agent="local-agent", agent_config=SCRIPTED, input=fence("print(1)")
        )
        assert len(kernels(remote)) == before + 1
    finally:
        await aio.aclose()
        sdk.close()
    remote_gateway.stop()
    assert len(kernels(remote)) == before  # the gateway stopped its sandboxes on shutdown


async def test_unknown_sandbox_kind_fails_the_interaction_clearly(
    gateway_factory: Any,
) -> None:
    gateway = gateway_factory()
    async with gateway.aio() as aio:
        it = await aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment={"type": "remote", "sandbox": "no-such-kind"},
            input=fence("print(1)"),
        )
        assert it.status == "failed"
        message = it.errors[0].message
        assert "unknown sandbox kind 'no-such-kind'" in message and "local" in message


async def test_an_environment_asks_for_a_remote_kernel_on_a_local_gateway(
    remote: RunningServer, tmp_path: Path
) -> None:
    settings = {"sandbox_kinds": {"jupyter": {"url": remote.url, "token": remote.token}}}
    gateway = start_gateway(tmp_path / "gateway", settings=settings)
    try:
        async with gateway.aio() as aio:
            local = await aio.interactions.create(
                agent="local-agent", agent_config=SCRIPTED, input=fence("print('here')")
            )
            assert local.status == "completed", local
            it = await aio.interactions.create(
                agent="local-agent",
                agent_config=SCRIPTED,
                environment={"type": "remote", "sandbox": "jupyter"},
                input=fence("open('where.txt', 'w').write('remote'); print('there')"),
            )
            assert it.status == "completed", it
            written = (
                remote.root_dir / "interactions" / it.environment_id / "workspace" / "where.txt"
            )
            assert written.read_text() == "remote"
            # The gateway's default kind still served the first environment.
            assert not (remote.root_dir / "interactions" / local.environment_id).exists()
    finally:
        gateway.stop()
