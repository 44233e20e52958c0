"""Closing a view stops what the kernel follows for it: whether the kernel closes the widget
or the front end closes its comm, the follower's thread ends and its stream to the gateway is
closed, while the job itself goes on running on the gateway (closing a view is not cancelling
a job)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comm
import pytest
from tests.waiting import wait_until

from jupyter_interactions import InteractionsError, Session
from jupyter_interactions.render import live
from jupyter_interactions.widgets import FRONT_END, AgentPanel, JobBoard, hooks
from jupyter_interactions.widgets.base import ViewWidget
from jupyter_interactions.widgets.calls import follow_in_kernel
from jupyter_interactions.widgets.run import RunView

WORDS = " ".join(f"w{i}" for i in range(2000))  # `slow`: 100 s unless stopped
JOIN = 30  # a bound on a thread's end: a safety net, never a measure of speed


@pytest.fixture
def kernel_follows() -> Iterator[list[Any]]:
    """The widget front end is said to be live and unable to reach the gateway (the kernel
    follows); the views the kernel side makes, in order."""
    made: list[Any] = []

    def factory(kind: str, **context: Any) -> Any:
        made.append(hooks.views(kind, **context))
        return made[-1]

    FRONT_END.forced, FRONT_END.forced_follower = True, "kernel"
    live.RICH_VIEWS.append(factory)
    yield made
    live.RICH_VIEWS.remove(factory)
    FRONT_END.forced = FRONT_END.forced_follower = None


@pytest.fixture
def pushed(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[dict[str, Any]]]:
    """What each view (by id) was sent: the pusher's messages (no front end to receive them)."""
    sent: dict[int, list[dict[str, Any]]] = {}

    def send(self: Any, content: Any, buffers: Any = None) -> None:
        sent.setdefault(id(self), []).append(content)

    monkeypatch.setattr(ViewWidget, "send", send)
    return sent


def unfollowed_job(session: Session, thread: str) -> Any:
    """A long job that nothing in this process follows by its own stream (the session's
    watcher only sees its rows): only the views under test will."""
    job = session.start(WORDS, model="slow", thread=thread)
    job.detach()
    wait_until(lambda: not job.following())
    return job


def made_with(follower: str, make: Callable[[], Any]) -> Any:
    """A widget made while the front end says who follows ("browser": the page; "kernel")."""
    FRONT_END.forced_follower = follower
    try:
        return make()
    finally:
        FRONT_END.forced_follower = None


def streams_to(url: str) -> set[str]:
    """This process's open TCP connections to the gateway at `url` (socket inodes): the
    kernel's pooled connections and every stream a follower holds open."""
    port = f"{int(url.rsplit(':', 1)[1].split('/')[0]):04X}"
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            ours.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if remote.endswith(f":{port}") and state == "01" and inode in ours:  # ESTABLISHED
                found.add(inode)
    return found


def threads_named(name: str) -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == name and t.is_alive()}


def thread_named(name: str) -> threading.Thread | None:
    (thread,) = threads_named(name) or {None}
    return thread


def close_from_the_front_end(widget: Any) -> None:
    """What the kernel does when the page closes a widget's comm: the comm manager's
    `comm_close` handler, given the message a front end sends."""
    message = {"content": {"comm_id": widget.comm.comm_id, "data": {}}}
    comm.get_comm_manager().comm_close(None, None, message)


def close_from_the_kernel(widget: Any) -> None:
    widget.close()


CLOSES = [
    pytest.param(close_from_the_kernel, id="widget.close"),
    pytest.param(close_from_the_front_end, id="comm-closed-by-front-end"),
]


def assert_close_stops(
    session: Session, widget: Any, close: Any, threads: list[threading.Thread], streams: int
) -> None:
    """Close `widget`: its followers' `threads` end, and the `streams` they held to the
    gateway (among this process's connections to it) are closed; no other is, none opens."""
    assert all(thread.is_alive() for thread in threads)
    before = streams_to(session.connection.base_url)
    close(widget)
    for thread in threads:
        thread.join(JOIN)
        assert not thread.is_alive(), f"{thread.name} still follows a closed view"
    wait_until(lambda: len(before - streams_to(session.connection.base_url)) >= streams, JOIN)
    after = streams_to(session.connection.base_url)
    assert after <= before and len(before - after) == streams


