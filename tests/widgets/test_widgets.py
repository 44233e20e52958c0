"""The widgets' kernel side against a real gateway, without a browser: the fallback bundle
is deterministic text, nothing widget-like shows where no front end answered the probe,
kernel-side following is coalesced, and Copy never overwrites without being asked."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_interactions import Session
from jupyter_interactions.render import live
from jupyter_interactions.widgets import FRONT_END, AgentPanel, FileBrowser, JobBoard, RunView
from jupyter_interactions.widgets.base import CallError
from jupyter_interactions.widgets.calls import serve_files
from jupyter_interactions.widgets.pusher import Pusher

SCRIPTED = {"type": "dynamic", "model": "scripted"}
WRITE = '```python\nopen("data.csv", "w").write("x,y\\n1,2\\n")\nprint("ok")\n```'


@pytest.fixture
def session(gateway: Any) -> Any:
    s = Session("widget-tests", url=gateway.url, token=gateway.token)
    yield s
    s.close()


def test_without_a_live_front_end_the_text_display_stays(session: Any) -> None:
    assert not FRONT_END.live
    assert live.rich_view("run", session=session, thread="t") is None
    assert session.files_table  # the text table is what %interactions files gives


def test_run_view_fallback_is_the_final_content(session: Any) -> None:
    reply = session.ask("Hello **there**", model="echo", thread="fallback")
    view = RunView(session, thread="fallback")
    view.begin(reply.id)
    view.finish(reply.transcript)
    data, metadata = view._repr_mimebundle_()
    assert data["text/plain"] == reply.transcript.plain() == "Hello **there**"
    assert data["text/markdown"] == "Hello **there**"
    assert "application/vnd.jupyter.widget-view+json" in data
    assert metadata["jupyter_interactions"]["interaction_ids"] == [reply.id]
    assert [s["id"] for s in view.snapshots] == [reply.id]  # what a saved notebook keeps
    assert "0x" not in repr(view)


def test_kernel_following_is_coalesced(session: Any) -> None:
    class Sink:
        def __init__(self) -> None:
            self.messages: list[dict[str, Any]] = []

        def send(self, content: Any, buffers: Any = None) -> None:
            self.messages.append(content)

    pusher = Pusher(rate=20)
    sinks = [Sink() for _ in range(5)]
    start = time.monotonic()
    for i in range(200):
        for n, sink in enumerate(sinks):
            pusher.push(sink, f"int_{n}", {"event_id": f"ev_{i}"})
    deadline = time.monotonic() + 10
    while sum(len(s.messages) for s in sinks) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    pusher.flush()
    elapsed = time.monotonic() - start
    sent = sum(len(s.messages) for s in sinks)
    # 1,000 events in all left as a handful of messages, each carrying many events in order.
    assert sent <= 5 + 20 * elapsed + 5
    for n, sink in enumerate(sinks):
        events = [e["event_id"] for m in sink.messages for e in m["events"]]
        assert events == [f"ev_{i}" for i in range(200)]
        assert {m["id"] for m in sink.messages} == {f"int_{n}"}


def test_file_calls_list_read_and_copy_without_overwriting(session: Any, tmp_path: Path) -> None:
    reply = session.ask(WRITE, agent="local-agent", agent_config=SCRIPTED, thread="files")
    env = reply.environment_id
    browser = FileBrowser(session, env)
    served: dict[str, Any] = {}
    browser.answer = lambda name, fn: served.__setitem__(name, fn)  # type: ignore[method-assign]
    serve_files(browser, session, folder=tmp_path)
    paths = [f["path"] for f in served["files"](env)["files"]]
    assert "workspace/data.csv" in paths
    meta, data = served["read"](env, "workspace/data.csv")
    assert data == b"x,y\n1,2\n" and meta["size"] == 8
    assert served["copy"](env, "workspace/data.csv")["path"] == "data.csv"
    (tmp_path / "data.csv").write_text("mine")
    with pytest.raises(CallError, match="exists in the notebook's folder"):
        served["copy"](env, "workspace/data.csv")
    assert (tmp_path / "data.csv").read_text() == "mine"
    served["copy"](env, "workspace/data.csv", overwrite=True)
    assert (tmp_path / "data.csv").read_bytes() == b"x,y\n1,2\n"
    assert "workspace/data.csv" in browser.fallback()["text/plain"]


def test_job_board_reads_the_gateway(session: Any) -> None:
    job = session.start("one two three", model="echo", thread="board")
    job.result(timeout=30)
    board = JobBoard(session)
    row = next(r for r in board.rows if r["id"] == job.id)
    assert row["status"] == "completed" and row["steps"] == 1 and row["tokens"] > 0
    assert board.as_of
    assert job.id in board.fallback()["text/plain"]
    assert threading.active_count() < 50
    board.close()


def test_agent_panel_pickers_list_what_the_gateway_runs(session: Any) -> None:
    panel = AgentPanel(session)
    panel.pickers_filled.join(60)
    # `slow` is this test gateway's own configured model: only its models list knows it.
    assert {"local", "echo", "scripted", "slow"} <= set(panel.models)
    assert "local-agent" in panel.agents
    assert not [name for name in panel.models + panel.agents if "/" in name]
    panel.close()


def test_raw_payloads_are_decoded_together_in_order() -> None:
    class Sink:
        def __init__(self) -> None:
            self.messages: list[dict[str, Any]] = []

        def send(self, content: Any, buffers: Any = None) -> None:
            self.messages.append(content)

    sink, pusher = Sink(), Pusher(rate=20)
    # A foreground turn's event (decoded), then two a follower read raw off the stream.
    raw = [b'{"event_id":"ev_2"}', b'{"event_id": "ev_3", "n": [1]}']
    pusher.push_all(sink, "int_1", [{"event_id": "ev_1"}, *raw])
    pusher.flush()
    events = [e for m in sink.messages for e in m["events"]]
    assert events == [{"event_id": "ev_1"}, {"event_id": "ev_2"}, {"event_id": "ev_3", "n": [1]}]
    assert len(sink.messages) == pusher.sent == 1  # one message for the three
