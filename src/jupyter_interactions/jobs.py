"""Job: a background interaction, followed or watched, re-attachable by id.

A job that nobody displays is watched: the session's one watcher (job_watch.py) reads the
gateway's feed of the session's job changes and settles the job with its final interaction.
A job shown as a live card, or attached on purpose (`job.attach()`), or in direct mode, is
followed: a worker thread streams `get(id, stream=True, last_event_id=...)`, so a dropped
connection or a kernel restart resumes from the last event seen. The kernel stays usable
meanwhile: `job.result()` blocks (an interrupt stops the wait, not the job), `await job` does
not, `job.cancel()` asks the server to stop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Generator
from typing import Any, Protocol

from .errors import InteractionFailed, InteractionsError, Interrupted, RequestError
from .protocol import TERMINAL
from .render.job import job_card, job_final, run_seconds
from .render.listing import Note
from .render.live import LiveView, Throttle, publish
from .render.transcript import Transcript
from .reply import FileSource, Reply, TurnView, failure_message

RECONNECTS = 5  # consecutive dropped streams tolerated before a follower reports an error
# All background jobs of a kernel share one display budget (~10 updates a second in all),
# so twenty streaming jobs cost the kernel and IOPub no more than one does.
JOB_VIEWS = Throttle()


class JobHost(FileSource, Protocol):
    """What a Job needs of the session that started it; `Session` implements it."""

    @property
    def client(self) -> Any:
        """The google-genai client the job reads its stream with."""
        ...

    def as_error(self, exc: BaseException, interaction_id: str | None = None) -> InteractionsError:
        """`exc` as one of our errors about `interaction_id` (the session may drop a gateway
        that is gone)."""
        ...

    def complete_steps(self, transcript: Transcript) -> None:
        """Fetch the finished interaction's steps when a stream could not carry them all."""
        ...

    def advance(self, thread: str, head: str, model: str | None, agent: str | None) -> None:
        """Record that `head` (by `model` or `agent`) is now `thread`'s head."""
        ...

    def cancel(self, interaction_id: str) -> Note:
        """Ask the server to stop `interaction_id`; the Note says what became of it."""
        ...

    def watch(self, job: Job) -> bool:
        """Have the session's watcher follow `job` through the gateway's feed of job
        changes; False where there is none (direct mode): the job then follows its stream."""
        ...


