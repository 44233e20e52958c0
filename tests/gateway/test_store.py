"""The store hands the event loop plain values only: no SQLite object leaves its thread.

Issue 7's "bad parameter or other API misuse": `append_events` resolved to the cursor of its
`executemany`. That cursor still held the connection's cached INSERT statement; when the event
loop's thread freed it, it reset that statement while the store thread ran the next batch with
it, and SQLite refused the step. A batch of events was then missing from the log.
"""

from __future__ import annotations

import sqlite3

import pytest

from jupyter_interactions.gateway.state.store import Store


@pytest.fixture
async def store(tmp_path):
    opened = Store(tmp_path)
    await opened.open()
    yield opened
    await opened.close()


def _resource(interaction_id: str) -> dict:
    return {"id": interaction_id, "status": "in_progress", "created": "t", "updated": "t"}


async def test_every_write_and_read_answers_plain_values(store):
    row = {"id": "int_1", "resource": _resource("int_1"), "input": "hi"}
    answers = [
        await store.save_interaction(row),
        await store.append_events("int_1", [(1, "{}"), (2, "{}")]),
        await store.append_events("int_1", [(3, "{}")], row=row, after_seq=2),
        await store.set_thread("k", "default", "int_1", "echo", None, 1, "t"),
        await store.add_job("int_1", "k", "default", "t"),
        await store.put_resource("agents", {"id": "a", "created": "t"}),
        await store.get_resource("agents", "a"),
        await store.list_resources("agents", 0, 10),
        await store.get_interaction("int_1"),
        await store.events_after("int_1", 0),
        await store.session("k"),
        await store.delete_threads("k", "default"),
        await store.delete_resource("agents", "a"),
        await store.delete_interaction("int_1"),
    ]
    for answer in answers:
        assert answer is None or isinstance(answer, (int, str, list, dict))


async def test_a_write_that_returns_a_cursor_is_refused_and_the_batch_goes_on(store):
    leaky = store.submit(lambda conn: conn.execute("SELECT 1"))
    kept = store.append_events("int_2", [(1, "{}")])
    with pytest.raises(TypeError, match="returned Cursor"):
        await leaky
    await kept
    assert await store.events_after("int_2", 0) == ["{}"]


async def test_a_log_closed_early_drops_what_followed(store):
    await store.append_events("int_3", [(1, "a"), (2, "b"), (3, "c")])
    await store.append_events("int_3", [(2, "end")], after_seq=1)
    assert await store.events_after("int_3", 0) == ["a", "end"]
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
