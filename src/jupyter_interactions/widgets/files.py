"""FileBrowser: an environment's files, with previews, Download and Copy to the notebook's
folder (`%interactions files ENV`, `reply.files()`, `job.files()`, the run view's Files)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import traitlets

from ..render.listing import Listing
from .base import ViewWidget, asset
from .calls import serve_files, wire
from .frontend import FRONT_END

if TYPE_CHECKING:
    from ..session import Session


class FileBrowser(ViewWidget):
    _esm = traitlets.Unicode().tag(sync=True)
    environment_id = traitlets.Unicode().tag(sync=True)
    # True while an agent may be writing: the listing refreshes itself.
    live = traitlets.Bool(False).tag(sync=True)

    def __init__(self, session: Session, environment_id: str, *, live: bool = False) -> None:
        super().__init__(
            _esm=asset("files.js").read_text(),
            environment_id=environment_id,
            live=live,
            follower=FRONT_END.follower,
            gateway=FRONT_END.gateway,
        )
        self.session = session
        serve_files(self, session)
        self._listing: list[dict[str, Any]] | None = None

    def refresh(self) -> None:
        """Ask the views to list the files again (e.g. after a step wrote some)."""
        self.send({"type": "refresh"})

    def listing(self) -> list[dict[str, Any]]:
        """The environment's files now (also what the text fallback shows)."""
        files = self.session.client.environments.files.list(
            self.environment_id, "", recursive=True, page_size=1000
        )
        self._listing = [wire(f) for f in (files.files or [])]
        return self._listing

    def fallback(self) -> dict[str, str]:
        try:
            entries = self._listing if self._listing is not None else self.listing()
        except Exception as exc:
            text = f"files of {self.environment_id}: not available ({exc})"
            return {"text/plain": text, "text/markdown": f"*{text}*"}
        rows = [
            [e.get("path"), e.get("size_bytes"), e.get("modified")]
            for e in entries
            if e.get("type") != "directory"
        ]
        table = Listing(f"files in {self.environment_id}", ["path", "bytes", "modified"], rows)
        return table._repr_mimebundle_()

    def __repr__(self) -> str:
        return f"FileBrowser({self.environment_id!r})"
