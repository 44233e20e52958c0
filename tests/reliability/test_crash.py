"""SIGKILL while 20 background interactions stream to followers: after a restart, every event
any client received is there with the same id and payload, no stored log has a hole, the
interrupted interactions are failed with a message, and the database is intact."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from typing import Any

import aiohttp
import pytest
from tests.conftest import GatewayProcess, start_gateway
from tests.reliability.conftest import (
    API,
    Received,
    assert_whole,
    create,
    follow,
    http,
    integrity,
    read_all,
    sse,
    stored_log,
)

SEED = int(os.environ.get("RELIABILITY_SEED", "7"))
DRIP_DELAY = 0.002
# A drip's answer: its model sleeps DRIP_DELAY before each word, so it takes at least
# KILL_WAIT (load only slows it), and the test waits at most that long for the kill: every
# drip is still streaming when the kill comes, however far behind the followers are.
DRIP_WORDS = 60_000
KILL_WAIT = DRIP_WORDS * DRIP_DELAY  # 120 s
MODELS = {
    # Bursts: the whole answer as fast as the gateway takes it.
    "echo-long": {"adapter": "echo", "chunks": 1_000_000},
    # A steady drip, one word every 2 ms.
    "drip": {"adapter": "ji-slow", "delay": DRIP_DELAY},
}


async def _round(gateway: GatewayProcess, rng: random.Random, scale: int) -> dict[str, int]:
    """Start 20 background interactions, follow each, SIGKILL the gateway once followers
    have a random share of 200 words per drip (a small part of each drip's answer),
    restart it and check everything."""
    received: dict[str, list[Received]] = {}
    drip_words = 200 * scale
    async with http(gateway) as session:
        jobs = []
        for index in range(20):
            model, words = ("drip", DRIP_WORDS) if index % 2 else ("echo-long", 800 * scale)
            job = await create(session, model=model, input="w " * words, background=True)
            jobs.append((job["id"], model))
            received[job["id"]] = []
        drips = [interaction_id for interaction_id, model in jobs if model == "drip"]
        kill_at = int(rng.uniform(0.05, 0.4) * len(drips) * drip_words)
        enough = asyncio.Event()

        async def follower(interaction_id: str) -> None:
            got = received[interaction_id]
            with contextlib.suppress(aiohttp.ClientError, asyncio.CancelledError):
                async with await follow(session, interaction_id) as response:
                    async for event in sse(response):
                        got.append(event)
                        if sum(len(received[d]) for d in drips) >= kill_at:
                            enough.set()

        followers = [asyncio.ensure_future(follower(i)) for i, _ in jobs]
        await asyncio.wait_for(enough.wait(), timeout=KILL_WAIT)
        gateway.restart(signal.SIGKILL)
        await asyncio.wait(followers, timeout=30)  # each ends on its broken connection

    outcome = {"completed": 0, "failed": 0, "events": 0}
    database = gateway.data_dir / "gateway.sqlite3"
    async with http(gateway) as session:
        for interaction_id, _ in jobs:
            log = stored_log(database, interaction_id)
            assert_whole(log)
            stored = dict(log)
            got = received[interaction_id]
            assert all(stored.get(event.seq) == event.data for event in got), interaction_id
            # What a client asking now gets: the same events, ids and payloads.
            replay = await read_all(session, interaction_id)
            assert [(event.seq, event.data) for event in replay] == log
            async with session.get(f"{API}/{interaction_id}") as answer:
                resource: dict[str, Any] = await answer.json()
            outcome[resource["status"]] += 1
            outcome["events"] += len(got)
            if resource["status"] == "failed":
                (error,) = resource["errors"]
                assert error["code"] == "gateway_restarted" and error["message"]
                assert replay[-2].event["error"] == error
            else:
                assert resource["status"] == "completed"
    assert integrity(database) == "ok"
    assert outcome["failed"] >= len(drips)  # the kill landed while every drip ran
    return outcome


async def _rounds(tmp_path, rounds: int, scale: int) -> None:
    rng = random.Random(SEED)
    gateway = start_gateway(tmp_path, models=MODELS)
    try:
        for _ in range(rounds):
            await _round(gateway, rng, scale)
        assert "could not store" not in gateway.stderr_path.read_text()
    finally:
        gateway.stop()


async def test_sigkill_while_20_interactions_stream_loses_nothing_anyone_saw(tmp_path):
    await _rounds(tmp_path, rounds=10, scale=1)


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_sigkill_soak(tmp_path):
    await _rounds(tmp_path, rounds=100, scale=4)
