"""When an agent's sandbox loses its variables, the step and the next turn say so, to the user
(a step, a thought) and to the model (the step's result it reads): a kernel that ignored an
interrupt and was restarted, on a local sandbox and on a remote Jupyter kernel, and a new
kernel after the gateway itself restarted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import GatewayProcess, start_gateway
from tests.gateway.test_agents import fence, results, text_of, thoughts
from tests.sandbox.jupyter_servers import RunningServer, jupyter_server

SCRIPTED = {"type": "dynamic", "model": "scripted"}
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "x = 1\n"
    "while True:\n"
    "    time.sleep(0.05)"
)
# Runs past their time: interrupted, then (ignoring it) restarted.
SHORT_RUNS = {"interrupt_grace": 1.0, "limits": {"wall_seconds": 5}}


def result_text(interaction: Any) -> str:
    return text_of(results(interaction)[0].result)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with jupyter_server(tmp_path_factory.mktemp("remote")) as server:
        yield server


def settings_for(kind: str, remote: RunningServer | None) -> dict[str, Any]:
    if kind == "local":
        return {"sandbox_options": SHORT_RUNS}
    assert remote is not None
    return {
        "sandbox": "jupyter",
        "sandbox_options": {"url": remote.url, "token": remote.token, **SHORT_RUNS},
    }


@pytest.fixture(params=["local", "jupyter"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayProcess]:
    remote = request.getfixturevalue("remote") if request.param == "jupyter" else None
    process = start_gateway(tmp_path / "gateway", settings=settings_for(request.param, remote))
    yield process
    process.stop()


async def test_a_restart_after_an_ignored_interrupt_is_told_now_and_next_turn(
    gateway: GatewayProcess,
) -> None:
    async with gateway.aio() as aio:
        first = await aio.interactions.create(
            agent="local-agent", agent_config=SCRIPTED, input=fence(STUBBORN)
        )
        assert first.status == "completed", first
        told = result_text(first)
        assert "KernelRestarted" in told and "variables are lost" in told  # the step says so
        second = await aio.interactions.create(
            agent="local-agent",
            agent_config=SCRIPTED,
            environment=first.environment_id,
            input=fence("print('x' in globals())"),
        )
        assert second.status == "completed", second
        assert result_text(second) == "False\n"
        assert "kernel was restarted" in thoughts(second)  # what the user sees
        # The scripted model answers with the last result it was given: what the model read.
        assert "kernel was restarted" in second.output_text


@pytest.mark.parametrize("kind", ["local", "jupyter"])
async def test_a_new_kernel_after_a_gateway_restart_is_told_and_the_files_stay(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    remote = request.getfixturevalue("remote") if kind == "jupyter" else None
    gateway = start_gateway(tmp_path / "gateway", settings=settings_for(kind, remote))
    try:
        async with gateway.aio() as aio:
            first = await aio.interactions.create(
                agent="local-agent",
                agent_config=SCRIPTED,
                input=fence("x = 1\nopen('kept.txt', 'w').write('kept')\nprint(x)"),
            )
            assert result_text(first) == "1\n", first
        env = first.environment_id
        gateway.restart()
        async with gateway.aio() as aio:
            if kind == "local":  # served before any turn: its quota disk is mounted again
                listing = await aio.environments.files.list(env, "workspace")
                assert "kept.txt" in {f.name for f in listing.files}
            second = await aio.interactions.create(
                agent="local-agent",
                agent_config=SCRIPTED,
                environment=env,
                input=fence("print(open('kept.txt').read(), 'x' in globals())"),
            )
            assert result_text(second) == "kept False\n"
            assert "variables from earlier turns are lost" in thoughts(second)
            assert "variables from earlier turns are lost" in second.output_text
    finally:
        gateway.stop()
