"""The scripted model: one run_code call per fenced block, then a summary; fully deterministic."""

from __future__ import annotations

import asyncio

from adapter_checks import assert_contract, collect, text_of

from jupyter_interactions.gateway.models.base import (
    Finish,
    Message,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from jupyter_interactions.gateway.models.scripted import ScriptedModel, code_blocks

RUN_CODE = (ToolSpec("run_code", "Run code in the sandbox"),)
TWO_BLOCKS = Message(
    "user",
    "First:\n```python\nx = 41\nprint(x + 1)\n```\nthen:\n```bash\necho done\n```\n",
)


def _answer(call: ToolCall, output: str, is_error: bool = False) -> tuple[Message, Message]:
    return (
        Message("assistant", tool_calls=(call,)),
        Message("tool", output, tool_call_id=call.id, name=call.name, is_error=is_error),
    )


async def test_two_blocks_run_in_order_then_a_summary_with_the_last_output() -> None:
    model = ScriptedModel()
    history: tuple[Message, ...] = (TWO_BLOCKS,)

    first = await collect(model, ModelRequest(history, tools=RUN_CODE))
    assert first == [
        ToolCall("call_1_1", "run_code", {"code": "x = 41\nprint(x + 1)", "language": "python"}),
        Usage(input_tokens=14, output_tokens=6),
        Finish("tool_calls"),
    ]
    history += _answer(first[0], "42\n")  # type: ignore[arg-type]

    second = await collect(model, ModelRequest(history, tools=RUN_CODE))
    assert second == [
        ToolCall("call_1_2", "run_code", {"code": "echo done", "language": "bash"}),
        Usage(input_tokens=15, output_tokens=2),
        Finish("tool_calls"),
    ]
    history += _answer(second[0], "done\n")  # type: ignore[arg-type]

    final = await collect(model, ModelRequest(history, tools=RUN_CODE))
    assert_contract(final)
    deltas = [e for e in final if isinstance(e, TextDelta)]
    assert len(deltas) > 1  # streamed, not one lump
    assert text_of(final) == "Ran 2 code blocks. Last output:\n```\ndone\n```"
    assert final[-2:] == [Usage(input_tokens=16, output_tokens=9), Finish("stop")]


async def test_a_failed_step_is_reported_and_the_next_block_still_runs() -> None:
    model = ScriptedModel()
    first = await collect(model, ModelRequest((TWO_BLOCKS,), tools=RUN_CODE))
    history = (TWO_BLOCKS, *_answer(first[0], "NameError: x", is_error=True))  # type: ignore[arg-type]

    second = await collect(model, ModelRequest(history, tools=RUN_CODE))
    assert isinstance(second[0], ToolCall) and second[0].arguments["code"] == "echo done"

    history += _answer(second[0], "done")  # type: ignore[arg-type]
    final = text_of(await collect(model, ModelRequest(history, tools=RUN_CODE)))
    assert final == "Ran 2 code blocks. Failed: block 1. Last output:\n```\ndone\n```"


async def test_a_new_user_message_starts_a_new_script() -> None:
    model = ScriptedModel()
    first = await collect(model, ModelRequest((TWO_BLOCKS,), tools=RUN_CODE))
    history = (
        TWO_BLOCKS,
        *_answer(first[0], "42"),  # type: ignore[arg-type]
        Message("assistant", "(stopped)"),
        Message("user", "```\nprint('again')\n```"),
    )
    events = await collect(model, ModelRequest(history, tools=RUN_CODE))
    # Earlier tool results belong to the earlier message; ids stay unique per turn.
    assert events[0] == ToolCall(
        "call_2_1", "run_code", {"code": "print('again')", "language": "python"}
    )


async def test_without_run_code_it_shows_what_it_would_run() -> None:
    model = ScriptedModel()
    events = await collect(model, ModelRequest((TWO_BLOCKS,)))
    assert_contract(events)
    assert not any(isinstance(e, ToolCall) for e in events)
    assert text_of(events) == (
        "Would run 2 code blocks (no run_code tool was offered):\n"
        "```python\nx = 41\nprint(x + 1)\n```\n```bash\necho done\n```"
    )


async def test_no_code_blocks() -> None:
    model = ScriptedModel()
    for tools in (RUN_CODE, ()):
        events = await collect(model, ModelRequest((Message("user", "hello"),), tools=tools))
        assert text_of(events) == "No code blocks to run."
        assert events[-1] == Finish("stop")
    assert text_of(await collect(model, ModelRequest(()))) == "No code blocks to run."


async def test_same_request_same_events() -> None:
    model = ScriptedModel()
    request = ModelRequest((TWO_BLOCKS,), tools=RUN_CODE)
    runs = await asyncio.gather(*(collect(model, request) for _ in range(3)))
    assert runs[0] == runs[1] == runs[2]
    assert runs[0] == await collect(ScriptedModel(), request)


def test_which_fences_are_code() -> None:
    text = (
        "```py\na = 1\n```\n"
        "```sh\nls\n```\n"
        "```json\n{}\n```\n"  # data, not code
        "  ```Shell\npwd\n  ```\n"
        "```python3 title='x'\nb = 2\n```\n"
        "```\n\nc = 3\n\n```"
    )
    assert code_blocks(text) == [
        ("python", "a = 1"),
        ("bash", "ls"),
        ("bash", "pwd"),
        ("python", "b = 2"),
        ("python", "\nc = 3"),
    ]


async def test_cancelling_the_consumer_stops_at_once() -> None:
    model = ScriptedModel(chunks=1000)
    long = Message("user", "word " * 5000)
    seen: list[object] = []

    async def consume() -> None:
        async for event in model.stream(ModelRequest((long,))):
            seen.append(event)
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    while not seen:
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert not any(isinstance(e, Finish) for e in seen)
