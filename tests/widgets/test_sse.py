"""The kernel-side follower's stream reader against a real socket: chunk framing and event
boundaries cut anywhere between reads, CRLF line ends, `[DONE]`, and a refused request."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from jupyter_interactions.widgets.sse import EventStream, StreamRefused, event_id, event_type

EVENTS = [
    b'{"event_type":"interaction.created","event_id":"ev_1"}',
    b'{"event_type":"step.delta","delta":{"text":"a\\nb"},"event_id":"ev_2"}',
    b'{"event_type":"interaction.completed","event_id":"ev_3"}',
]


@contextlib.contextmanager
def serve(pieces: list[bytes]) -> Iterator[str]:
    """A loopback server that answers one request with `pieces`, one send (and flush) each."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            for piece in pieces:
                conn.sendall(piece)
                threading.Event().wait(0.01)  # separate reads on the other side

    worker = threading.Thread(target=answer, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1/interactions/int_1?stream=true"
    worker.join(10)
    server.close()


def chunked(text: bytes, size: int) -> bytes:
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_events_cut_anywhere_come_whole_and_in_order(line_end: bytes) -> None:
    text = (
        b"".join(
            b"event: x" + line_end + b"id: i" + line_end + b"data: " + e + line_end + line_end
            for e in EVENTS
        )
        + b"data: [DONE]"
        + line_end
        + line_end
    )
    body = chunked(text, 7)  # chunk framing that cuts events, and reads that cut chunks
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    whole = head + body
    pieces = [whole[i : i + 5] for i in range(0, len(whole), 5)]
    with serve(pieces) as url:
        got = [p for burst in EventStream(url, {}).bursts(lambda: 0.0) for p in burst]
    assert got == EVENTS
    assert [event_type(p) for p in got] == [
        "interaction.created",
        "step.delta",
        "interaction.completed",
    ]
    assert event_id(got[-1]) == "ev_3"


def test_a_refused_request_says_what_the_server_answered() -> None:
    with serve([b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nno such 1"]) as url:
        with pytest.raises(StreamRefused, match="404 Not Found no such 1"):
            EventStream(url, {})
    json_answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{}"
    with serve([json_answer]) as url:
        with pytest.raises(StreamRefused, match=r"not an event stream \(application/json\)"):
            EventStream(url, {})
