"""Tools, as documented (ai.google.dev/gemini-api/docs/interactions tools, Google's Python
samples, google-genai 3.6's tool_search): `code_execution` on a model call runs in a local
sandbox, `mcp_server` reaches a real MCP server on loopback, Google's own tools are refused
offline with a 400 that says how to get them, and with a key they go to Google intact.
Only base_url and the model name change (`gemini-3.6-flash` -> `scripted`, `echo`, `local`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from google.genai import interactions as itypes
from tests.gateway.documented.gateways import fence
from tests.gateway.fake_google import serving
from tests.gateway.mcp_weather import mcp_weather

from jupyter_interactions._sdk import errors

__all__ = ["mcp_weather"]

FIBONACCI = "fib = [0, 1]\nwhile len(fib) < 10:\n    fib.append(fib[-1] + fib[-2])\nprint(fib)"
GOOGLE_ONLY = [
    ({"type": "google_search"}, "Who is the current president of France?"),
    ({"type": "url_context"}, "Summarize https://www.example.com"),
    ({"type": "google_maps", "latitude": 37.7749, "longitude": -122.4194}, "Best food near me?"),
    ({"type": "file_search", "file_search_store_names": ["stores/x"]}, "What documents?"),
    ({"type": "computer_use"}, "Find a flight to Tokyo"),
    ({"type": "tool_search"}, "Find the stock price of GOOG"),
]


# -- code execution on a model call -------------------------------------------------------------


def test_code_execution_sample(client: Any) -> None:
    response = client.interactions.create(
        model="scripted",
        tools=[{"type": "code_execution"}],
        input="Calculate the first 10 Fibonacci numbers\n"
        + fence(
            "fib = [0, 1]\nwhile len(fib) < 10:\n    fib.append(fib[-1] + fib[-2])\nprint(fib)"
        ),
    )
    print(response.output_text)
    assert response.status == "completed"
    assert "[0, 1, 1, 2, 3, 5, 8, 13, 21, 34]" in response.output_text
    call, result = response.steps[0], response.steps[1]
    assert isinstance(call, itypes.CodeExecutionCallStep) and call.arguments.language == "python"
    assert isinstance(result, itypes.CodeExecutionResultStep) and result.call_id == call.id
    # The code ran in a sandbox of its own; the next turn continues in it.
    assert response.environment_id
    follow = client.interactions.create(
        model="scripted",
        tools=[{"type": "code_execution"}],
        previous_interaction_id=response.id,
        input=fence("print(sum(fib))"),
    )
    assert follow.environment_id == response.environment_id
    assert "88" in follow.output_text


def test_code_execution_on_a_model_runs_in_the_environment_it_names(client: Any) -> None:
    env = client.environments.create(
        sources=[{"type": "inline", "target": "/workspace/data.csv", "content": "a,b\n1,2"}]
    )
    response = client.interactions.create(
        model="scripted",
        tools=[{"type": "code_execution"}],
        environment=env.id,
        input=fence("print(open('data.csv').read())"),
    )
    assert response.environment_id == env.id and "a,b" in response.output_text
    client.environments.delete(id=env.id)


def test_code_execution_streams_its_steps(client: Any) -> None:
    stream = client.interactions.create(
        model="scripted",
        tools=[{"type": "code_execution"}],
        input=fence("print(6 * 7)"),
        stream=True,
    )
    events = list(stream)
    starts = [e.step for e in events if isinstance(e, itypes.StepStart)]
    assert [type(s) for s in starts] == [
        itypes.CodeExecutionCallStep,
        itypes.CodeExecutionResultStep,
        itypes.ModelOutputStep,
    ]
    assert events[-1].interaction.status == "completed"


# -- Google's own tools -------------------------------------------------------------------------


@pytest.mark.parametrize(("tool", "prompt"), GOOGLE_ONLY, ids=[t["type"] for t, _ in GOOGLE_ONLY])
def test_google_tools_are_refused_offline_with_advice(client: Any, tool: Any, prompt: str) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(model="local", tools=[tool], input=prompt)
    message = str(refused.value)
    assert f"tool {tool['type']!r}" in message and "GEMINI_API_KEY" in message


def test_tool_search_with_deferred_mcp_is_refused(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="local",
            input="What is the weather in Boston?",
            tools=[
                itypes.ToolSearch(),
                itypes.MCPServer(
                    name="weather_server", url="https://example.com/mcp", defer_loading=True
                ),
            ],
        )
    assert "'tool_search'" in str(refused.value)


def test_a_google_only_tool_on_the_local_agent_is_refused(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            agent="local-agent",
            input="Summarize the content of https://www.wikipedia.org/.",
            tools=[{"type": "url_context"}],
            background=True,
        )
    assert "'url_context'" in str(refused.value)


# -- MCP servers ---------------------------------------------------------------------------------


def test_mcp_server_sample(client: Any, mcp_weather: str) -> None:
    response = client.interactions.create(
        model="echo",
        tools=[{"type": "mcp_server", "name": "weather_service", "url": mcp_weather}],
        input="Today is 12-05-2025, what is the temperature today in London?",
    )
    print(response.output_text)
    assert response.status == "completed", response.errors


def test_the_model_calls_an_mcp_tool_and_gets_its_result(client: Any, mcp_weather: str) -> None:
    response = client.interactions.create(
        model="echo",  # calls the tool the input names
        tools=[{"type": "mcp_server", "name": "weather_service", "url": mcp_weather}],
        input='call get_temperature {"city": "London"}',
    )
    assert response.status == "completed"
    call, result, answer = response.steps
    assert isinstance(call, itypes.MCPServerToolCallStep)
    assert (call.name, call.server_name, call.arguments) == (
        "get_temperature",
        "weather_service",
        {"city": "London"},
    )
    assert isinstance(result, itypes.MCPServerToolResultStep)
    assert result.call_id == call.id and result.result == "It is 21C in London."
    assert isinstance(answer, itypes.ModelOutputStep)
    assert response.output_text == "get_temperature returned: It is 21C in London."


def test_mcp_steps_stream_as_typed_events(client: Any, mcp_weather: str) -> None:
    stream = client.interactions.create(
        model="echo",
        tools=[{"type": "mcp_server", "name": "weather_service", "url": mcp_weather}],
        input='call get_temperature {"city": "Paris"}',
        stream=True,
    )
    events = list(stream)
    starts = [e.step for e in events if isinstance(e, itypes.StepStart)]
    assert [type(s) for s in starts] == [
        itypes.MCPServerToolCallStep,
        itypes.MCPServerToolResultStep,
        itypes.ModelOutputStep,
    ]
    assert not [e for e in events if type(e).__name__.startswith("Unknown")]


def test_mcp_headers_and_allowed_tools(client: Any, mcp_weather: str) -> None:
    server = {
        "type": "mcp_server",
        "name": "Deployment Tracker",
        "url": mcp_weather,
        "headers": {"Authorization": "Bearer my-token"},
        "allowed_tools": [{"tools": ["whoami"]}],
    }
    who = client.interactions.create(model="echo", tools=[server], input="call whoami")
    assert who.output_text == "whoami returned: Bearer my-token"
    # A tool allowed_tools leaves out is not offered: the model cannot call it.
    barred = client.interactions.create(
        model="echo", tools=[server], input='call get_temperature {"city": "Rome"}'
    )
    assert [s.type for s in barred.steps] == ["model_output"]


def test_mcp_on_the_local_agent(client: Any, mcp_weather: str) -> None:
    interaction = client.interactions.create(
        agent="local-agent",
        agent_config={"type": "dynamic", "model": "echo"},
        input='call get_temperature {"city": "Oslo"}',
        tools=[{"type": "mcp_server", "name": "weather", "url": mcp_weather}],
        environment="remote",
    )
    assert interaction.status == "completed"
    assert interaction.output_text == "get_temperature returned: It is 21C in Oslo."


def test_mcp_server_off_loopback_needs_the_allowlist(client: Any) -> None:
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="echo",
            tools=[
                {
                    "type": "mcp_server",
                    "name": "weather_service",
                    "url": "https://gemini-api-demos.uc.r.appspot.com/mcp",
                }
            ],
            input="What is the temperature today in London?",
        )
    assert "allowlist" in str(refused.value) and "gemini-api-demos" in str(refused.value)


def test_an_unreachable_mcp_server_fails_the_interaction_clearly(client: Any) -> None:
    response = client.interactions.create(
        model="echo",
        tools=[{"type": "mcp_server", "name": "gone", "url": "http://127.0.0.1:9/mcp"}],
        input="hi",
    )
    assert response.status == "failed"
    assert "cannot reach MCP server 'gone'" in response.errors[0].message


# -- with a key: forwarded to Google intact ------------------------------------------------------


class _RecordingGoogle(tornado.web.RequestHandler):
    """Google, as far as the gateway can tell: records each create and streams an answer."""

    bodies: ClassVar[list[dict[str, Any]]] = []

    def post(self, *_: Any) -> None:
        body = json.loads(self.request.body)
        type(self).bodies.append(body)
        interaction = {"id": "int_google", "status": "in_progress", "model": body.get("model")}
        events = [
            {"event_type": "interaction.created", "interaction": interaction},
            {"event_type": "step.start", "index": 0, "step": {"type": "model_output"}},
            {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": "ok"}},
            {"event_type": "step.stop", "index": 0},
            {
                "event_type": "interaction.completed",
                "interaction": {"id": "int_google", "status": "completed"},
            },
        ]
        self.set_header("Content-Type", "text/event-stream")
        for number, event in enumerate(events, 1):
            self.write(f"data: {json.dumps({**event, 'event_id': f'ev_{number}'})}\n\n")
        self.finish()


@pytest.fixture
def recording_google() -> Iterator[str]:
    _RecordingGoogle.bodies = []
    with serving(_RecordingGoogle) as url:
        yield url


def test_with_a_key_google_tools_modalities_and_media_go_to_google(
    gateway_factory: Any, recording_google: str
) -> None:
    front = gateway_factory(
        env={"GEMINI_API_KEY": "AIza" + "k" * 35},
        settings={"upstream_url": recording_google, "upstream_attempts": 1},
    )
    client = front.client()
    tools = [tool for tool, _ in GOOGLE_ONLY] + [{"type": "code_execution"}]
    image = {"type": "image", "data": "iVBORw0KGgo=", "mime_type": "image/png"}
    response = client.interactions.create(
        model="gemini-3.6-flash",
        tools=tools,
        response_modalities=["image", "text"],
        input=[{"type": "text", "text": "What is in this picture?"}, image],
    )
    assert response.status == "completed" and response.output_text == "ok"
    (sent,) = _RecordingGoogle.bodies
    assert sent["tools"] == tools
    assert sent["response_modalities"] == ["image", "text"]
    assert sent["input"][0]["content"][1] == image
    client.close()
