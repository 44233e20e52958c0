"""Tool calls as text, for chat templates without tools (SmolLM2): prompt rewrite and parsing."""

from __future__ import annotations

from jupyter_interactions.gateway.models._chat_completions import chat_body
from jupyter_interactions.gateway.models._tool_text import ToolCallText, rewrite_body
from jupyter_interactions.gateway.models.base import (
    Message,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolSpec,
)

WEATHER = ToolSpec("get_weather", "Current weather", {"type": "object"})


def parse(pieces: list[str]) -> tuple[str, list[tuple[str, dict]]]:
    parser = ToolCallText()
    events = [e for piece in pieces for e in parser.feed(piece)] + parser.finish()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return text, [(c.name, c.arguments) for c in parser.calls]


def test_calls_are_found_however_the_stream_is_split() -> None:
    answer = (
        'Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call> ok'
    )
    expected = ("Sure.  ok", [("get_weather", {"city": "Paris"})])
    assert parse([answer]) == expected
    assert parse(list(answer)) == expected  # one character at a time
    assert parse([answer[:9], answer[9:20], answer[20:]]) == expected


def test_a_list_of_calls_and_an_unclosed_block_at_the_end() -> None:
    answer = '<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]'
    assert parse([answer]) == ("", [("a", {}), ("b", {"x": 1})])


def test_text_that_only_looks_like_a_call_stays_text() -> None:
    assert parse(["a <tool", "_call>not json</tool_call> b"]) == (
        "a <tool_call>not json</tool_call> b",
        [],
    )
    assert parse(["x < y and <tool_c"]) == ("x < y and <tool_c", [])
    assert parse(["<tool_call>[]</tool_call>done"]) == ("done", [])


def test_text_streams_without_waiting_for_the_end() -> None:
    parser = ToolCallText()
    assert parser.feed("Hello wor") == [TextDelta("Hello wor")]
    assert parser.feed("ld <tool") == [TextDelta("ld ")]  # only a possible marker is held


def test_history_and_tools_are_rewritten_as_text() -> None:
    request = ModelRequest(
        (
            Message("user", "Weather in Paris and Rome?"),
            Message(
                "assistant",
                "Checking.",
                (
                    ToolCall("c1", "get_weather", {"city": "Paris"}),
                    ToolCall("c2", "get_weather", {"city": "Rome"}),
                ),
            ),
            Message("tool", "sunny", tool_call_id="c1", name="get_weather"),
            Message("tool", "rain", tool_call_id="c2", name="get_weather", is_error=True),
        ),
        system_instruction="Be brief.",
        tools=(WEATHER,),
        generation={"tool_choice": "auto", "max_output_tokens": 9},
    )
    body = rewrite_body(chat_body(request))
    assert "tools" not in body and "tool_choice" not in body
    assert body["max_tokens"] == 9
    system, user, assistant, results = body["messages"]
    assert system["role"] == "system" and system["content"].startswith("Be brief.\n\n")
    assert '"name": "get_weather"' in system["content"] and "<tool_call>" in system["content"]
    assert user == {"role": "user", "content": "Weather in Paris and Rome?"}
    assert assistant == {
        "role": "assistant",
        "content": "Checking.\n"
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>',
    }
    assert results == {  # both results in one user turn, so roles keep alternating
        "role": "user",
        "content": "<tool_response>\nsunny\n</tool_response>\n"
        "<tool_response>\nError: rain\n</tool_response>",
    }
