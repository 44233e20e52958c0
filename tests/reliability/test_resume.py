"""Stream cuts: clients drop at random bytes mid-stream and resume with `last_event_id`, at once
and after the interaction ended; each reassembles exactly the interaction's event log."""

from __future__ import annotations

import asyncio
import os
import random

import pytest
from tests.conftest import start_gateway
from tests.reliability.conftest import (
    Frames,
    Received,
    assert_whole,
    create,
    follow,
    http,
    read_all,
    stored_log,
)

SEED = int(os.environ.get("RELIABILITY_SEED", "7"))
# A model that drips: one word every 2 ms, so a stream is live while the cuts happen.
MODELS = {"drip": {"adapter": "ji-slow", "delay": 0.002}}


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
    async with http(gateway) as session:
        jobs = [
            await create(session, model="drip", input="w " * words, background=True)
            for _ in range(interactions)
        ]
        # Roughly the bytes of a whole stream, to spread the cut points over it.
        frame_bytes = 110

        async def one(interaction_id: str) -> tuple[str, list[Received], list[Received]]:
            cut = await _cut(session, interaction_id, rng.randrange(1, words * frame_bytes))
            last = cut[-1].event_id if cut else None
            rest = await read_all(session, interaction_id, last)  # at once
            return interaction_id, cut, rest

        runs = [one(job["id"]) for job in jobs for _ in range(per_interaction)]
        resumed = await asyncio.gather(*runs)
        live = 0
        for interaction_id, cut, rest in resumed:
            log = stored_log(gateway.data_dir / "gateway.sqlite3", interaction_id)
            assert_whole(log)
            assert [(e.seq, e.data) for e in cut + rest] == log
            # And again once it has ended: the same rest, from the log.
            later = await read_all(session, interaction_id, cut[-1].event_id if cut else None)
            assert later == rest
            live += not any(e.event_type == "interaction.completed" for e in cut) and bool(cut)
        assert live >= len(runs) // 2  # most cuts fell on live streams, not on replays


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
