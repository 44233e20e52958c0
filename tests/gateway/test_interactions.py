"""Interactions through the real google-genai SDK (sync and async) against a real gateway:
create (unary, stream, background), get, attach/resume, cancel, delete, chains, tools."""

from __future__ import annotations

import asyncio
import json

import pytest

from jupyter_interactions._sdk import errors

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def wait_for(api, interaction_id, statuses, timeout=120.0):  # a bound on hangs only
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        interaction = await api.call("interactions.get", interaction_id)
        if interaction.status in statuses:
            return interaction
        assert asyncio.get_running_loop().time() < deadline, interaction.status
        await asyncio.sleep(0.05)


async def test_unary_create_then_get(api):
    created = await api.call("interactions.create", model="echo", input="hello gateway world")
    assert created.status == "completed"
    assert created.output_text == "hello gateway world"
    assert created.model == "echo"
    assert created.id.startswith("int_")
    assert created.usage.total_tokens == created.usage.total_input_tokens + 3
    fetched = await api.call("interactions.get", created.id, include_input=True)
    assert fetched.output_text == "hello gateway world"
    assert fetched.input == "hello gateway world"
    assert fetched.created == created.created
    assert (await api.call("interactions.get", created.id)).input is None


async def test_stream_event_order(api):
    events = await api.events(
        "interactions.create", model="echo", input="one two three", stream=True
    )
    kinds = [e.event_type for e in events]
    assert kinds == [
        "interaction.created",
        "interaction.status_update",
        "step.start",
        "step.delta",
        "step.delta",
        "step.delta",
        "step.stop",
        "interaction.completed",
    ]
    assert [e.event_id for e in events] == [f"ev_{i}" for i in range(1, 9)]
    assert events[0].interaction.status == "in_progress"
    assert events[1].status == "in_progress"
    assert events[2].index == 0 and events[2].step.type == "model_output"
    assert "".join(e.delta.text for e in events if e.event_type == "step.delta") == "one two three"
    final = events[-1].interaction
    assert final.status == "completed" and final.usage.total_output_tokens == 3
    # The stored interaction is the merge of the stream.
    stored = await api.call("interactions.get", events[0].interaction.id)
    assert stored.output_text == "one two three"
    assert [s.type for s in stored.steps] == ["model_output"]


async def test_resume_gives_exactly_the_missed_events(api):
    full = await api.events("interactions.create", model="echo", input="a b c d e", stream=True)
    interaction_id = full[0].interaction.id
    for seen in (1, 3, len(full) - 1):
        missed = await api.events(
            "interactions.get",
            interaction_id,
            stream=True,
            last_event_id=full[seen - 1].event_id,
        )
        assert [e.event_id for e in missed] == [e.event_id for e in full[seen:]]
        assert [e.event_type for e in missed] == [e.event_type for e in full[seen:]]
    everything = await api.events("interactions.get", interaction_id, stream=True)
    assert [e.event_id for e in everything] == [e.event_id for e in full]


async def test_attach_to_running_background_and_resume_after_drop(api):
    words = " ".join(f"w{i}" for i in range(12))
    job = await api.call("interactions.create", model="slow", input=words, background=True)
    assert job.status == "in_progress"
    # A client that reads a few events and drops...
    first = await api.events("interactions.get", job.id, stream=True, limit=4)
    assert first[0].event_type == "interaction.created"
    # ...resumes after the last one it saw and gets the rest, live, to the end.
    rest = await api.events(
        "interactions.get", job.id, stream=True, last_event_id=first[-1].event_id
    )
    ids = [int(e.event_id[3:]) for e in first + rest]
    assert ids == list(range(1, len(ids) + 1))
    assert rest[-1].event_type == "interaction.completed"
    assert rest[-1].interaction.status == "completed"
    text = "".join(e.delta.text for e in first + rest if e.event_type == "step.delta")
    assert text.split() == words.split()


