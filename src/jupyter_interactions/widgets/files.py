"""FileBrowser: an environment's files, with previews, Download and Copy to the notebook's
folder (`%interactions files ENV`, `reply.files()`, `job.files()`, the run view's Files)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import traitlets

from .base import ViewWidget, asset
from .calls import serve_files
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
            follower=FRONT_END.follower_for(session),
            gateway=FRONT_END.gateway_for(FRONT_END.follower_for(session)),
        )
        self.session = session
        serve_files(self, session)

    def refresh(self) -> None:
        """Ask the views to list the files again (e.g. after a step wrote some)."""
        self.send({"type": "refresh"})

    def fallback(self) -> dict[str, str]:
        try:
            return self.session.files_table(self.environment_id)._repr_mimebundle_()
        except Exception as exc:
            text = f"files in {self.environment_id}: not available ({exc})"
            return {"text/plain": text, "text/markdown": f"*{text}*"}

    def __repr__(self) -> str:
        return f"FileBrowser({self.environment_id!r})"
