"""Jobs shown in widgets stay true in the kernel without polling: the job board follows the
gateway's stream of the session's job changes, and a job whose view the page follows hears
its status from the page and, when it ends, settles (its thread's head moves on)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from tests.waiting import wait_until

from jupyter_interactions.render import live
from jupyter_interactions.widgets import FRONT_END, JobBoard, base, hooks

WORDS = " ".join(f"w{i}" for i in range(400))  # `slow`: 20 s unless stopped


@pytest.fixture
def follower() -> Iterator[Any]:
    def say(who: str) -> None:
        FRONT_END.forced_follower = who

    yield say
    FRONT_END.forced_follower = None


@pytest.fixture
def views() -> Iterator[list[Any]]:
    """The widget front end is said to be live; the views the kernel side makes, in order."""
    made: list[Any] = []

    def factory(kind: str, **context: Any) -> Any:
        made.append(hooks.views(kind, **context))
        return made[-1]

    FRONT_END.forced = True
    live.RICH_VIEWS.append(factory)
    yield made
    live.RICH_VIEWS.remove(factory)
    FRONT_END.forced = None


def row_of(board: JobBoard, job_id: str) -> dict[str, Any]:
    return next((r for r in board.rows if r["id"] == job_id), {})


def test_a_board_the_kernel_follows_hears_new_jobs_and_their_end(session, follower) -> None:
    follower("kernel")
    board = JobBoard(session)
    assert board.rows == [] and board.as_of
    job = session.start(WORDS, model="slow", thread="board")  # after the board opened
    wait_until(lambda: row_of(board, job.id).get("steps") == 1)
    assert row_of(board, job.id)["status"] == "in_progress"
    job.cancel()
    wait_until(lambda: row_of(board, job.id).get("status") == "cancelled")
    assert row_of(board, job.id)["updated"] and row_of(board, job.id)["thread"] == "board"
    board.close()


def test_a_page_followed_job_hears_its_status_and_settles(session, follower, views) -> None:
    follower("browser")  # the kernel reads nothing of the job: the page does
    first = session.ask("one", model="echo", thread="t")
    job = session.start("two", model="echo", thread="t", show=True)
    (view,) = views
    assert view.interaction_ids == [job.id] and not job.following()
    view.statuses = {job.id: "in_progress"}  # as the page reports it (a synced trait)
    assert job.status == "in_progress" and not job.done()
    wait_until(lambda: session.client.interactions.get(job.id).status == "completed")
    view.on_front_end_message({"type": "ended", "id": job.id})  # the page saw the end
    wait_until(job.done)
    assert job.status == "completed" and job.result().text == "two"
    assert not job.following()  # settled from the view's final fetch, not by re-reading
    # The thread continues from the job, as the server has it.
    assert session.client.interactions.get(job.id).previous_interaction_id == first.id
    third = session.ask("three", model="echo", thread="t")
    assert session.client.interactions.get(third.id).previous_interaction_id == job.id


def test_a_turn_after_an_unsettled_job_continues_from_the_servers_head(
    session, follower, views
) -> None:
    follower("browser")
    job = session.start("one", model="echo", thread="u", show=True)
    assert not job.following()
    wait_until(lambda: session.client.interactions.get(job.id).status == "completed")
    # No page ever said it ended (the tab was closed): the kernel asks the server.
    after = session.ask("two", model="echo", thread="u")  # (not shown: no view of its own)
    assert session.client.interactions.get(after.id).previous_interaction_id == job.id


def test_a_kernel_followed_job_is_pushed_every_event_in_order_and_settles(
    session, follower, views, monkeypatch
) -> None:
    from jupyter_interactions.widgets.run import RunView

    messages: list[dict[str, Any]] = []
    monkeypatch.setattr(
        RunView, "send", lambda self, content, buffers=None: messages.append(content)
    )
    follower("kernel")  # no page: a kernel thread reads the stream and forwards its payloads
    words = " ".join(f"k{i}" for i in range(12))
    job = session.start(words, model="slow", thread="k", show=True)
    (view,) = views
    assert view.interaction_ids == [job.id] and not job.following()
    wait_until(job.done)
    assert job.result().text.split() == words.split() and not job.following()
    # What the view was pushed is the stream, decoded, in order, each event once.
    with session.client.interactions.get(job.id, stream=True) as stream:
        expected = [(e.event_type, e.event_id) for e in stream]
    pushed = [event for m in messages for event in m["events"]]
    assert all(m["type"] == "events" and m["id"] == job.id for m in messages)
    assert [(e["event_type"], e["event_id"]) for e in pushed] == expected
    deltas = [e["delta"]["text"] for e in pushed if e["event_type"] == "step.delta"]
    assert "".join(deltas).split() == words.split()
    assert view.snapshots and view.snapshots[-1]["status"] == "completed"


def test_a_board_that_failed_to_open_is_dropped_quietly(session, tmp_path, monkeypatch) -> None:
    # A widget closes itself when collected: one whose construction failed early (here: the
    # front end was never built) must close without errors of its own.
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(base, "STATIC", tmp_path)  # no built assets in it
    with pytest.raises(FileNotFoundError, match="front end is not built"):
        JobBoard(session)
    gc.collect()
    assert [f"{u.exc_type.__name__}: {u.exc_value}" for u in unraisable] == []