async def test_background_then_poll(api):
    job = await api.call("interactions.create", model="slow", input="x y z", background=True)
    assert job.status == "in_progress"
    assert job.output_text == ""
    done = await wait_for(api, job.id, {"completed"})
    assert done.output_text.split() == ["x", "y", "z"]


async def test_cancel_running_background(api):
    words = " ".join(["word"] * 200)  # about 10 s at the slow model's pace
    job = await api.call("interactions.create", model="slow", input=words, background=True)
    await api.events("interactions.get", job.id, stream=True, limit=3)  # it is producing
    cancelled = await api.call("interactions.cancel", job.id)
    assert cancelled.status == "cancelled"
    assert (await api.call("interactions.get", job.id)).status == "cancelled"
    tail = await api.events("interactions.get", job.id, stream=True)
    assert tail[-1].event_type == "interaction.completed"
    assert tail[-1].interaction.status == "cancelled"
    with pytest.raises(errors.BadRequestError) as excinfo:
        await api.call("interactions.cancel", job.id)
    assert "not running" in str(excinfo.value)


async def test_function_call_round_trip(api):
    paused = await api.call(
        "interactions.create",
        model="echo",
        input='call get_weather {"city": "Paris"}',
        tools=[WEATHER],
    )
    assert paused.status == "requires_action"
    (call,) = [s for s in paused.steps if s.type == "function_call"]
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}
    resumed = await api.call(
        "interactions.create",
        model="echo",
        previous_interaction_id=paused.id,
        input=[
            {
                "type": "function_result",
                "call_id": call.id,
                "name": "get_weather",
                "result": "sunny, 21C",
            }
        ],
        tools=[WEATHER],
    )
    assert resumed.status == "completed"
    assert resumed.output_text == "get_weather returned: sunny, 21C"


async def test_three_turn_chain_model_sees_everything(api):
    first = await api.call("interactions.create", model="transcript", input="alpha")
    second = await api.call(
        "interactions.create", model="transcript", input="beta", previous_interaction_id=first.id
    )
    third = await api.call(
        "interactions.create", model="transcript", input="gamma", previous_interaction_id=second.id
    )
    assert third.output_text == (
        "user:alpha | assistant:user:alpha | user:beta | "
        "assistant:user:alpha | assistant:user:alpha | user:beta | user:gamma"
    )


async def test_store_false_keeps_nothing(api):
    it = await api.call("interactions.create", model="echo", input="secret", store=False)
    assert it.status == "completed" and it.output_text == "secret"
    with pytest.raises(errors.NotFoundError):
        await api.call("interactions.get", it.id)
    with pytest.raises(errors.NotFoundError) as excinfo:
        await api.call(
            "interactions.create", model="echo", input="more", previous_interaction_id=it.id
        )
    assert "store=false" in str(excinfo.value)


async def test_delete(api):
    it = await api.call("interactions.create", model="echo", input="bye")
    assert await api.call("interactions.delete", it.id) is None
    with pytest.raises(errors.NotFoundError):
        await api.call("interactions.get", it.id)
    with pytest.raises(errors.NotFoundError):
        await api.call("interactions.delete", it.id)


async def test_delete_running_cancels_it(api):
    job = await api.call("interactions.create", model="slow", input="a " * 100, background=True)
    await api.call("interactions.delete", job.id)
    with pytest.raises(errors.NotFoundError):
        await api.call("interactions.get", job.id)


async def test_max_output_tokens_gives_incomplete(api):
    it = await api.call(
        "interactions.create",
        model="echo",
        input="one two three four five",
        generation_config={"max_output_tokens": 2},
    )
    assert it.status == "incomplete"
    assert it.output_text == "one two "


