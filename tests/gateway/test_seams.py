"""The seams others build on, exercised in-process with the real SDK over loopback:
handlers mounted under a prefix (as the Jupyter server extension mounts them), an agent
runner in `engine.agents`, and an `upstream` that claims gemini-* models.

The upstream here is a stand-in that answers locally: the real one (upstream.py) needs
Google's service, which tests never contact."""

from __future__ import annotations

import pytest
from google import genai
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from jupyter_interactions.config import GatewayConfig, Secret
from jupyter_interactions.gateway.http.app import make_handlers
from jupyter_interactions.gateway.runs.executors import AgentContext
from jupyter_interactions.gateway.upstream.forward import UpstreamRun
from jupyter_interactions.gateway.wiring import GatewayState

PREFIX = "/user/me/interactions"


class CodeAgent:
    """Runs 'code' the way the local agent will report it: call, result, answer."""

    async def run(self, ctx: AgentContext) -> None:
        emitter = ctx.emitter
        call = emitter.start(
            {"type": "code_execution_call", "id": "call_1", "arguments": {"code": ""}}
        )
        code = {"code": "print(6 * 7)", "language": "python"}
        emitter.delta(call, {"type": "code_execution_call", "arguments": code})
        emitter.stop(call)
        result = emitter.start({"type": "code_execution_result", "call_id": "call_1", "result": ""})
        emitter.delta(result, {"type": "code_execution_result", "result": "4"})
        emitter.delta(result, {"type": "code_execution_result", "result": "2\n"})
        emitter.stop(result)
        assert ctx.environment_root is not None
        (ctx.environment_root / "workspace" / "answer.txt").write_text("42")
        answer = emitter.start({"type": "model_output", "content": []})
        emitter.text(answer, f"system={ctx.system_instruction} asked={ctx.messages[-1].text}")
        emitter.stop(answer)
        emitter.add_usage(input_tokens=5, output_tokens=7)


class LocalStandInUpstream:
    def __init__(self) -> None:
        self.calls = 0

    def handles(self, model: str | None, agent: str | None) -> bool:
        return bool(model and model.startswith("gemini-"))

    async def run(self, body, previous_upstream_id, emitter) -> UpstreamRun:
        self.calls += 1
        index = emitter.start({"type": "model_output", "content": []})
        emitter.text(index, f"previous={previous_upstream_id} input={body['input']}")
        emitter.stop(index)
        return UpstreamRun(f"up_{self.calls}")


@pytest.fixture
async def mounted(tmp_path):
    config = GatewayConfig(token=Secret("mounted-token"), data_dir=tmp_path)
    state = GatewayState(config, upstream=LocalStandInUpstream())
    await state.start()
    state.engine.agents["code-agent"] = CodeAgent()
    server = HTTPServer(Application(make_handlers(PREFIX, state)))
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}{PREFIX}/"
    client = genai.Client(
        api_key="mounted-token", http_options={"base_url": url, "retry_options": {"attempts": 1}}
    )
    yield client.aio
    await client.aio.aclose()
    client.close()
    server.stop()
    await state.stop()
    await server.close_all_connections()


async def test_agent_runner_steps_stream_merge_and_store(mounted):
    events = [
        e
        async for e in await mounted.interactions.create(
            agent="code-agent", input="what is 6*7?", environment={"type": "remote"}, stream=True
        )
    ]
    starts = [e.step.type for e in events if e.event_type == "step.start"]
    assert starts == ["code_execution_call", "code_execution_result", "model_output"]
    assert events[-1].interaction.status == "completed"
    stored = await mounted.interactions.get(events[0].interaction.id)
    call, result, _answer = stored.steps
    assert call.arguments.code == "print(6 * 7)" and call.arguments.language == "python"
    assert result.result == "42\n" and result.call_id == "call_1"
    assert stored.output_text == "system=None asked=what is 6*7?"
    assert stored.usage.total_tokens == 12
    files = await mounted.environments.files.list(stored.environment_id, "workspace")
    assert [f.name for f in files.files] == ["answer.txt"]


async def test_custom_agent_extends_a_runner(mounted):
    await mounted.agents.create(
        id="careful", base_agent="code-agent", system_instruction="Be careful."
    )
    it = await mounted.interactions.create(
        agent="careful", input="go", environment={"type": "remote"}
    )
    assert it.status == "completed"
    assert it.output_text == "system=Be careful. asked=go"


async def test_upstream_gets_gemini_models_and_the_previous_upstream_id(mounted):
    first = await mounted.interactions.create(model="gemini-3-flash", input="one")
    assert first.output_text == "previous=None input=one"
    second = await mounted.interactions.create(
        model="gemini-3-flash", input="two", previous_interaction_id=first.id
    )
    assert second.output_text == "previous=up_1 input=two"
    # Local models still run locally.
    assert (await mounted.interactions.create(model="echo", input="here")).output_text == "here"


async def test_uploads_and_downloads_under_a_prefix(mounted):
    env = await mounted.environments.create()
    placed = await mounted.environments.files.upload(
        environment=env.id, path="workspace/in.txt", file=b"under a prefix"
    )
    assert placed.files[0].path == "workspace/in.txt"
    data = await mounted.environments.files.download(environment=env.id, path="workspace/in.txt")
    assert data == b"under a prefix"
