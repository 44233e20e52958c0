"""An interaction's SSE stream read in bursts for kernel-side following: raw `data` payloads,
not decoded here.

The SDK parses every event into a model and back (about 300 us an event on the 2-core VM;
twenty `slow` jobs stream 400 events a second, 12% of a core), and a thread woken per event
contends with the cell the user runs. A followed view's events leave the kernel once per
pusher turn anyway (pusher.py), so its follower reads the socket once per turn: one recv
brings every event since the last, and the pusher decodes a whole message's events in one
`json.loads`. Plain HTTP/1.1 on a socket (TLS for https), identity or chunked bodies.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator

READ_BYTES = 1 << 18  # a turn's worth of events of one stream, and more
EVENT_TYPE = re.compile(rb'"event_type"\s*:\s*"([^"]*)"')
EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"]*)"')


class StreamRefused(Exception):
    """The server answered the stream request with something other than 200."""


def event_type(payload: bytes) -> str:
    found = EVENT_TYPE.search(payload)
    return found.group(1).decode() if found else ""


def event_id(payload: bytes) -> str | None:
    found = EVENT_ID.search(payload)
    return found.group(1).decode() if found else None


class EventStream:
    """GET `url` (an SSE stream) with `headers`; `bursts()` yields the payloads that came
    together. `interrupt()` from another thread ends it (and `bursts` closes it)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        secure = parts.scheme == "https"
        host = parts.hostname or "localhost"
        sock = socket.create_connection((host, parts.port or (443 if secure else 80)), timeout)
        if secure:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self._sock = sock
        self._closing = threading.Lock()
        self._closed = False
        self._raw = b""  # bytes received and not yet de-chunked
        self._text = b""  # de-chunked stream text not yet a whole event
        self._ended = False
        lines = [
            f"GET {parts.path}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Accept: text/event-stream",
            "Connection: close",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            self._chunked = self._read_head()
        except BaseException:
            self.close()
            raise
        sock.settimeout(None)  # a background job may be quiet for minutes

    def _read_head(self) -> bool:
        while b"\r\n\r\n" not in self._raw:
            data = self._sock.recv(READ_BYTES)
            if not data:
                raise StreamRefused("the connection closed before the response's headers")
            self._raw += data
        head, self._raw = self._raw.split(b"\r\n\r\n", 1)
        status, *fields = head.decode("latin-1").split("\r\n")
        code = status.split(" ", 2)[1] if status.count(" ") else "?"
        if code != "200":
            raise StreamRefused(f"{status} {self._raw[:200].decode('utf-8', 'replace')}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
        kind = headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise StreamRefused(f"the answer is not an event stream ({kind or 'no content type'})")
        return "chunked" in headers.get("transfer-encoding", "").lower()

    def bursts(self, pace: Callable[[], float]) -> Iterator[list[bytes]]:
        """Each read's whole events (raw `data` payloads), then a sleep of `pace()` seconds
        while the next ones gather in the socket."""
        try:
            payloads = self._payloads(self._body(b""))  # what came with the headers
            while True:
                if payloads:
                    yield payloads
                if self._ended:
                    return
                time.sleep(pace())
                data = self._sock.recv(READ_BYTES)
                if not data:
                    return
                payloads = self._payloads(self._body(data))
        finally:
            self.close()

    def _body(self, data: bytes) -> bytes:
        """The stream text in `data` (and before it), without chunk framing."""
        self._raw += data
        if not self._chunked:
            text, self._raw = self._raw, b""
            return text
        out, at = [], 0
        while True:
            line_end = self._raw.find(b"\r\n", at)
            if line_end < 0:
                break
            size = int(self._raw[at:line_end].split(b";")[0], 16)
            if size == 0:
                self._ended = True
                break
            stop = line_end + 2 + size
            if len(self._raw) < stop + 2:
                break
            out.append(self._raw[line_end + 2 : stop])
            at = stop + 2
        self._raw = self._raw[at:]
        return b"".join(out)

    def _payloads(self, text: bytes) -> list[bytes]:
        self._text += text
        if b"\r" in self._text:  # CRLF line ends (a CR at the end may be half of one)
            held = b"\r" if self._text.endswith(b"\r") else b""
            self._text = self._text[: len(self._text) - len(held)].replace(b"\r\n", b"\n") + held
        *events, self._text = self._text.split(b"\n\n")
        payloads = []
        for event in events:
            data = b"\n".join(
                line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")
            )
            if data == b"[DONE]":
                self._ended = True
            elif data:
                payloads.append(data)
        return payloads

    def interrupt(self) -> None:
        """End the stream from another thread, at once: the connection is shut down (the
        gateway sees it end), a read waiting on it returns, and `bursts` ends and closes it.
        Never closes the socket under a reader that may still use its descriptor."""
        with self._closing:
            if not self._closed:
                self._shutdown()

    def close(self) -> None:
        with self._closing:  # never while `interrupt` uses the descriptor
            if not self._closed:
                self._closed = True
                self._shutdown()
                self._sock.close()

    def _shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # not connected (any more)
            pass