class Job(TurnView):
    """A background interaction: it runs on the server while this kernel watches it (the
    session's feed of job changes) or follows its event stream (a worker thread, resumed by
    event id after a drop). `result()` waits for its Reply, `await job` does so without
    blocking, `cancel()` stops it; it displays itself as a live card."""

    def __init__(
        self,
        session: JobHost,
        interaction_id: str,
        *,
        thread: str | None,
        model: str | None = None,
        agent: str | None = None,
        status: str | None = None,
        created: str | None = None,
        listed: bool = True,
    ) -> None:
        """`listed`: the gateway lists the job in the session's feed of job changes (a
        background job the session started); else (another notebook's, a foreground turn's)
        only its own stream can follow it."""
        transcript = Transcript(
            interaction_id=interaction_id, status=status, model=model, agent=agent, created=created
        )
        super().__init__(transcript)
        self.session = session
        self.id = interaction_id
        self.thread = thread
        self.listed = listed
        self.started = time.monotonic()
        self.finished: float | None = None
        self._future: concurrent.futures.Future[Reply] = concurrent.futures.Future()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._view: LiveView | None = None
        self._showing = threading.Lock()  # a view shown as the job ends still gets its end

    # --- state -----------------------------------------------------------------------------

    @property
    def steps(self) -> int:
        """Steps seen so far (thoughts, tool calls, code, outputs)."""
        return self.transcript.steps

    @property
    def elapsed(self) -> float:
        """Seconds the job has run on the server (until it ended), by the server's times;
        seconds this kernel has followed it where the server gave none."""
        seconds = run_seconds(self.transcript)
        if seconds is None:
            return (self.finished or time.monotonic()) - self.started
        return seconds

    def done(self) -> bool:
        """True once the job has ended (answered, failed or cancelled) as seen here."""
        return self._future.done()

    # --- following the stream --------------------------------------------------------------

    def attach(self, show: bool = False) -> Job:
        """Start (or keep) following the job's event stream in a worker thread, every event
        (a watched job is followed from here on); with `show`, display it too."""
        if show:
            self.show()
        if self._future.done():
            return self
        self._stop.clear()
        if self._worker is None or not self._worker.is_alive():
            # A plain thread (no copied context): its display updates carry the parent of the
            # cell running when they are sent, which is what nbclient listens to; frontends
            # route them by display id either way.
            self._worker = threading.Thread(target=self._follow, name=f"job-{self.id}", daemon=True)
            self._worker.start()
        return self

    def detach(self) -> None:
        """Stop following (the job itself keeps running server-side)."""
        self._stop.set()

    def _follow(self) -> None:
        from ._sdk import errors as sdk

        drops = 0
        while not self._stop.is_set():
            try:
                stream = self.session.client.interactions.get(
                    self.id, stream=True, last_event_id=self.transcript.last_event_id
                )
                with stream as events:
                    for event in events:
                        self.transcript.feed(event)
                        drops = 0
                        self._refresh()
                        if self._stop.is_set():
                            return
                if self.transcript.done or self.transcript.error:
                    break
                drops += 1  # the stream ended without a terminal event: resume it
            except sdk.APIConnectionError as exc:
                drops += 1
                if drops > RECONNECTS:
                    self._finish(self.session.as_error(exc, self.id))
                    return
            except Exception as exc:
                self._finish(self.session.as_error(exc, self.id))
                return
            if drops > RECONNECTS:
                break
            time.sleep(min(0.2 * drops, 2.0))
        if not self._stop.is_set():
            # Whole steps (images) as `settle` has them from the final interaction.
            self.session.complete_steps(self.transcript)
            self._finish(None)

    def keep_followed(self, show: bool = False) -> None:
        """Make sure someone follows the job: its worker or a follower already on it, else the
        session's watcher (for a listed job), else (direct mode) its own worker. With `show`,
        a live card, which needs every event: its own worker."""
        if show:
            self.attach(show=True)
        elif self._future.done() or self.following():
            return
        elif not (self.listed and self.session.watch(self)):
            self.attach()

    def following(self) -> bool:
        """True while this job's own worker reads its stream."""
        return self._worker is not None and self._worker.is_alive()

    def settle(self, interaction: Any) -> None:
        """The job ended, as another follower saw it (a widget's page, the session's
        watcher): finish with the server's final `interaction`, as if this job had followed
        it (its steps whole, the thread's head moves on, `result()` answers at once)."""
        if self._future.done() or self.following():
            return  # its own worker finishes it
        final = Transcript.from_interaction(interaction)
        final.created = final.created or self.transcript.created
        self.transcript = final
        self._finish(None)

    def fail(self, error: InteractionsError) -> None:
        """Another follower could not see the job to its end (the watcher lost the gateway,
        or the gateway forgot the job): finish with `error`."""
        if not self._future.done() and not self.following():
            self._finish(error)

    def note_status(self, status: str, steps: int | None = None) -> None:
        """A status (and step count) another follower saw: the page reports it, the watcher
        reads it from the session's job feed. The job's own worker, when it follows, is the
        one that knows."""
        if not self._future.done() and not self.following():
            self.transcript.status = status
            if steps is not None:
                self.transcript.counted_steps = steps
            self._refresh()

    def show(self) -> None:
        """Display the job here: its final state if it has ended, else a live card (which
        takes over from an earlier one, left as it was) fed by the job's own stream."""
        with self._showing:
            if self._future.done():
                publish(*self._final())
                return
            self._view = LiveView(initial=self._bundle(), throttle=JOB_VIEWS)
        self.attach()  # a live card shows every event: a watched job is followed from now

    def _refresh(self) -> None:
        if self._view is not None:
            self._view.update(lambda: self._bundle())

    def _finish(self, error: InteractionsError | None) -> None:
        if self._future.done():  # settled by another follower meanwhile
            return
        self.finished = time.monotonic()
        transcript = self.transcript
        if error is None and not transcript.answered:
            if transcript.status not in TERMINAL and not transcript.error:
                transcript.error = "the event stream ended before the job finished"
            error = InteractionFailed(failure_message(transcript), self.id, transcript.status)
        if error is not None and transcript.status != "cancelled":
            transcript.error = transcript.error or error.message
        if error is None and self.thread is not None:
            self.session.advance(self.thread, self.id, transcript.model, transcript.agent)
        # The view shows the final state before anyone waiting on the job is woken.
        with self._showing:
            if self._view is not None:
                self._view.replace(*self._final())
        if error is None:
            self._future.set_result(
                Reply(transcript, thread=self.thread, interaction_ids=[self.id])
            )
        else:
            self._future.set_exception(error)

    # --- results ---------------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> Reply:
        """Block until the job ends; its Reply, or the error it ended with. An interrupt
        stops the wait only: the job goes on, and `Interrupted` says how to stop it."""
        self.keep_followed()
        try:
            return self._future.result(timeout)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted the wait; job {self.id} is still running: job.cancel() or "
                f"%interactions cancel {self.id} stops it",
                self.id,
            ) from None

    def __await__(self) -> Generator[Any, None, Reply]:
        """`await job`: its Reply, without blocking the event loop."""
        self.keep_followed()
        return asyncio.wrap_future(self._future).__await__()

    def cancel(self) -> Note:
        """Ask the server to cancel; the stream then ends with status `cancelled`. The Note
        says what happened (or that the job had already ended)."""
        return self.session.cancel(self.id)

    def files(self) -> Any:
        """The job's environment files (an agent's job): a file browser or a table."""
        environment_id = self.transcript.environment_id
        if environment_id is None:
            try:
                environment_id = self.session.client.interactions.get(self.id).environment_id
            except Exception as exc:
                raise self.session.as_error(exc, self.id) from None
        if not environment_id:
            raise RequestError("this job has no environment: only an agent's job has files")
        return self.session.files(environment_id)

    # --- display ---------------------------------------------------------------------------

    def _bundle(self) -> dict[str, Any]:
        return job_card(self.transcript, job_id=self.id, thread=self.thread)

    def _final(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return job_final(self.transcript, job_id=self.id, thread=self.thread)

    def _snapshot(self) -> dict[str, Any]:
        """The card as of now. A watched job has read none of its steps (the feed carries
        their count only), so a display of it fetches the interaction once, to show what it
        has done so far rather than an empty card; the job's own state stays the feed's."""
        transcript = self.transcript
        if not transcript.parts and not self.following():
            try:
                fetched = Transcript.from_interaction(self.session.client.interactions.get(self.id))
            except Exception:  # best effort: the card shows what the feed told
                return self._bundle()
            fetched.created = fetched.created or transcript.created
            transcript = fetched
        return job_card(transcript, job_id=self.id, thread=self.thread)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self._final() if self.done() else (self._snapshot(), {})

    def __repr__(self) -> str:
        return f"Job({self.id!r}, status={self.status!r}, thread={self.thread!r})"