async def test_model_error_fails_the_interaction_not_the_gateway(api):
    events = await api.events("interactions.create", model="broken", input="x", stream=True)
    kinds = [e.event_type for e in events]
    assert kinds[-2:] == ["error", "interaction.completed"]
    assert "crashed on purpose" in events[-2].error.message
    assert events[-1].interaction.status == "failed"
    stored = await api.call("interactions.get", events[0].interaction.id)
    assert stored.status == "failed"
    assert "crashed on purpose" in stored.errors[0].message
    # The gateway still answers.
    assert (await api.call("interactions.create", model="echo", input="ok")).output_text == "ok"


async def test_input_forms(api):
    blocks = await api.call(
        "interactions.create", model="echo", input=[{"type": "text", "text": "from blocks"}]
    )
    assert blocks.output_text == "from blocks"
    one = await api.call("interactions.create", model="echo", input={"type": "text", "text": "one"})
    assert one.output_text == "one"
    steps = await api.call(
        "interactions.create",
        model="transcript",
        input=[
            {"type": "user_input", "content": [{"type": "text", "text": "q"}]},
            {"type": "model_output", "content": [{"type": "text", "text": "a"}]},
            {"type": "user_input", "content": [{"type": "text", "text": "q2"}]},
        ],
        store=False,
    )
    assert steps.output_text == "user:q | assistant:a | user:q2"


async def test_unavailable_models_fail_fast_with_a_clear_message(api):
    with pytest.raises(errors.BadRequestError) as excinfo:
        await api.call("interactions.create", model="gemini-3-flash", input="hi")
    assert "GEMINI_API_KEY" in str(excinfo.value) and "model='local'" in str(excinfo.value)
    with pytest.raises(errors.BadRequestError) as excinfo:
        await api.call("interactions.create", model="no-such-model", input="hi")
    assert "unknown model" in str(excinfo.value)
    with pytest.raises(errors.BadRequestError) as excinfo:
        await api.call("interactions.create", agent="no-such-agent", input="hi")
    assert "unknown agent" in str(excinfo.value)
    with pytest.raises(errors.NotFoundError):
        await api.call("interactions.get", "int_doesnotexist")


async def test_many_background_jobs_do_not_slow_a_stream(api):
    # 20,000 words at the `slow` model's 50 ms each: every job runs for at least 1,000 s,
    # longer than any test may, so each is provably still running until it is cancelled.
    jobs = [
        await api.call("interactions.create", model="slow", input="a " * 20_000, background=True)
        for _ in range(15)
    ]
    for _ in range(3):
        events = await api.events(
            "interactions.create", model="echo", input="quick " * 50, stream=True
        )
        # The stream ran to its end while all 15 jobs were still generating: it was not
        # queued behind them (how fast it is beside them is for benchmarks/, not a test).
        assert events[-1].interaction.status == "completed"
    for job in jobs:
        assert (await api.call("interactions.get", job.id)).status == "in_progress"
        await api.call("interactions.cancel", job.id)
        assert (await api.call("interactions.get", job.id)).status == "cancelled"


async def test_foreground_stream_keeps_running_after_the_client_leaves(api):
    first = await api.events(
        "interactions.create", model="slow", input="p q r s t u", stream=True, limit=3
    )
    done = await wait_for(api, first[0].interaction.id, {"completed"})
    assert done.output_text.split() == ["p", "q", "r", "s", "t", "u"]


async def test_streamed_function_call_pauses_with_requires_action(api):
    events = await api.events(
        "interactions.create",
        model="echo",
        input='call get_weather {"city": "Oslo"}',
        tools=[WEATHER],
        stream=True,
    )
    (start,) = [e for e in events if e.event_type == "step.start"]
    assert start.step.type == "function_call" and start.step.arguments == {}
    deltas = [e.delta for e in events if e.event_type == "step.delta"]
    assert json.loads("".join(d.arguments for d in deltas)) == {"city": "Oslo"}
    assert [e.status for e in events if e.event_type == "interaction.status_update"] == [
        "in_progress",
        "requires_action",
    ]
    assert events[-1].event_type == "interaction.completed"
    assert events[-1].interaction.status == "requires_action"
