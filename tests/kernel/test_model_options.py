"""What a cell asks of a model reaches it on every turn: the output cap (`--max-tokens`,
`max_output_tokens`), and, on the turns that send function results back, the system
instruction and generation settings; a model that keeps calling functions gets a clear error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai

from jupyter_interactions.errors import InteractionFailed, RequestError

BLOCK = "```python\nprint(1)\n```\n"


def run_code(code: str, language: str = "python") -> str:
    """Run a piece of code (here: pretend to)."""
    return f"ran {len(code)} characters of {language}"


@pytest.fixture
def sdk(gateway) -> Iterator[genai.Client]:
    client = gateway.client()
    yield client
    client.close()


def test_max_tokens_in_a_cell_caps_the_answer(gw):
    gw.run("%%interaction --model echo --max-tokens 2 --out r\none two three four five")
    reply = gw.ns["r"]
    assert reply.status == "incomplete" and reply.text == "one two "


def test_max_tokens_is_for_models_not_agents(gw):
    result = gw.run("%%interaction --agent local-agent --max-tokens 5\nhi")
    assert "agent_config" in str(result.error_in_exec)


def test_max_output_tokens_must_be_positive(session):
    with pytest.raises(RequestError, match="1 or more"):
        session.ask("hi", model="echo", max_output_tokens=0)


def test_a_misspelt_option_is_refused_not_ignored(session):
    with pytest.raises(TypeError, match="'modle'"):
        session.ask("hi", modle="echo")
    with pytest.raises(TypeError, match="'sytem'"):
        session.thread("t").start("hi", model="echo", sytem="Answer in one line.")


def test_function_results_are_sent_with_the_first_turns_settings(session, sdk):
    reply = session.ask(
        BLOCK,
        model="scripted",
        tools=[run_code],
        system="Answer in one line.",
        max_output_tokens=50,
        thread="settings",
    )
    assert reply.status == "completed" and len(reply.interaction_ids) == 2
    follow_up = sdk.interactions.get(reply.interaction_ids[1])
    assert follow_up.system_instruction == "Answer in one line."
    assert follow_up.generation_config.max_output_tokens == 50
    assert [t.name for t in follow_up.tools] == ["run_code"]


def test_a_model_that_keeps_calling_functions_gets_a_clear_error(session):
    # The scripted model calls run_code once per code block, one block per turn.
    with pytest.raises(InteractionFailed) as failure:
        session.ask(BLOCK * 10, model="scripted", tools=[run_code], thread="rounds")
    error = failure.value
    assert error.status == "requires_action"
    assert "after 8 rounds" in error.message and "max_tool_rounds" in error.message
    assert session.thread("rounds").head is None  # the thread is unchanged
    session.max_tool_rounds = 10
    reply = session.ask(BLOCK * 10, model="scripted", tools=[run_code], thread="rounds")
    assert reply.status == "completed" and len(reply.interaction_ids) == 11
    assert reply.text.startswith("Ran 10 code blocks.")
