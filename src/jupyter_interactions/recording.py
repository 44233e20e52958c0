"""Kernel side of record and replay: the cassette's state as a display, where a notebook's
cassette is, and the cell hooks (which cell a request comes from; a key typed into a cell;
recordings the gateway refused).

The recording itself happens in the gateway (gateway/replay/); this module only names paths
and cells and shows what the gateway says.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import config
from .errors import RequestError
from .protocol import CASSETTE_SUFFIX, notebook_cassette
from .secret_scan import find_in_text, typed_key


def cassette_path(given: str | None, session_key: str) -> str:
    """The absolute cassette folder: `given` (relative to the kernel's directory, which is the
    notebook's), else the notebook's own `<name>.interactions` beside it."""
    if given:
        path = given if given.endswith(CASSETTE_SUFFIX) else given + CASSETTE_SUFFIX
        return os.path.abspath(path)
    notebook = config.notebook_session_name() or session_key
    if notebook.endswith(".ipynb"):
        return notebook_cassette(os.path.abspath(notebook))
    raise RequestError(
        "this kernel does not know its notebook's name (not started by Jupyter): give the "
        f"cassette's folder, e.g. %interactions record analysis{CASSETTE_SUFFIX}"
    )


class CassetteState:
    """What the gateway does with this notebook's interactions: mode, cassette, problems."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.mode: str = str(state.get("mode", "off"))
        self.path: str | None = state.get("path")
        self.interactions: int = int(state.get("interactions") or 0)
        self.recorded: str | None = state.get("recorded")
        self.problems: list[dict[str, Any]] = list(state.get("problems") or [])

    def _lines(self) -> list[str]:
        if self.mode == "off":
            return ["not recording or replaying"]
        doing = {
            "record": "recording into",
            "replay": "replaying from",
            "auto": "replaying what needs Google (no key) from",
        }[self.mode]
        when = f", last recorded {self.recorded}" if self.recorded else ""
        held = f"{self.interactions} interaction{'s' if self.interactions != 1 else ''}"
        lines = [f"{doing} {os.path.basename(str(self.path))} ({held}{when})"]
        lines += [f"not recorded: {p['message']}" for p in self.problems]
        return lines

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        lines = self._lines()
        return {"text/plain": "\n".join(lines), "text/markdown": "  \n".join(lines)}

    def __repr__(self) -> str:
        return "\n".join(self._lines())


class CellWatch:
    """IPython event hooks: before a cell, tell the sessions its number and id (requests carry
    them) and warn about a key typed into it; after it, show recordings the gateway refused."""

    def __init__(self, shell: Any, sessions: Any) -> None:
        self.shell = shell
        self.sessions = sessions  # () -> the magics' sessions
        self.recording: Any = None  # the Session that records, once %interactions record ran
        self._shown = 0

    def register(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)

    def unregister(self) -> None:
        for name, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            try:
                self.shell.events.unregister(name, callback)
            except ValueError:
                pass

    def pre_run_cell(self, info: Any) -> None:
        cell_id = getattr(info, "cell_id", None) or ""
        # IPython counts the cell before this event: the running cell is one less.
        label = f"{self.shell.execution_count - 1} {cell_id}".strip()
        for session in self.sessions():
            session.cell = label
        source = getattr(info, "raw_cell", "") or ""
        if typed_key(source) or find_in_text(source):
            print(
                "warning: this cell holds what looks like an API key; it would be saved with "
                "the notebook. Set GEMINI_API_KEY in the gateway's environment or config "
                "file instead (README: 'Keys').",
                file=sys.stderr,
            )

    def post_run_cell(self, result: Any) -> None:
        shown = getattr(result, "result", None)
        if shown is not None and find_in_text(repr(shown)):
            print(
                "warning: this cell's output holds what looks like an API key; clear it "
                "before saving the notebook",
                file=sys.stderr,
            )
        if self.recording is None:
            return
        try:
            state = self.recording.cassette()
        except Exception:  # the cell's own result matters more than this report
            return
        fresh = [p for p in state.problems if int(p.get("n", 0)) > self._shown]
        for problem in fresh:
            print(f"warning: {problem['message']}", file=sys.stderr)
        self._shown = max([self._shown, *(int(p.get("n", 0)) for p in fresh)])