def warm(session: Session) -> set[str]:
    """The session's pooled connections, opened by one turn (reused by the main thread's
    next calls): the connections to the gateway a view's follower does not hold."""
    reply = session.ask("warm", model="echo", thread="warm")
    session.client.interactions.get(reply.id)  # (a stream's connection is not kept)
    session.threads()
    return streams_to(session.connection.base_url)


@pytest.mark.parametrize("close", CLOSES)
def test_closing_a_job_view_stops_its_follower_and_not_the_job(
    session, kernel_follows, pushed, close
) -> None:
    pooled = warm(session)
    job = session.start(WORDS, model="slow", thread="close", show=True)
    (view,) = kernel_follows
    assert isinstance(view, RunView) and not job.following()
    follower = thread_named(f"view-{job.id}")
    assert follower is not None
    wait_until(lambda: pushed.get(id(view)))  # its stream is open and read
    assert len(streams_to(session.connection.base_url) - pooled) == 1  # its stream
    assert_close_stops(session, view, close, [follower], streams=1)
    # Closing the view is not cancelling the job: it runs on, and its Job follows it itself
    # when asked (here, to the end a cancel gives it).
    assert session.client.interactions.get(job.id).status == "in_progress"
    assert not job.done()
    job.cancel()
    with pytest.raises(InteractionsError):
        job.result(timeout=JOIN)
    assert job.status == "cancelled"


@pytest.mark.parametrize("close", CLOSES)
def test_closing_a_run_view_stops_the_follower_that_took_over_from_the_page(
    session, pushed, close
) -> None:
    job = unfollowed_job(session, "takeover")
    pooled = warm(session)
    view = made_with("browser", lambda: RunView(session, thread="takeover"))
    view.begin(job.id, background=True, job=job)
    assert thread_named(f"view-{job.id}") is None  # the page follows
    # The page lost the gateway: the kernel takes over from the page's last event.
    view.on_front_end_message({"type": "follow", "by": "kernel", "id": job.id})
    follower = thread_named(f"view-{job.id}")
    assert follower is not None
    wait_until(lambda: pushed.get(id(view)))
    assert len(streams_to(session.connection.base_url) - pooled) == 1  # its stream
    assert_close_stops(session, view, close, [follower], streams=1)
    assert session.client.interactions.get(job.id).status == "in_progress"
    job.cancel()


@pytest.mark.parametrize("close", CLOSES)
def test_closing_a_job_board_stops_what_it_follows(session, pushed, close) -> None:
    """The board's own follower (the session's job changes) and the one its Open asked for."""
    job = unfollowed_job(session, "board")
    pooled = warm(session)
    others = threads_named("job-board")  # boards of other tests, still open
    board = made_with("kernel", lambda: JobBoard(session))
    (board_thread,) = threads_named("job-board") - others
    assert any(r["id"] == job.id for r in board.rows)
    board._serve({"type": "call", "id": "1", "method": "follow", "args": {"id": job.id}})
    assert {"type": "reply", "id": "1", "result": {"following": job.id}} in pushed[id(board)]
    run_thread = thread_named(f"view-{job.id}")
    assert run_thread is not None
    wait_until(lambda: any(m["type"] == "events" for m in pushed[id(board)]))  # the job's
    # Two streams: the session's job changes (on a pooled connection), and the job's events.
    assert len(streams_to(session.connection.base_url) - pooled) == 1
    assert_close_stops(session, board, close, [board_thread, run_thread], streams=2)
    assert session.client.interactions.get(job.id).status == "in_progress"
    job.cancel()


def test_a_view_follows_an_interaction_once_and_a_closed_view_nothing(session, pushed) -> None:
    job = unfollowed_job(session, "once")
    view = made_with("kernel", lambda: RunView(session, thread="once"))
    view.begin(job.id, background=True, job=job)
    follower = thread_named(f"view-{job.id}")
    assert follower is not None
    # The page asks again (a job board's row opened twice): the one follower goes on.
    assert follow_in_kernel(view, session, job.id) is None
    assert [t for t in threading.enumerate() if t.name == f"view-{job.id}"] == [follower]
    view.close()
    follower.join(JOIN)
    assert not follower.is_alive()
    assert follow_in_kernel(view, session, job.id) is None  # closed: nobody to push to
    assert thread_named(f"view-{job.id}") is None
    job.cancel()


