"""JobBoard: this notebook's background jobs, live (`%interactions jobs`).

It reads the gateway's record of the session (so it is right after a kernel restart or a
browser reload): from the page when the page reaches the gateway, else the kernel refreshes
`rows` every two seconds while a job runs. `as_of` says when the rows were read, so a saved
notebook shows the last state with its time.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import traitlets

from ..protocol import TERMINAL
from ..render.listing import Listing
from .base import ViewWidget, asset
from .calls import serve_files, serve_interactions, wire
from .frontend import FRONT_END

if TYPE_CHECKING:
    from ..session import Session

REFRESH_SECONDS = 2.0


def _tokens(usage: dict[str, Any] | None) -> int:
    usage = usage or {}
    return int(
        usage.get("total_tokens")
        or (usage.get("total_input_tokens") or 0) + (usage.get("total_output_tokens") or 0)
    )


class JobBoard(ViewWidget):
    _esm = traitlets.Unicode().tag(sync=True)
    session_key = traitlets.Unicode().tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    as_of = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session: Session) -> None:
        super().__init__(
            _esm=asset("jobs.js").read_text(),
            session_key=session.key,
            follower=FRONT_END.follower_for(session),
            gateway=FRONT_END.gateway_for(FRONT_END.follower_for(session)),
        )
        self.session = session
        serve_interactions(self, session)
        serve_files(self, session)
        self.read()
        self._stop = threading.Event()
        if self.follower == "kernel" and self._running():
            threading.Thread(target=self._refresh, name="job-board", daemon=True).start()

    def read(self) -> None:
        """Rows from the gateway: the session's jobs, with each running job's steps and
        tokens (finished ones are read once)."""
        known = {r["id"]: r for r in self.rows}
        rows = []
        for record in self.session.jobs():
            before = known.get(record["id"])
            if before is not None and before.get("status") in TERMINAL:
                rows.append(before)
                continue
            row = {
                k: record.get(k) for k in ("id", "status", "thread", "model", "agent", "created")
            }
            try:
                interaction = wire(self.session.client.interactions.get(record["id"]))
            except Exception:
                interaction = {}
            row.update(
                status=interaction.get("status") or row["status"],
                updated=interaction.get("updated") or record.get("updated"),
                steps=len(interaction.get("steps") or []),
                tokens=_tokens(interaction.get("usage")),
                environment_id=interaction.get("environment_id"),
            )
            rows.append(row)
        with self.hold_sync():
            self.rows = rows
            self.as_of = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _running(self) -> bool:
        return any(r.get("status") not in TERMINAL for r in self.rows)

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                self.read()
            except Exception:
                continue  # the gateway may be restarting; the next tick tries again
            if not self._running():
                return

    def close(self) -> None:
        self._stop.set()
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
