"""RunView: one interaction (or a chain of function-call rounds) as a live timeline.

The view streams from the page when the page reaches the gateway (`follower` "browser"):
the kernel only hands it the ids and, at the end, the final interactions. Otherwise the
kernel pushes the events it reads (a foreground turn) or follows (a background job), through
the kernel-wide pusher. What lasts (`snapshots`, the final interactions) is a synced trait
set before the cell returns; deltas travel as custom messages and are never saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import traitlets

from ..render.bundle import reply_bundle
from ..render.transcript import Transcript
from .base import ViewWidget, asset
from .calls import follow_in_kernel, serve_files, serve_interactions, wire
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

    def __init__(self, session: Session, *, thread: str | None = None, label: str = "") -> None:
        super().__init__(
            _esm=asset("run.js").read_text(),
            thread=thread or "",
            label=label,
            follower=FRONT_END.follower,
            gateway=FRONT_END.gateway,
        )
        self.session = session
        self.transcript: Transcript | None = None
        serve_interactions(self, session)
        serve_files(self, session)

    # --- what the kernel tells the view ----------------------------------------------------

    def begin(self, interaction_id: str, *, follow: bool = False) -> None:
        """Show `interaction_id` next; with `follow`, the kernel follows it when the page
        does not (a background job: nobody else reads its stream in the kernel)."""
        if interaction_id not in self.interaction_ids:
            self.interaction_ids = [*self.interaction_ids, interaction_id]
        if follow and self.follower == "kernel":
            follow_in_kernel(self, self.session, interaction_id)

    def feed(self, interaction_id: str | None, event: Any) -> None:
        """An event the kernel read anyway (a foreground turn): pushed when the page does
        not follow, else ignored (the page reads the same events from the gateway)."""
        if self.follower != "kernel":
            return
        data = wire(event)
        if interaction_id is None and data.get("event_type") == "interaction.created":
            interaction_id = data["interaction"]["id"]
            self.begin(interaction_id)
        if interaction_id is not None:
            PUSHER.push(self, interaction_id, data)

    def finish(self, transcript: Transcript, interactions: list[Any] | None = None) -> None:
        """The final state: the whole interactions (fetched if not given) and the transcript
        the text fallback is made of. Set before the cell returns."""
        self.transcript = transcript
        PUSHER.flush()
        if interactions is None:
            interactions = [self._fetch(i) for i in self.interaction_ids]
        self.snapshots = [wire(i) for i in interactions if i is not None]

    def _fetch(self, interaction_id: str) -> Any:
        try:
            return self.session.client.interactions.get(interaction_id)
        except Exception:  # the view keeps what it folded; the fallback has the text
            return None

    def on_front_end_message(self, content: dict[str, Any]) -> None:
        if content.get("type") == "follow" and content.get("by") == "kernel":
            # The page lost the gateway: the kernel takes over from the page's last event.
            self.follower = "kernel"
            follow_in_kernel(self, self.session, content["id"], content.get("last_event_id"))

    # --- display -----------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        return list(self.interaction_ids)

    def fallback(self) -> dict[str, str]:
        if self.transcript is None:
            return {"text/plain": repr(self), "text/markdown": f"*{repr(self)}*"}
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
