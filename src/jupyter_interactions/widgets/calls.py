"""The calls a widget's front end makes through the kernel (when the page cannot reach the
gateway itself, and for what only the kernel can do: copy into the notebook's folder).

`serve_interactions` answers get/cancel/follow/unfollow, `serve_files` answers
files/read/copy; each is one small function over the session's client, shared by every widget
that needs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..jobs import RECONNECTS
from .base import CallError, ViewWidget
from .pusher import PUSHER
from .sse import EventStream, event_id, event_type

if TYPE_CHECKING:
    from ..launch import Connection
    from ..session import Session


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The SDK warns that environments and agents are experimental on each use: not news to
    the notebook's reader."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(Environments|Agents) usage", UserWarning)
        yield


def wire(obj: Any) -> dict[str, Any]:
    """An SDK object as the wire JSON the front end folds (what the page would have read)."""
    if isinstance(obj, dict):
        return obj
    return obj.model_dump(mode="json", exclude_none=True, by_alias=True)


def follow_in_kernel(
    widget: ViewWidget,
    session: Session,
    interaction_id: str,
    last_event_id: str | None = None,
    on_end: Callable[[str], None] | None = None,
    on_status: Callable[[str, str], None] | None = None,
) -> StreamFollower | None:
    """Follow an interaction's stream in a worker and push its events to `widget`, coalesced
    with every other followed view (pusher.py); resumes after drops from the last event.
    `on_status(interaction_id, status)` runs as its status changes, `on_end(interaction_id)`
    once it has ended. The events are forwarded as the raw payloads read (sse.py): only the
    interaction-level ones (a status, the end: a few per stream) are decoded here. The
    follower stops when the widget closes; None when it is closed already or follows the
    interaction already (one follower per view and interaction)."""
    follower = StreamFollower(widget, session, interaction_id, last_event_id, on_end, on_status)
    if not widget.keep(interaction_id, follower):
        return None
    follower.thread.start()
    return follower


@dataclass(eq=False)
class StreamFollower:
    """The worker of `follow_in_kernel`. `stop()` (any thread, never waits) ends it: its
    stream is shut down at once, and nothing more is pushed or heard from it."""

    widget: ViewWidget
    session: Session
    interaction_id: str
    last_event_id: str | None
    on_end: Callable[[str], None] | None
    on_status: Callable[[str, str], None] | None
    thread: threading.Thread = field(init=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stream: EventStream | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        name = f"view-{self.interaction_id}"
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            stream = self._stream
        if stream is not None:
            stream.interrupt()  # the worker wakes, closes it and ends

    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _run(self) -> None:
        try:
            with PUSHER.following():
                self._follow()
        finally:
            self.widget.release(self.interaction_id, self)

    def _follow(self) -> None:
        drops = 0
        while drops <= RECONNECTS and not self.stopped():
            ended = False
            try:
                with contextlib.closing(self._bursts()) as bursts:  # closed on a return too
                    for payloads in bursts:
                        if self.stopped():
                            return
                        self.last_event_id = next(
                            filter(None, map(event_id, reversed(payloads))), self.last_event_id
                        )
                        drops = 0
                        PUSHER.push_all(self.widget, self.interaction_id, payloads)
                        for kind, status in interaction_news(payloads):
                            if self.on_status is not None and status:
                                self.on_status(self.interaction_id, status)
                            ended = ended or kind in ("interaction.completed", "error")
            except Exception:
                pass  # a drop (or a stop): resumed below from the last event seen
            if self.stopped():
                return
            if ended:
                PUSHER.flush()
                if self.on_end is not None:
                    self.on_end(self.interaction_id)
                return
            drops += 1
            self._stopped.wait(min(0.2 * drops, 2.0))

    def _bursts(self) -> Generator[list[bytes]]:
        """The interaction's events from the last one seen on, as raw payloads in bursts read
        once per pusher turn. Google's service directly goes through the SDK (its URL and
        auth are the SDK's to know), one event at a time; a stop ends that at its next event."""
        connection = self.session.connection
        if connection.direct:
            stream = self.session.client.interactions.get(
                self.interaction_id, stream=True, last_event_id=self.last_event_id
            )
            with stream as events:
                for event in events:
                    yield [json.dumps(wire(event)).encode()]
            return
        stream = EventStream(*stream_request(connection, self.interaction_id, self.last_event_id))
        with self._lock:
            self._stream = stream
            if self._stopped.is_set():  # stopped while it connected
                stream.interrupt()
        yield from stream.bursts(PUSHER.turn)  # closes the stream as it ends


