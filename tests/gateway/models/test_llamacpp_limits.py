"""The `local` adapter's limits, with the real model: each running turn has its own context,
turns beyond the slots wait in line, and every limit ends a turn with `Finish("length")` and
the text it produced (the interaction then ends `incomplete`)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from adapter_checks import assert_contract, collect, text_of

from jupyter_interactions.gateway.models.base import (
    Finish,
    Message,
    ModelEvent,
    ModelRequest,
    Queued,
    TextDelta,
    Usage,
)
from jupyter_interactions.gateway.models.llamacpp import LlamaCppModel

pytestmark = pytest.mark.slow

CONTEXT = 256  # tokens per turn, the smallest llama.cpp gives a sequence
# A prompt of about 200 tokens, so that a turn fills its context after some 50 more.
ESSAY = (
    "Write a long essay about the history of Rome, with many details. Start from these notes: "
    + " ".join(
        f"Note {i}: Rome grew from a village on the Tiber into a republic and then an empire."
        for i in range(9)
    )
)


@pytest.fixture(scope="module")
def small_model() -> Iterator[LlamaCppModel]:
    model = LlamaCppModel("small", n_ctx=CONTEXT, parallel=2, max_output_tokens=6)
    yield model
    asyncio.run(model.aclose())


def essay(text: str = ESSAY, **generation: object) -> ModelRequest:
    return ModelRequest((Message("user", text),), generation={"temperature": 0, **generation})


def usage_of(events: list[ModelEvent]) -> Usage:
    return next(e for e in events if isinstance(e, Usage))


async def test_a_turn_that_fills_its_context_ends_with_length_and_keeps_its_text(
    small_model: LlamaCppModel,
) -> None:
    events = await collect(small_model, essay(max_output_tokens=1000))
    assert_contract(events)
    assert events[-1] == Finish("length")
    usage = usage_of(events)
    assert usage.input_tokens + usage.output_tokens == CONTEXT  # stopped by the context
    assert usage.output_tokens < 1000
    assert len(text_of(events).split()) > 10


async def test_two_turns_filling_their_contexts_at_once_both_end_with_length(
    small_model: LlamaCppModel,
) -> None:
    # With one context shared by both slots, these overflowed it together and llama.cpp
    # failed both turns ("Context size has been exceeded.").
    first, second = await asyncio.gather(
        collect(small_model, essay(max_output_tokens=1000)),
        collect(small_model, essay(max_output_tokens=1000, seed=2)),
    )
    for events in (first, second):
        assert_contract(events)
        assert events[-1] == Finish("length")
        usage = usage_of(events)
        assert usage.input_tokens + usage.output_tokens == CONTEXT  # each its own context
        assert len(text_of(events).split()) > 10


async def test_the_models_default_output_cap_applies_when_the_request_sets_none(
    small_model: LlamaCppModel,
) -> None:
    events = await collect(small_model, essay())
    assert events[-1] == Finish("length")
    assert usage_of(events).output_tokens == 6  # max_output_tokens of the model's config
    assert text_of(events).strip()
    asked = await collect(small_model, essay(max_output_tokens=9))
    assert usage_of(asked).output_tokens == 9  # the request's own cap wins


async def test_a_turn_beyond_the_slots_waits_and_is_told_its_place(
    small_model: LlamaCppModel,
) -> None:
    timeline: list[tuple[str, ModelEvent]] = []
    streaming = asyncio.Event()

    async def run(name: str, request: ModelRequest) -> list[ModelEvent]:
        events = []
        async for event in small_model.stream(request):
            timeline.append((name, event))
            events.append(event)
            if isinstance(event, TextDelta):
                streaming.set()
        return events

    short = "Write a long essay about the history of Rome."
    running = [asyncio.create_task(run(n, essay(short, max_output_tokens=40))) for n in "ab"]
    await asyncio.wait_for(streaming.wait(), 120)
    third = await run("c", essay(short, max_output_tokens=5))
    done = await asyncio.gather(*running)
    assert third[0] == Queued(1)  # both slots were busy: first in line
    assert third[-1] == Finish("length") and usage_of(third).output_tokens == 5
    # It started only once one of the others had ended.
    first_text = timeline.index(next(t for t in timeline if t[0] == "c" and t[1] != Queued(1)))
    ended = [i for i, (n, e) in enumerate(timeline) if n in "ab" and isinstance(e, Finish)]
    assert ended and ended[0] < first_text
    for events in done:
        assert events[-1] == Finish("length") and usage_of(events).output_tokens == 40


def most_repeated_line(text: str) -> int:
    lines = [x.strip().lower() for x in re.split(r"[.!?\n]+", text) if len(x.strip()) > 15]
    return max(Counter(lines).values(), default=0)


async def test_repetition_control_stops_a_loop_the_plain_model_falls_into() -> None:
    poem = ModelRequest(
        (Message("user", "Write a poem about the sea."),),
        generation={"temperature": 0, "max_output_tokens": 400},
    )
    plain = LlamaCppModel("plain", parallel=1, repeat_penalty=1.0, dry_multiplier=0.0)
    default = LlamaCppModel("default", parallel=1)
    try:
        looping = await collect(plain, poem)
        controlled = await collect(default, poem)
    finally:
        await plain.aclose()
        await default.aclose()
    # Greedy decoding without penalties repeats one line until the cap...
    assert looping[-1] == Finish("length") and most_repeated_line(text_of(looping)) > 5
    # ... with the defaults (DRY and a repeat penalty) the poem ends by itself.
    assert controlled[-1] == Finish("stop")
    assert most_repeated_line(text_of(controlled)) <= 2
    assert usage_of(controlled).output_tokens < 400
