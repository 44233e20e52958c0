"""RunView: one interaction (or a chain of function-call rounds) as a live timeline.

The view streams from the page when the page reaches the gateway (`follower` "browser"):
the kernel only hands it the ids and, at the end, the final interactions. Otherwise the
kernel pushes the events it reads (a foreground turn) or follows (a background job), through
the kernel-wide pusher. What lasts (`snapshots`, the final interactions) is a synced trait
set before the cell returns; deltas travel as custom messages and are never saved.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import traitlets

from ..render.bundle import reply_bundle
from ..render.transcript import Transcript
from .base import ViewWidget, asset
from .calls import follow_in_kernel, serve_files, serve_interactions, take_over, wire
from .frontend import FRONT_END
from .pusher import PUSHER

if TYPE_CHECKING:
    from ..session import Session


class RunView(ViewWidget):
    _esm = traitlets.Unicode().tag(sync=True)
    interaction_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    snapshots = traitlets.List(traitlets.Dict()).tag(sync=True)
    thread = traitlets.Unicode("").tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)
    # Each interaction's status as the page saw it while it followed (reported back on a
    # change of status, not per event), so a Job nobody in the kernel follows stays true.
    statuses = traitlets.Dict().tag(sync=True)

    def __init__(self, session: Session, *, thread: str | None = None, label: str = "") -> None:
        follower = FRONT_END.follower_for(session)
        super().__init__(
            _esm=asset("run.js").read_text(),
            thread=thread or "",
            label=label,
            follower=follower,
            gateway=FRONT_END.gateway_for(follower),
        )
        self.session = session
        self.transcript: Transcript | None = None
        self._handle: Any = None
        self._background: set[str] = set()
        self._finished: set[str] = set()
        self._jobs: dict[str, Any] = {}  # the Job of each background interaction shown
        serve_interactions(self, session)
        serve_files(self, session)

    # --- what the kernel tells the view ----------------------------------------------------

    def show(self) -> RunView:
        """Display the view (its handle is updated with the final fallback at the end)."""
        from IPython.display import display

        self._handle = display(self, display_id=True)
        return self

    def begin(self, interaction_id: str, *, background: bool = False, job: Any = None) -> None:
        """Show `interaction_id` next. A `background` job has nobody else reading its stream
        in the kernel: the page follows it, or a kernel thread does when the page cannot;
        either way its `job` hears its status and, at the end, its final state."""
        if interaction_id in self.interaction_ids:
            return
        if job is not None:
            self._jobs[interaction_id] = job
        self.interaction_ids = [*self.interaction_ids, interaction_id]
        if background:
            self._background.add(interaction_id)
            if self.follower == "kernel":
                follow_in_kernel(
                    self, self.session, interaction_id, on_end=self._ended, on_status=self._status
                )

    def feed(self, interaction_id: str | None, event: Any) -> None:
        """An event the kernel read anyway (a foreground turn): the view learns the id at
        once; the event itself is pushed only when the page does not follow."""
        if interaction_id is not None and interaction_id not in self.interaction_ids:
            self.begin(interaction_id)
        if self.follower == "kernel" and interaction_id is not None:
            PUSHER.push(self, interaction_id, wire(event))

    def finish(
        self, transcript: Transcript | None, interactions: list[Any] | None = None
    ) -> list[Any]:
        """The final state: the whole interactions (fetched if not given) and the transcript
        the text fallback is made of. Set before the cell returns (a foreground turn).
        Returns the interactions it holds."""
        PUSHER.flush()
        if interactions is None:
            interactions = [self._fetch(i) for i in self.interaction_ids]
        fetched = [i for i in interactions if i is not None]
        if transcript is None and fetched:
            transcript = Transcript.from_interaction(fetched[-1])
        self.transcript = transcript
        self.snapshots = [wire(i) for i in fetched]
        if self._handle is not None:
            self._handle.update(self)  # the saved output's fallback is the final content
        return fetched

    def _fetch(self, interaction_id: str) -> Any:
        try:
            return self.session.client.interactions.get(interaction_id)
        except Exception:  # the view keeps what it folded; the fallback has the text
            return None

    def _ended(self, interaction_id: str) -> None:
        """A background job ended (seen by the page or the kernel's follower): the view's
        final state, and its Job's."""
        if interaction_id in self._background and interaction_id not in self._finished:
            self._finished.add(interaction_id)
            final = [i for i in self.finish(None) if i.id == interaction_id]
            job = self._jobs.get(interaction_id)
            if job is not None and final:
                job.settle(final[0])

    def _status(self, interaction_id: str, status: str) -> None:
        job = self._jobs.get(interaction_id)
        if job is not None:
            job.note_status(status)

    @traitlets.observe("statuses")
    def _statuses_reported(self, change: dict[str, Any]) -> None:
        for interaction_id, status in (change["new"] or {}).items():
            if isinstance(status, str):
                self._status(interaction_id, status)

    def on_front_end_message(self, content: dict[str, Any]) -> None:
        if take_over(self, self.session, content, on_end=self._ended, on_status=self._status):
            self.follower = "kernel"  # the page lost the gateway: the kernel follows from here
        elif content.get("type") == "ended" and content.get("id"):
            threading.Thread(target=self._ended, args=(content["id"],), daemon=True).start()

    # --- display -----------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        return list(self.interaction_ids)

    def fallback(self) -> dict[str, str]:
        if self.transcript is None:
            return {"text/plain": repr(self), "text/markdown": f"*{self!r}*"}
        data, _ = reply_bundle(self.transcript, thread=self.thread, interaction_ids=self._ids())
        return {"text/plain": data["text/plain"], "text/markdown": data["text/markdown"]}

    def metadata(self) -> dict[str, Any]:
        if self.transcript is None:
            return {}
        _, metadata = reply_bundle(self.transcript, thread=self.thread, interaction_ids=self._ids())
        return metadata

    def __repr__(self) -> str:
        status = self.transcript.status if self.transcript else "running"
        ids = ", ".join(self.interaction_ids) or "starting"
        return f"RunView({ids}, status={status})"
