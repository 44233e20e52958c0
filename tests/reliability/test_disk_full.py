"""A full disk mid-stream: the interaction fails, and no client is ever sent an event that is
not stored (issue 7: followers used to get events whose batch the store had refused)."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import start_gateway
from tests.reliability.conftest import (
    API,
    assert_whole,
    copy_database,
    http,
    inside,
    integrity,
    read_all,
    sse,
    stored_log,
    tmpfs_prefix,
)


async def test_a_full_disk_ends_the_stream_failed_and_nothing_unstored_was_sent(tmp_path):
    root = tmp_path / "gateway"
    data = root / "data"
    gateway = start_gateway(
        root,
        models={"echo-long": {"adapter": "echo", "chunks": 1_000_000}},
        prefix=tmpfs_prefix(data, size="3m", filler_kib=1024),
    )
    try:
        words = " ".join(f"w{i}" for i in range(20_000))  # ~3 MB of events: more than fits
        async with http(gateway) as session:
            body = {"model": "echo-long", "input": words, "stream": True}
            async with session.post(API, json=body) as response:
                received = [event async for event in sse(response)]
            interaction_id = received[0].event["interaction"]["id"]

            # The stream ended early, with the store's failure as its last word.
            assert len(received) < 20_000
            assert received[-1].event_type == "error"
            assert received[-1].event["error"]["code"] == "store_failed"
            assert "database or disk is full" in received[-1].event["error"]["message"]

            # Space comes back: the run's end (error, failed completion, failed row) is stored.
            inside(gateway, data / "filler").unlink()
            for _ in range(300):
                replay = await read_all(session, interaction_id)
                if replay[-1].event_type == "interaction.completed":
                    break
                await asyncio.sleep(0.1)
            async with session.get(f"{API}/{interaction_id}") as answer:
                resource = await answer.json()

        assert resource["status"] == "failed"
        assert resource["errors"][-1]["code"] == "store_failed"
        database = copy_database(inside(gateway, data), tmp_path / "copy")
        log = stored_log(database, interaction_id)
        assert_whole(log)
        assert [json.loads(d)["event_type"] for _, d in log[-2:]] == [
            "error",
            "interaction.completed",
        ]
        assert json.loads(log[-1][1])["interaction"]["status"] == "failed"
        # Every numbered event the client got is stored, byte for byte; the replay is the log.
        stored = dict(log)
        numbered = [event for event in received if event.event_id is not None]
        assert numbered and all(stored.get(event.seq) == event.data for event in numbered)
        assert [(event.seq, event.data) for event in replay] == log
        assert integrity(database) == "ok"
        assert "database or disk is full" in gateway.stderr_path.read_text()
    finally:
        gateway.stop()
