"""The `openai` adapter against real OpenAI-compatible servers on 127.0.0.1.

Model output comes from llama.cpp's own server (xllamacpp) running SmolLM2; protocol cases a
small model never produces (fragmented tool calls, reasoning, 500s) come from a scripted
aiohttp server that also records what the adapter sent.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from adapter_checks import LLAMA_KEY, assert_contract, collect, free_port, text_of

from jupyter_interactions.errors import ConfigError, RequestError, UpstreamError
from jupyter_interactions.gateway.models import ModelRegistry
from jupyter_interactions.gateway.models.base import (
    Finish,
    Message,
    ModelRequest,
    TextDelta,
    ThoughtDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from jupyter_interactions.gateway.models.openai_compat import OpenAICompatibleModel

WEATHER = ToolSpec(
    "get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}}
)


def ask(text: str, **generation: object) -> ModelRequest:
    return ModelRequest((Message("user", text),), generation={"temperature": 0, **generation})


def sse(*chunks: object) -> list[str]:
    lines = []
    for chunk in chunks:
        lines += [f"data: {json.dumps(chunk)}", ""]
    return [*lines, "data: [DONE]", ""]


def delta(finish: str | None = None, **fields: object) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": finish}]}


# -- against llama.cpp's real server ---------------------------------------------------------


@pytest.mark.slow
async def test_streams_a_real_answer_over_http(llama_server) -> None:
    model = OpenAICompatibleModel(
        "smol", base_url=f"{llama_server.url}/v1", model="smol", api_key=LLAMA_KEY
    )
    try:
        events = await collect(model, ask("Name three fruits.", max_output_tokens=30))
    finally:
        await model.aclose()
    assert_contract(events)
    assert len([e for e in events if isinstance(e, TextDelta)]) > 3
    assert len(text_of(events).split()) >= 3
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.input_tokens > 5 and 0 < usage.output_tokens <= 30
    assert events[-1] in (Finish("stop"), Finish("length"))


@pytest.mark.slow
async def test_limits_and_stop_sequences_reach_the_server(llama_server) -> None:
    model = OpenAICompatibleModel(
        "smol", base_url=f"{llama_server.url}/v1", model="smol", api_key=LLAMA_KEY
    )
    try:
        limited = await collect(model, ask("Write about Rome.", max_output_tokens=4))
        stopped = await collect(
            model,
            ask(
                "Count from 1 to 10, separated by commas.",
                max_output_tokens=40,
                stop_sequences=["5"],
            ),
        )
    finally:
        await model.aclose()
    assert limited[-2].output_tokens == 4 and limited[-1] == Finish("length")  # type: ignore[union-attr]
    assert "4" in text_of(stopped) and "5" not in text_of(stopped)
    assert stopped[-1] == Finish("stop")


@pytest.mark.slow
async def test_tool_history_is_accepted(llama_server) -> None:
    model = OpenAICompatibleModel(
        "smol", base_url=f"{llama_server.url}/v1", model="smol", api_key=LLAMA_KEY
    )
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    request = ModelRequest(
        (
            Message("user", "Weather in Paris?"),
            Message("assistant", tool_calls=(call,)),
            Message("tool", "sunny, 21C", tool_call_id="call_1", name="get_weather"),
        ),
        tools=(WEATHER,),
        generation={"temperature": 0, "max_output_tokens": 10},
    )
    try:
        events = await collect(model, request)
    finally:
        await model.aclose()
    assert_contract(events)


@pytest.mark.slow
async def test_cancelling_closes_the_stream_and_the_server_stops(llama_server) -> None:
    model = OpenAICompatibleModel(
        "smol", base_url=f"{llama_server.url}/v1", model="smol", api_key=LLAMA_KEY
    )
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream(ask("Write a long essay about Rome.", max_output_tokens=1000)):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 30)
    assert any(slot["is_processing"] for slot in await asyncio.to_thread(llama_server.slots))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    # The server notices the closed connection and frees its slot (it checks about once a
    # second); unstopped, 1000 tokens would keep it busy far longer than this bound.
    deadline = time.perf_counter() + 30
    while any(slot["is_processing"] for slot in await asyncio.to_thread(llama_server.slots)):
        assert time.perf_counter() < deadline, "the server is still generating"
        await asyncio.sleep(0.1)
    await model.aclose()


@pytest.mark.slow
async def test_a_wrong_key_is_a_config_error_that_never_shows_the_key(llama_server) -> None:
    secret = "sk-wrong-0123456789"
    model = OpenAICompatibleModel(
        "smol", base_url=f"{llama_server.url}/v1", model="smol", api_key=secret
    )
    with pytest.raises(ConfigError) as caught:
        await collect(model, ask("hi"))
    await model.aclose()
    message = str(caught.value)
    assert "401" in message and llama_server.url in message and "api_key" in message
    # Nor does the model keep it where a repr shows it: its own, or any of its attributes'.
    assert secret not in message and secret not in repr(model) and secret not in repr(vars(model))


@pytest.mark.slow
async def test_too_long_a_conversation_is_a_request_error(llama_server) -> None:
    model = OpenAICompatibleModel(
        "smol", base_url=f"{llama_server.url}/v1", model="smol", api_key=LLAMA_KEY
    )
    with pytest.raises(RequestError, match=r"400.*context"):
        await collect(model, ask("hello " * 3000))
    await model.aclose()


# -- protocol cases from a scripted server ---------------------------------------------------


async def test_fragmented_tool_calls_and_reasoning(scripted_server) -> None:
    scripted_server.reply(
        lines=[
            ": keep-alive",
            *sse(
                delta(role="assistant", reasoning_content="Need the "),
                delta(reasoning_content="weather."),
                delta(content="Checking."),
                delta(
                    tool_calls=[
                        {
                            "index": 0,
                            "id": "c1",
                            "function": {"name": "get_weather", "arguments": '{"ci'},
                        }
                    ]
                ),
                delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]),
                delta(
                    tool_calls=[
                        {
                            "index": 1,
                            "id": "c2",
                            "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
                        }
                    ]
                ),
                delta("tool_calls"),
                {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9}},
            ),
        ]
    )
    model = OpenAICompatibleModel(
        "remote",
        base_url=scripted_server.url,
        model="m1",
        api_key="sk-abc",
        headers={"X-Team": "t1"},
    )
    request = ModelRequest(
        (
            Message("user", "Weather?"),
            Message("assistant", "Let me see.", (ToolCall("c0", "get_weather", {"city": "Oslo"}),)),
            Message("tool", "boom", tool_call_id="c0", name="get_weather", is_error=True),
        ),
        system_instruction="Be brief.",
        tools=(WEATHER,),
        generation={
            "temperature": 0.5,
            "top_p": 0.9,
            "seed": 3,
            "max_output_tokens": 50,
            "stop_sequences": ["END"],
            "tool_choice": "any",
            "thinking_level": "low",
        },
    )
    events = await collect(model, request)
    await model.aclose()
    assert events == [
        ThoughtDelta("Need the "),
        ThoughtDelta("weather."),
        TextDelta("Checking."),
        ToolCall("c1", "get_weather", {"city": "Paris"}),
        ToolCall("c2", "get_weather", {"city": "Rome"}),
        Usage(input_tokens=12, output_tokens=9),
        Finish("tool_calls"),
    ]
    sent = scripted_server.requests[0]
    assert sent["headers"]["Authorization"] == "Bearer sk-abc"
    assert sent["headers"]["X-Team"] == "t1"
    assert sent["json"] == {
        "model": "m1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "Let me see.",
                "tool_calls": [
                    {
                        "id": "c0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c0", "content": "Error: boom"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": WEATHER.parameters,
                },
            }
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 3,
        "max_tokens": 50,
        "stop": ["END"],
        "reasoning_effort": "low",  # thinking_level, as OpenAI-compatible servers name it
        "tool_choice": "required",
    }


async def test_a_json_schema_is_passed_on_and_hidden_thoughts_stay_hidden(scripted_server) -> None:
    scripted_server.reply(
        lines=sse(
            delta(role="assistant", reasoning_content="Thinking."),
            delta(content='{"answer": 4}'),
            delta("stop"),
        )
    )
    model = OpenAICompatibleModel("remote", base_url=scripted_server.url, model="m")
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    request = ModelRequest(
        (Message("user", "2+2?"),),
        generation={"thinking_summaries": "none"},
        output_schema=schema,
    )
    events = await collect(model, request)
    await model.aclose()
    assert events == [TextDelta('{"answer": 4}'), Finish("stop")]  # no ThoughtDelta
    sent = scripted_server.requests[0]["json"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }
    assert "thinking_summaries" not in sent


async def test_a_server_that_says_stop_after_a_tool_call_still_finishes_with_tool_calls(
    scripted_server,
) -> None:
    # Ollama reports finish_reason "stop" alongside tool calls, and sends no usage.
    scripted_server.reply(
        lines=sse(
            delta(
                tool_calls=[{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]
            ),
            delta("stop"),
        )
    )
    model = OpenAICompatibleModel("remote", base_url=scripted_server.url, model="m")
    events = await collect(model, ModelRequest((Message("user", "x"),), tools=(WEATHER,)))
    await model.aclose()
    assert isinstance(events[0], ToolCall) and events[0].arguments == {"city": "Oslo"}
    assert events[0].id.startswith("call_")
    assert events[1:] == [Finish("tool_calls")]


async def test_a_500_is_an_upstream_error_naming_the_server(scripted_server) -> None:
    scripted_server.reply(status=500, body='{"error": {"message": "GPU on fire (key sk-zzz)"}}')
    model = OpenAICompatibleModel(
        "remote", base_url=scripted_server.url, model="m", api_key="sk-zzz"
    )
    with pytest.raises(UpstreamError) as caught:
        await collect(model, ask("hi"))
    await model.aclose()
    message = str(caught.value)
    assert scripted_server.url in message and "500" in message and "GPU on fire" in message
    assert "sk-zzz" not in message


async def test_an_error_in_the_middle_of_the_stream(scripted_server) -> None:
    scripted_server.reply(
        lines=[
            *sse(delta(content="Hel"))[:2],
            'error: {"code": 500, "message": "slot crashed", "type": "server_error"}',
            "",
        ]
    )
    model = OpenAICompatibleModel("remote", base_url=scripted_server.url, model="m")
    seen = []
    with pytest.raises(UpstreamError, match="slot crashed"):
        async for event in model.stream(ask("hi")):
            seen.append(event)
    await model.aclose()
    assert seen == [TextDelta("Hel")]


async def test_a_404_says_to_check_base_url(scripted_server) -> None:
    model = OpenAICompatibleModel(
        "remote", base_url=scripted_server.url.removesuffix("/v1"), model="m"
    )
    with pytest.raises(ConfigError, match=r"404.*base_url"):
        await collect(model, ask("hi"))
    await model.aclose()


async def test_server_down_is_a_config_error_naming_base_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAICompatibleModel("ollama", base_url=url, model="qwen2.5", api_key="sk-secret-1")
    with pytest.raises(ConfigError) as caught:
        await collect(model, ask("hi"))
    await model.aclose()
    message = str(caught.value)
    assert url in message and "models.ollama" in message and "sk-secret-1" not in message


def test_base_url_and_model_are_required() -> None:
    with pytest.raises(ConfigError, match=r"needs 'base_url' and 'model'"):
        OpenAICompatibleModel("qwen", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(ConfigError, match=r"unknown options \['key'\]"):
        OpenAICompatibleModel("qwen", base_url="http://127.0.0.1:1/v1", model="m", key="x")
    registry = ModelRegistry(
        {"qwen": {"adapter": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}}
    )
    assert isinstance(registry.get("qwen"), OpenAICompatibleModel)
    assert "openai" not in registry.names()
