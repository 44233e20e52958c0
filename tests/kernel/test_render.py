"""Rendering from the SDK's own event types: answer apart from thoughts and tools, stable text."""

from __future__ import annotations

from datetime import datetime, timezone

import pydantic
from google.genai import interactions as itypes

from jupyter_interactions.render.bundle import METADATA_KEY, reply_bundle
from jupyter_interactions.render.job import job_card, job_final, run_seconds
from jupyter_interactions.render.live import Throttle
from jupyter_interactions.render.transcript import Transcript

EVENTS = pydantic.TypeAdapter(itypes.InteractionSSEEvent)

AGENT_RUN = [
    {
        "event_type": "interaction.created",
        "event_id": "e1",
        "interaction": {"id": "int_1", "status": "in_progress", "agent": "helper"},
    },
    {
        "event_type": "step.start",
        "event_id": "e2",
        "index": 0,
        "step": {"type": "thought", "signature": "c2ln"},
    },
    {
        "event_type": "step.delta",
        "event_id": "e3",
        "index": 0,
        "delta": {"type": "thought_summary", "content": {"type": "text", "text": "Plan: add."}},
    },
    {
        "event_type": "step.start",
        "event_id": "e4",
        "index": 1,
        "step": {
            "type": "code_execution_call",
            "id": "c1",
            "arguments": {"code": "print(1 + 1)", "language": "python"},
        },
    },
    {
        "event_type": "step.start",
        "event_id": "e5",
        "index": 2,
        "step": {"type": "code_execution_result", "call_id": "c1", "result": ""},
    },
    {
        "event_type": "step.delta",
        "event_id": "e6",
        "index": 2,
        "delta": {"type": "code_execution_result", "result": "2\n"},
    },
    {
        "event_type": "step.start",
        "event_id": "e7",
        "index": 3,
        "step": {"type": "model_output", "content": []},
    },
    {
        "event_type": "step.delta",
        "event_id": "e8",
        "index": 3,
        "delta": {"type": "text", "text": "It is "},
    },
    {
        "event_type": "step.delta",
        "event_id": "e9",
        "index": 3,
        "delta": {"type": "text", "text": "2."},
    },
    {"event_type": "step.stop", "event_id": "e10", "index": 3},
    {
        "event_type": "interaction.completed",
        "event_id": "e11",
        "interaction": {
            "id": "int_1",
            "status": "completed",
            "usage": {"total_input_tokens": 3, "total_output_tokens": 2, "total_tokens": 5},
        },
    },
]


def run(events: list[dict]) -> Transcript:
    transcript = Transcript()
    for raw in events:
        transcript.feed(EVENTS.validate_python(raw))
    return transcript


def test_agent_steps_are_shown_apart_from_the_answer():
    t = run(AGENT_RUN)
    assert (t.interaction_id, t.status, t.agent, t.last_event_id) == (
        "int_1",
        "completed",
        "helper",
        "e11",
    )
    assert t.text == "It is 2."
    assert t.plain() == "[thought] Plan: add.\n[Code] print(1 + 1)\n[Output] 2\nIt is 2."
    md = t.markdown()
    assert "> **Thought**\n>\n> Plan: add." in md
    assert "**Code**\n\n```python\nprint(1 + 1)\n```" in md
    assert "**Output**\n\n```\n2\n```" in md
    assert md.endswith("It is 2.")


def test_final_bundle_carries_provenance_and_no_volatile_text():
    t = run(AGENT_RUN)
    data, metadata = reply_bundle(t, thread="default")
    assert set(data) == {"text/markdown", "text/plain"}
    assert metadata == {
        METADATA_KEY: {
            "interaction_ids": ["int_1"],
            "agent": "helper",
            "thread": "default",
            "usage": {"total_input_tokens": 3, "total_output_tokens": 2, "total_tokens": 5},
            "status": "completed",
        }
    }
    assert "int_1" not in data["text/plain"]  # nbval compares text/plain: no ids or timings


def test_error_event_fails_the_transcript():
    t = run(
        [AGENT_RUN[0], {"event_type": "error", "error": {"code": "x", "message": "model crashed"}}]
    )
    assert t.status == "failed"
    assert t.error == "model crashed"
    assert "[error] model crashed" in t.plain()


