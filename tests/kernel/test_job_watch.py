"""Jobs nobody displays are watched through the session's feed of job changes (one thread, one
stream), and end exactly as jobs that follow their own event stream: the same Reply, thread
head and errors; a gateway that dies fails them instead of leaving `result()` hanging."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from tests.waiting import wait_until

from jupyter_interactions.errors import (
    GatewayError,
    InteractionFailed,
    InteractionsError,
    NotFoundError,
)
from jupyter_interactions.session import Session

SCRIPTED = {"type": "antigravity", "model": "scripted"}
CODE = "Run this:\n```python\nprint(6 * 7)\n```"


def thread_names() -> list[str]:
    return [t.name for t in threading.enumerate()]


def followers() -> list[str]:
    """The per-job worker threads alive now (`Job.attach`)."""
    return [name for name in thread_names() if name.startswith("job-int_")]


def watchers() -> int:
    return thread_names().count("job-watch")


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))  # `slow`: 50 ms a word


def ended_as(job: Any) -> tuple[Any, ...]:
    """What a user sees of an ended job (its id aside)."""
    reply = job.result(timeout=120)
    transcript = reply.transcript
    return (
        reply.text,
        transcript.status,
        job.steps,
        [(p.kind, p.text, p.language, p.name) for p in transcript.ordered()],
        transcript.plain(),
        transcript.model,
        transcript.agent,
        bool(transcript.usage),
        bool(transcript.created and transcript.updated),
    )


def failure(job: Any) -> tuple[type[BaseException], str, str | None]:
    with pytest.raises(InteractionsError) as raised:
        job.result(timeout=120)
    error = raised.value
    assert error.interaction_id == job.id
    return type(error), error.message.replace(job.id, "<id>"), job.status


def test_a_watched_job_ends_as_a_followed_one(session):
    watched = session.start(CODE, agent="local-agent", agent_config=SCRIPTED, thread="w")
    followed = session.start(CODE, agent="local-agent", agent_config=SCRIPTED, thread="f")
    followed.attach()  # explicitly: it follows its own stream
    assert f"job-{followed.id}" in thread_names()
    assert ended_as(watched) == ended_as(followed)
    assert [p.kind for p in watched.transcript.ordered()][:2] == ["code", "result"]
    assert watched.transcript.text and watched.elapsed >= 0
    # Both moved their thread's head, here and on the gateway.
    assert session.thread("w").head == watched.id and session.thread("f").head == followed.id
    fresh = Session(session.key)
    try:
        assert fresh.thread("w").head == watched.id
    finally:
        fresh.close()


def test_unshown_jobs_share_one_watcher_and_no_stream_each(session):
    jobs = [session.start(words(60), model="slow", thread=f"t{i}") for i in range(4)]
    assert watchers() == 1 and followers() == []
    # Mid-run, a watched job shows its status and step count as the feed gives them.
    wait_until(lambda: all(j.status == "in_progress" for j in jobs))
    wait_until(lambda: jobs[0].steps >= 1)
    assert jobs[0].transcript.parts == {}  # counted, not read: no event stream was
    replies = [job.result(timeout=120) for job in jobs]
    assert [r.text.split() for r in replies] == [words(60).split()] * 4
    assert followers() == []
    wait_until(lambda: watchers() == 0)  # no jobs left: the watcher closed its stream
    # A new job starts a watcher again.
    again = session.start("again", model="echo")
    assert again.result(timeout=60).text == "again"
    wait_until(lambda: watchers() == 0)


def test_displaying_a_watched_job_shows_what_it_has_done(session):
    job = session.start(words(60), model="slow")
    wait_until(lambda: job.steps >= 1)
    data, _ = job._repr_mimebundle_()
    assert "w0" in data["text/markdown"]  # fetched once for the display
    assert job.transcript.parts == {} and followers() == []  # the job is still watched
    job.result(timeout=120)


def test_a_cancelled_watched_job_fails_as_a_followed_one(session):
    def cancelled(follow: bool) -> tuple[Any, ...]:
        job = session.start(words(200), model="slow", thread="c")
        if follow:
            job.attach()
        wait_until(lambda: job.status == "in_progress" or job.done())
        job.cancel()
        return failure(job)

    watched, followed = cancelled(False), cancelled(True)
    assert watched == followed
    message = "cancelled (interaction <id>); the thread is unchanged"
    assert watched == (InteractionFailed, message, "cancelled")
    assert session.thread("c").head is None


def test_a_failed_watched_job_fails_as_a_followed_one(session):
    watched = session.start("hello", model="broken", thread="b")
    followed = session.start("hello", model="broken", thread="b").attach()
    assert failure(watched) == failure(followed)
    assert failure(watched)[0] is InteractionFailed
    assert "the model crashed on purpose" in failure(watched)[1]


def test_a_job_that_ended_before_it_was_watched_settles(session):
    first = session.start("early", model="echo", thread="e")
    first.result(timeout=60)
    other = Session(session.key)  # as after a kernel restart: the job is in the list, ended
    try:
        again = other.job(first.id)
        assert again is not first and again.result(timeout=60).text == "early"
        assert other.thread("e").head == first.id
        # One the gateway does not know fails at once, never hangs.
        with pytest.raises(NotFoundError) as missing:
            other.job("int_unknown").result(timeout=60)
        assert missing.value.interaction_id == "int_unknown"
        wait_until(lambda: followers() == [])  # (its own stream ended with the 404)
    finally:
        other.close()


def test_a_job_of_another_session_follows_its_own_stream(session):
    """The feed lists the session's own jobs: a job started elsewhere (another notebook,
    the SDK) is followed by its stream, not waited for on a feed that never names it (it
    used to wait for ever)."""
    other = Session(f"{session.key}-other")
    try:
        started = other.start(words(40), model="slow", thread="x")
        theirs = session.job(started.id)
        assert not theirs.listed and theirs.following()
        assert theirs.result(timeout=120).text.split() == words(40).split()  # bound: hangs
    finally:
        other.close()


def test_closing_the_job_feed_ends_a_read_that_waits_on_it(session):
    """With no job changing the feed is quiet and its reader waits in a read: close() from
    another thread (the watcher's, the job board's) ends it at once, where closing the
    connection alone left it waiting for the next change."""
    feed = session.routes.events()
    events = iter(feed)
    assert next(events)["event_type"] == "session.jobs"
    ended = threading.Event()

    def read() -> None:
        for _ in events:
            pass
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    feed.close()
    assert ended.wait(60)  # a bound on a hang only: nothing changes on this feed


def test_a_gateway_that_dies_fails_the_watched_jobs(gateway_factory, isolated, monkeypatch):
    gateway = gateway_factory()
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", gateway.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", gateway.token)
    session = Session("dies.ipynb")
    try:
        jobs = [session.start(words(400), model="slow", thread=f"d{i}") for i in range(2)]
        wait_until(lambda: all(j.status == "in_progress" for j in jobs))
        gateway.stop()
        for job in jobs:
            # The stopping gateway ends its runs failed (gateway_restarted) and says so on the
            # feed: a job whose end the watcher could still fetch fails with that; the others
            # with the gateway gone. Which one depends on timing alone.
            with pytest.raises((GatewayError, InteractionFailed)) as gone:
                job.result(timeout=120)  # a bound on hangs only
            assert gone.value.interaction_id == job.id
            if isinstance(gone.value, GatewayError):
                assert "cannot reach the gateway" in gone.value.message
            else:
                assert job.status == "failed"  # gateway_restarted
        wait_until(lambda: watchers() == 0)
    finally:
        session.close()


def test_direct_mode_jobs_follow_their_stream(gateway, isolated, monkeypatch):
    # Google keeps no feed of a session's jobs: each job follows its own stream.
    monkeypatch.setenv("GEMINI_API_KEY", gateway.token)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_DIRECT_URL", gateway.url)
    session = Session("direct-jobs.ipynb", direct=True)
    try:
        job = session.start(words(20), model="slow")
        assert job.following() and watchers() == 0
        assert job.result(timeout=60).text.split() == words(20).split()
    finally:
        session.close()


def test_the_watcher_resumes_after_a_dropped_stream(proxy, gateway, isolated, monkeypatch):
    monkeypatch.setenv("JUPYTER_INTERACTIONS_URL", proxy.url)
    monkeypatch.setenv("JUPYTER_INTERACTIONS_TOKEN", gateway.token)
    session = Session("watch-dropped.ipynb")
    try:
        job = session.start(words(200), model="slow")  # 10 s at least
        wait_until(lambda: job.status == "in_progress")
        connections = proxy.accepted
        proxy.cut()
        assert job.result(timeout=120).text.split() == words(200).split()
        assert proxy.accepted > connections  # it reconnected (the feed, then the final GET)
    finally:
        session.close()


def test_a_job_whose_end_the_watcher_read_before_watching_it_settles(session):
    # A job that ends at once may pass its rows before `start` returns and adds it; the rows
    # the thread read are kept for it. Made certain here: another Session (same notebook)
    # runs the job while this one's watcher reads the feed, and only then is it watched.
    keeper = session.start(words(100), model="slow")
    wait_until(lambda: keeper.status == "in_progress")
    other = Session(session.key)
    try:
        ended = other.start("ended", model="echo", thread="o")
        ended.result(timeout=60)
    finally:
        other.close()
    # Its end was published before this job's: once this one settles, the watcher has read it.
    session.start("after", model="echo", thread="a").result(timeout=60)
    again = session.job(ended.id)
    assert again.result(timeout=60).text == "ended"  # a bound on hangs only
    assert watchers() == 1 and not keeper.done()
    keeper.cancel()


def run_code(code: str, language: str = "python") -> str:
    """Run a piece of code (here: pretend to)."""
    return f"ran {len(code)} characters of {language}"


def test_a_job_waiting_for_function_results_ends_its_wait_as_a_followed_one(session):
    # A job's functions are declared, not run: it ends `requires_action`, as its stream does.
    block = "```python\nprint(1)\n```\n"
    watched = session.start(block, model="scripted", tools=[run_code], thread="fw")
    followed = session.start(block, model="scripted", tools=[run_code], thread="ff").attach()
    assert ended_as(watched) == ended_as(followed)
    assert watched.status == "requires_action"
    assert [c.name for c in watched.transcript.function_calls()] == ["run_code"]
    assert session.thread("fw").head == watched.id  # a paused turn is the thread's head