KERNEL_FOLLOWS = (
    "from jupyter_interactions import Session\n"
    "from jupyter_interactions.widgets.frontend import FRONT_END\n"
    "FRONT_END.forced = True\n"
    "FRONT_END.forced_follower = 'kernel'\n"
    "session = Session()"
)
START_SHOWN = (
    "import threading\n"
    "job = session.start({words!r}, model='slow', show=True)\n"
    "follower = next(t for t in threading.enumerate() if t.name == f'view-{{job.id}}')"
)
FOLLOWER_ENDED = (
    "follower.join({join})\n"
    "print(follower.is_alive(), session.client.interactions.get(job.id).status)"
)


def test_a_front_end_closing_the_comm_in_a_real_kernel_stops_the_follower(kernel) -> None:
    kernel.run(KERNEL_FOLLOWS)
    cell = kernel.run(START_SHOWN.format(words=WORDS))
    (comm_id,) = [
        m["content"]["comm_id"]
        for m in cell.messages
        if m["msg_type"] == "comm_open" and "snapshots" in m["content"]["data"].get("state", {})
    ]  # the run view's, not its layout's
    # The front end closes the view's comm (as ipywidgets' JS does when its model closes).
    close = kernel.client.session.msg("comm_close", {"comm_id": comm_id, "data": {}})
    kernel.client.shell_channel.send(close)
    cell = kernel.run(FOLLOWER_ENDED.format(join=JOIN))
    assert cell.text().split() == ["False", "in_progress"]  # stopped; the job runs on
    kernel.run("job.cancel()")


def test_a_board_row_closed_on_the_page_stops_its_follower_and_the_board_goes_on(
    session, pushed
) -> None:
    job = unfollowed_job(session, "unfollow")
    board = made_with("kernel", lambda: JobBoard(session))
    pooled = warm(session)
    board._serve({"type": "call", "id": "1", "method": "follow", "args": {"id": job.id}})
    follower = thread_named(f"view-{job.id}")
    assert follower is not None
    wait_until(lambda: any(m["type"] == "events" for m in pushed[id(board)]))
    held = streams_to(session.connection.base_url) - pooled
    assert len(held) == 1  # the job's events
    # The row's Close (or the board's view removed): the page asks the kernel to stop.
    board._serve({"type": "call", "id": "2", "method": "unfollow", "args": {"id": job.id}})
    assert {"type": "reply", "id": "2", "result": {"following": None}} in pushed[id(board)]
    follower.join(JOIN)
    assert not follower.is_alive()
    wait_until(lambda: not held & streams_to(session.connection.base_url), JOIN)
    assert board.comm is not None  # the board itself stays open, and the job runs on
    assert session.client.interactions.get(job.id).status == "in_progress"
    board.close()
    job.cancel()


@pytest.mark.parametrize("kind", ["panel", "board"])
def test_a_run_the_page_lost_inside_a_panel_or_board_is_taken_over_by_the_kernel(
    session, pushed, kind
) -> None:
    """Their run views send the page's `follow by kernel` through the panel's or board's comm
    (they have none of their own): the kernel follows the run from the page's last event,
    until the widget closes."""
    job = unfollowed_job(session, f"lost-{kind}")
    widget = made_with(
        "browser", lambda: AgentPanel(session) if kind == "panel" else JobBoard(session)
    )
    assert thread_named(f"view-{job.id}") is None  # the page follows
    first = session.client.interactions.get(job.id, stream=True)
    with first as events:
        seen = next(iter(events)).event_id  # the page's last event before it lost the gateway
    widget.on_front_end_message(
        {"type": "follow", "by": "kernel", "id": job.id, "last_event_id": seen}
    )
    follower = thread_named(f"view-{job.id}")
    assert follower is not None
    wait_until(lambda: any(m["type"] == "events" for m in pushed.get(id(widget), [])))
    resumed = next(m for m in pushed[id(widget)] if m["type"] == "events")
    ids = [event.get("event_id") for event in resumed["events"]]
    assert resumed["id"] == job.id and ids and seen not in ids  # from the one after it
    widget.close()
    follower.join(JOIN)
    assert not follower.is_alive()
    job.cancel()
