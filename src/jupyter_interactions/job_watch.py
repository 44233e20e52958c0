"""JobWatch: a session's background jobs that nobody displays, watched through the gateway's
feed of the session's job changes (one stream, one thread) rather than each job's own stream.

A watched job shows its status and step count as the feed's rows give them; when its row says
it has ended, the watcher fetches the whole interaction once and settles the job with it, as a
job that followed its own stream ends (its steps whole, images included). The thread runs while
there are jobs to watch and closes its stream when none remain. If the feed cannot be reopened
after `RECONNECTS` tries, every watched job ends with that error: a `result()` never hangs.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Protocol

from .client import SessionEvents, SessionRoutes
from .errors import GatewayError, InteractionsError, NotFoundError
from .jobs import RECONNECTS, Job
from .protocol import SETTLED

CLOSE_SECONDS = 10.0  # how long close() waits for a fetch in flight


class WatchHost(Protocol):
    """What the watcher needs of its session; `Session` implements it."""

    @property
    def routes(self) -> Any:
        """The session's routes: `SessionRoutes` where a gateway keeps the session's jobs."""
        ...

    @property
    def client(self) -> Any:
        """The google-genai client the final interactions are fetched with."""
        ...

    def as_error(self, exc: BaseException, interaction_id: str | None = None) -> InteractionsError:
        """`exc` as one of our errors about `interaction_id`."""
        ...


class JobWatch:
    """Watches a session's jobs through one stream of its job changes, in one daemon thread
    that runs while there are jobs to watch."""

    def __init__(self, session: WatchHost) -> None:
        self.session = session
        self._jobs: dict[str, Job] = {}
        # The latest row of each of the session's jobs since the stream opened: a job added
        # after the thread read its rows (one that ended at once) takes them from here.
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stream: SessionEvents | None = None
        self._closed = threading.Event()

    def add(self, job: Job) -> None:
        """Watch `job` until it ends (starting the thread if it is not running)."""
        with self._lock:
            if job.done() or job.following() or self._closed.is_set():
                return
            self._jobs[job.id] = job
            row = self._rows.get(job.id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="job-watch", daemon=True)
                self._thread.start()
        if row is not None:
            self._take(job, row)

    def watching(self, job: Job) -> bool:
        """True while `job` is among the jobs watched."""
        return self._jobs.get(job.id) is job

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        """Stop watching (the jobs go on server-side; `result()` would watch them again), and
        wait for the thread to end: it opens no connection of the session's after this."""
        with self._lock:
            self._closed.set()
            self._jobs.clear()
            stream, thread = self._stream, self._thread
        if stream is not None:
            stream.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_SECONDS)

    # --- the thread ------------------------------------------------------------------------

    def _idle(self) -> bool:
        """Forget the jobs that ended or that follow their own stream now (`job.attach()`);
        True, with the thread marked gone, if none remain. Under the lock, so a job added
        meanwhile starts a new thread."""
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if job.done() or job.following():
                    del self._jobs[job_id]
            if self._jobs and not self._closed.is_set():
                return False
            self._thread = self._stream = None
            self._rows = {}
            return True

    def _run(self) -> None:
        last_event_id: str | None = None
        drops = 0
        error: BaseException | None = None
        while not self._idle():
            try:
                routes = self.session.routes
                if not isinstance(routes, SessionRoutes):
                    raise GatewayError("the gateway's job feed is not available in direct mode")
                stream = routes.events(last_event_id)
                with self._lock:
                    self._stream = stream
                if self._closed.is_set():
                    stream.close()
                for event in stream:
                    drops = 0
                    last_event_id = stream.last_event_id
                    self._apply(event)
                    if self._idle():
                        stream.close()
                        return
                error = GatewayError("the gateway closed the stream of this session's jobs")
            except Exception as exc:  # a drop, or no gateway: tried again below
                error = exc
            if self._closed.is_set():
                continue  # _idle() ends the thread
            drops += 1
            if drops > RECONNECTS:
                self._fail_all(error)
                continue
            self._closed.wait(min(0.2 * drops, 2.0))

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event_type")
        if kind == "session.jobs":  # the jobs as they are: the first event, or after a gap
            rows = {row["id"]: row for row in event.get("jobs") or []}
            with self._lock:  # a job is added either before this (here) or after (its row)
                self._rows = rows
                jobs = list(self._jobs.values())
            for job in jobs:
                row = rows.get(job.id)
                if row is None:  # the gateway forgot it (or has not stored it yet): ask
                    self._check(job)
                else:
                    self._take(job, row)
        elif kind == "job.updated":
            row = event.get("job") or {}
            with self._lock:
                self._rows[row.get("id", "")] = row
                watched = self._jobs.get(row.get("id", ""))
            if watched is not None:
                self._take(watched, row)

    def _take(self, job: Job, row: dict[str, Any]) -> None:
        status = row.get("status")
        if status in SETTLED:
            self._settle(job)
        elif status:
            job.note_status(status, steps=row.get("steps"))

    def _settle(self, job: Job, interaction: Any = None) -> None:
        """End `job` with its whole interaction (fetched unless given)."""
        if job.done() or job.following() or self._closed.is_set():
            return
        if interaction is None:
            try:
                interaction = self.session.client.interactions.get(job.id)
            except Exception as exc:
                job.fail(self.session.as_error(exc, job.id))
                return
        job.settle(interaction)

    def _check(self, job: Job) -> None:
        """A job missing from the gateway's list: settle it if it has ended; an unknown
        interaction (404) fails it; one still running is left to the coming rows."""
        if self._closed.is_set():
            return
        try:
            interaction = self.session.client.interactions.get(job.id)
        except Exception as exc:
            error = self.session.as_error(exc, job.id)
            if isinstance(error, NotFoundError):
                job.fail(error)
            return  # anything else: the feed's next rows (or its failure) tell
        if interaction.status in SETTLED:
            self._settle(job, interaction)
        elif interaction.status:
            job.note_status(interaction.status)

    def _fail_all(self, error: BaseException | None) -> None:
        """The feed is gone for good: every watched job ends with why."""
        mapped = self.session.as_error(error or GatewayError("the gateway's job feed ended"))
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            own = copy.copy(mapped)  # each error names its own job
            own.interaction_id = job.id
            job.fail(own)