def test_function_call_arguments_are_assembled_from_deltas():
    t = run(
        [
            AGENT_RUN[0],
            {
                "event_type": "step.start",
                "index": 0,
                "step": {"type": "function_call", "id": "call_1", "name": "add", "arguments": {}},
            },
            {
                "event_type": "step.delta",
                "index": 0,
                "delta": {"type": "arguments_delta", "arguments": '{"a": '},
            },
            {
                "event_type": "step.delta",
                "index": 0,
                "delta": {"type": "arguments_delta", "arguments": "1}"},
            },
            {
                "event_type": "interaction.completed",
                "interaction": {"id": "int_1", "status": "requires_action"},
            },
        ]
    )
    (call,) = t.function_calls()
    assert (call.name, call.call_id, call.arguments) == ("add", "call_1", {"a": 1})
    assert t.done


def test_transcript_from_a_whole_interaction():
    interaction = itypes.Interaction.model_validate(
        {"id": "int_9", "status": "completed", "model": "echo",
         "steps": [{"type": "model_output", "content": [{"type": "text", "text": "hello"}]}]}
    )  # fmt: skip
    t = Transcript.from_interaction(interaction)
    assert (t.text, t.model, t.status) == ("hello", "echo", "completed")


def test_throttle_allows_about_ten_updates_a_second():
    now = [0.0]
    throttle = Throttle(0.1, clock=lambda: now[0])
    accepted = 0
    for _ in range(1000):  # one event per millisecond for one second
        accepted += throttle.ready()
        now[0] += 0.001
    assert 9 <= accepted <= 11


def job(status: str, steps: list[dict], **times: str) -> Transcript:
    return Transcript.from_interaction(
        itypes.Interaction.model_validate(
            {"id": "int_7", "status": status, "model": "local", "steps": steps, **times}
        )
    )


def answer(text: str) -> dict:
    return {"type": "model_output", "content": [{"type": "text", "text": text}]}


def test_a_job_card_shows_the_servers_times():
    running = job("in_progress", [answer("so far")], created="2026-12-01T14:06:37Z")
    now = datetime(2026, 12, 1, 14, 9, 12, tzinfo=timezone.utc)
    card = job_card(running, job_id="int_7", thread="t", now=now)
    assert card["text/markdown"].splitlines()[0] == (
        "**Job** `int_7` · local · thread `t` · **in_progress** · 1 step · "
        "started 2026-12-01 14:06:37 UTC · as of 14:09:12 UTC"
    )
    assert card["text/plain"] == "Job local in thread 't': in_progress"
    ended = job(
        "failed", [answer("so far")], created="2026-12-01T14:06:37Z",
        updated="2026-12-01T14:10:03Z",
    )  # fmt: skip
    data, metadata = job_final(ended, job_id="int_7", thread="t")
    assert (
        data["text/markdown"]
        .splitlines()[0]
        .endswith("**failed** · 1 step · started 2026-12-01 14:06:37 UTC · took 3 min 26 s")
    )
    assert data["text/plain"] == "Job local in thread 't': failed\nso far"
    assert metadata[METADATA_KEY]["status"] == "failed"
    assert run_seconds(ended) == 206.0


def test_a_long_job_transcript_folds():
    text = "All work and no play. " * 400  # 8,800 characters
    data, _ = job_final(job("incomplete", [answer(text)]), job_id="int_7", thread="t")
    markdown = data["text/markdown"]
    assert markdown.count("<details>") == 1
    assert "<details><summary>Transcript (8,800 characters): show</summary>\n\n" in markdown
    # Why it stopped stays in sight, after the fold.
    assert markdown.endswith(
        "</details>\n\n*(incomplete: stopped early: an output or step "
        "limit was reached; ask it to go on)*"
    )
    plain = data["text/plain"].splitlines()
    assert plain[0] == "Job local in thread 't': incomplete"
    assert len(data["text/plain"]) < 1200
    assert plain[-2] == "… (7,800 more characters)"
    assert plain[-1].startswith("[incomplete] stopped early")
    # A short one is shown as it is.
    short, _ = job_final(job("completed", [answer("done")]), job_id="int_7", thread="t")
    assert "<details>" not in short["text/markdown"]
    assert short["text/plain"] == "Job local in thread 't': completed\ndone"


def test_unknown_events_and_deltas_are_ignored():
    from types import SimpleNamespace

    t = run(AGENT_RUN[:9])
    before = (t.plain(), t.markdown(), t.status)
    t.feed(SimpleNamespace(event_type="interaction.something_new", event_id="x1"))
    t.feed(SimpleNamespace(event_type="step.delta", index=3, delta={"type": "hologram"}))
    assert (t.plain(), t.markdown(), t.status) == before
    assert t.last_event_id == "x1"
