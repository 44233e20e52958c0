"""Stream cuts: clients drop at random bytes mid-stream and resume with `last_event_id`, at once
and after the interaction ended; each reassembles exactly the interaction's event log."""

from __future__ import annotations

import asyncio
import os
import random

import pytest
from tests.conftest import start_gateway
from tests.reliability.conftest import (
    API,
    Frames,
    Received,
    assert_whole,
    create,
    follow,
    http,
    read_all,
    sse,
    stored_log,
)

SEED = int(os.environ.get("RELIABILITY_SEED", "7"))
DRIP_DELAY = 0.002
# A drip's answer: its model sleeps DRIP_DELAY before each word, so it streams for at least
# 120 s (load only slows it), longer than a test takes to cut and resume every stream; the
# test cancels each drip once every cut and resume is made. So every stream is live at its
# cuts and resumes, however far behind the clients are.
DRIP_WORDS = 60_000
MODELS = {"drip": {"adapter": "ji-slow", "delay": DRIP_DELAY}}


async def _cut(session, interaction_id: str, at_byte: int) -> list[Received]:
    """Follow from the start and drop the connection after `at_byte` bytes (mid-frame,
    usually): the complete events received by then."""
    frames, received, seen = Frames(), [], 0
    response = await follow(session, interaction_id)
    try:
        async for chunk in response.content.iter_any():
            keep = chunk[: max(at_byte - seen, 0)]
            seen += len(chunk)
            received += frames.feed(keep)
            if seen >= at_byte or frames.done:
                break
    finally:
        response.close()  # the client goes away, as a closed laptop would
    return received


async def _cuts(gateway, interactions: int, per_interaction: int, words: int, rng) -> None:
    """Cut each drip's stream at random bytes of its first `words` words, resume at once, then
    cancel the drips (still running: see DRIP_WORDS) and check every resumed stream and replay."""
    async with http(gateway) as session:
        jobs = [
            await create(session, model="drip", input="w " * DRIP_WORDS, background=True)
            for _ in range(interactions)
        ]
        # Roughly the bytes of `words` words' frames, to spread the cut points over them.
        frame_bytes = 110
        runs = interactions * per_interaction
        resumed_all, resumed = asyncio.Event(), 0

        async def one(interaction_id: str) -> tuple[str, list[Received], list[Received]]:
            nonlocal resumed
            try:
                cut = await _cut(session, interaction_id, rng.randrange(1, words * frame_bytes))
                last = cut[-1].event_id if cut else None
                response = await follow(session, interaction_id, last)  # at once
            finally:  # a failure is raised by the gather below, not hidden by the wait
                resumed += 1
                if resumed == runs:
                    resumed_all.set()
            async with response:
                return interaction_id, cut, [event async for event in sse(response)]

        tasks = [
            asyncio.ensure_future(one(job["id"])) for job in jobs for _ in range(per_interaction)
        ]
        await asyncio.wait_for(resumed_all.wait(), timeout=DRIP_WORDS * DRIP_DELAY)
        # The resumed streams hold all of the session's 100 connections: another session asks.
        async with http(gateway) as control:
            for job in jobs:
                # Every cut and resume happened while its drip ran: it runs still.
                async with control.get(f"{API}/{job['id']}") as answer:
                    assert (await answer.json())["status"] == "in_progress"
                async with control.post(f"{API}/{job['id']}/cancel") as answer:
                    assert answer.status == 200
        for interaction_id, cut, rest in await asyncio.gather(*tasks):
            log = stored_log(gateway.data_dir / "gateway.sqlite3", interaction_id)
            assert_whole(log)
            assert not any(e.event_type == "interaction.completed" for e in cut)
            assert [(e.seq, e.data) for e in cut + rest] == log
            assert rest[-1].event["interaction"]["status"] == "cancelled"
            # And again once it has ended: the same rest, from the log.
            later = await read_all(session, interaction_id, cut[-1].event_id if cut else None)
            assert later == rest


async def test_100_random_stream_cuts_resume_exactly(tmp_path):
    gateway = start_gateway(tmp_path, models=MODELS)
    try:
        await _cuts(
            gateway, interactions=10, per_interaction=10, words=400, rng=random.Random(SEED)
        )
    finally:
        gateway.stop()


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_2_000_random_stream_cuts_resume_exactly(tmp_path):
    gateway = start_gateway(tmp_path, models=MODELS)
    rng = random.Random(SEED)
    try:
        for _ in range(20):
            await _cuts(gateway, interactions=10, per_interaction=10, words=1000, rng=rng)
    finally:
        gateway.stop()
