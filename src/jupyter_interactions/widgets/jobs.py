"""JobBoard: this notebook's background jobs, live (`%interactions jobs`).

It reads the gateway's stream of the session's job changes (`sessions/{key}/events`: the
jobs as they are, then each change), so it is right after a kernel restart or a browser
reload and nobody polls. The page follows that stream when it reaches the gateway; else a
kernel thread does, for as long as the board is open. `as_of` says when the rows were last
changed, so a saved notebook shows the last state with its time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import traitlets

from ..client import SessionRoutes
from ..errors import InteractionsError
from ..jobs import RECONNECTS
from ..protocol import now
from ..render.listing import Listing
from .base import ViewWidget, asset
from .calls import serve_files, serve_interactions, take_over
from .frontend import FRONT_END

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..session import Session


class JobBoard(ViewWidget):
    _esm = traitlets.Unicode().tag(sync=True)
    session_key = traitlets.Unicode().tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    as_of = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session: Session) -> None:
        # First, what close() uses: a widget is closed when collected, also one whose
        # construction failed below (e.g. the front end not built).
        self._closed = threading.Event()
        self._stream: Any = None
        follower = FRONT_END.follower_for(session)
        super().__init__(
            _esm=asset("jobs.js").read_text(),
            session_key=session.key,
            follower=follower,
            gateway=FRONT_END.gateway_for(follower),
        )
        self.session = session
        self._last_event_id: str | None = None
        serve_interactions(self, session)
        serve_files(self, session)
        events = self._open()  # the rows as they are, before the cell returns
        if events is not None and self.follower == "kernel":
            threading.Thread(
                target=self._follow, args=(events,), name="job-board", daemon=True
            ).start()
        elif self._stream is not None:
            self._stream.close()  # the page follows from here on

    def on_front_end_message(self, content: dict[str, Any]) -> None:
        take_over(self, self.session, content)  # an opened row's run, when the page lost it

    def _open(self) -> Iterator[dict[str, Any]] | None:
        """Open the session's event stream and apply its first event (the jobs as they are,
        or what was missed since the last one seen); None where the gateway keeps no jobs."""
        routes = self.session.routes
        if not isinstance(routes, SessionRoutes):  # direct mode: no server-side jobs
            self._apply({"event_type": "session.jobs", "jobs": self.session.jobs()})
            return None
        self._stream = routes.events(self._last_event_id)
        if self._closed.is_set():  # closed while it connected: close() saw the one before
            self._stream.close()
            return iter(())
        events = iter(self._stream)
        first = next(events, None)  # None: the stream ended at once (the gateway stopped)
        if first is not None:
            self._apply(first)
        return events

    def _apply(self, event: dict[str, Any]) -> None:
        self._last_event_id = event.get("event_id") or self._last_event_id
        if event.get("event_type") == "session.jobs":
            rows = list(event.get("jobs") or [])
        elif event.get("event_type") == "job.updated":
            job, rows = event["job"], list(self.rows)
            at = next((i for i, r in enumerate(rows) if r["id"] == job["id"]), None)
            if at is None:
                rows.append(job)  # a new job
            else:
                rows[at] = job
        else:
            return
        with self.hold_sync():
            self.rows = rows
            self.as_of = now()

    def _follow(self, events: Iterator[dict[str, Any]]) -> None:
        """Apply each change; after a drop, resume from the last event seen."""
        drops = 0
        while not self._closed.is_set():
            try:
                for event in events:
                    drops = 0
                    self._apply(event)
            except InteractionsError:
                pass  # a drop, or the gateway stopped: resumed below
            if self._closed.is_set():
                return
            drops += 1
            if drops > RECONNECTS:
                return  # `as_of` tells how old the rows are
            if self._closed.wait(min(0.5 * drops, 5.0)):
                return
            try:
                events = self._open() or iter(())
            except InteractionsError:
                events = iter(())

    def close(self) -> None:
        """Stop following (the kernel closed the board, or the page closed its comm)."""
        self._closed.set()
        if self._stream is not None:
            self._stream.close()
        super().close()

    def fallback(self) -> dict[str, str]:
        rows = [
            [r["id"], r.get("status"), r.get("thread"), r.get("agent") or r.get("model"),
             r.get("steps"), r.get("tokens"), r.get("created")]
            for r in self.rows
        ]  # fmt: skip
        columns = ["job", "status", "thread", "model/agent", "steps", "tokens", "created"]
        table = Listing("jobs", columns, rows)._repr_mimebundle_()
        note = f"as of {self.as_of}" if self.as_of else ""
        return {
            "text/plain": table["text/plain"],
            "text/markdown": f"{table['text/markdown']}\n\n*{note}*"
            if note
            else table["text/markdown"],
        }

    def __repr__(self) -> str:
        return f"JobBoard({self.session_key!r}, jobs={len(self.rows)})"