def take_over(
    widget: ViewWidget,
    session: Session,
    content: dict[str, Any],
    on_end: Callable[[str], None] | None = None,
    on_status: Callable[[str, str], None] | None = None,
) -> bool:
    """The page lost the gateway while it followed one of `widget`'s runs (`content`: its
    `{"type": "follow", "by": "kernel", "id", "last_event_id"}`): the kernel follows that run
    from the page's last event (`on_end`, `on_status`: as `follow_in_kernel`'s). False for
    any other message."""
    if content.get("type") != "follow" or content.get("by") != "kernel" or not content.get("id"):
        return False
    interaction_id, last = str(content["id"]), content.get("last_event_id")
    follow_in_kernel(widget, session, interaction_id, last, on_end=on_end, on_status=on_status)
    return True


def interaction_news(payloads: list[bytes]) -> Iterator[tuple[str, str | None]]:
    """(event type, status) of each interaction-level event among `payloads` (a few a
    stream: only these are decoded); a step's events are the view's business only."""
    for payload in payloads:
        kind = event_type(payload)
        if kind.startswith("interaction.") or kind == "error":
            data = json.loads(payload)
            yield kind, (data.get("interaction") or {}).get("status") or data.get("status")


def stream_request(
    connection: Connection, interaction_id: str, last_event_id: str | None = None
) -> tuple[str, dict[str, str]]:
    """The URL and headers of an interaction's SSE stream at our gateway (from
    `last_event_id` on), for `EventStream`."""
    query = {"stream": "true", **({"last_event_id": last_event_id} if last_event_id else {})}
    url = (
        f"{connection.base_url}v1/interactions/{urllib.parse.quote(interaction_id, safe='')}"
        f"?{urllib.parse.urlencode(query)}"
    )
    headers = {"x-goog-api-key": str(connection.token or ""), **dict(connection.headers)}
    return url, headers


def serve_interactions(widget: ViewWidget, session: Session) -> None:
    def get(id: str) -> dict[str, Any]:
        return wire(session.client.interactions.get(id))

    def cancel(id: str) -> dict[str, Any]:
        try:
            return {"status": wire(session.client.interactions.cancel(id)).get("status")}
        except Exception as exc:  # e.g. it had already ended: the gateway says so
            raise CallError(getattr(exc, "message", None) or str(exc)) from None

    def follow(id: str, last_event_id: str | None = None) -> dict[str, Any]:
        follow_in_kernel(widget, session, id, last_event_id)
        return {"following": id}

    def unfollow(id: str) -> dict[str, Any]:
        widget.stop_following(id)
        return {"following": None}

    widget.answer("get", get)
    widget.answer("cancel", cancel)
    widget.answer("follow", follow)
    widget.answer("unfollow", unfollow)


def serve_files(widget: ViewWidget, session: Session, folder: Path | None = None) -> None:
    """files(env), read(env, path), copy(env, path, overwrite) into `folder` (the kernel's
    working directory: the notebook's folder when Jupyter started the kernel)."""

    def files(env: str) -> dict[str, Any]:
        with quiet():
            listing = session.client.environments.files.list(
                env, "", recursive=True, page_size=1000
            )
        return {"files": [wire(f) for f in (listing.files or [])]}

    def read(env: str, path: str) -> tuple[dict[str, Any], bytes]:
        with quiet():
            data = session.client.environments.files.download(environment=env, path=path)
        return {"path": path, "size": len(data)}, data

    def copy(env: str, path: str, overwrite: bool = False) -> dict[str, Any]:
        target = (folder or Path.cwd()) / Path(path).name
        if target.exists() and not overwrite:
            raise CallError(f"{target.name} exists in the notebook's folder")
        with quiet():
            data = session.client.environments.files.download(environment=env, path=path)
        # Written whole or not at all: a temp file in the same folder, then renamed.
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return {"path": target.name, "size": len(data)}

    widget.answer("files", files)
    widget.answer("read", read)
    widget.answer("copy", copy)
