"""Is a widget front end live, and may the page follow the gateway itself?

A kernel cannot ask its front end what it renders, so it opens a hidden probe widget (when
the extension loads, or the first Session is made) and the probe's front-end code answers at
once. A front end that runs widget code (JupyterLab, Notebook 7, VS Code) answers within
milliseconds, and the kernel reads the answer as soon as it is idle; nbclient, nbconvert and
a terminal IPython never answer. Until the answer has come, output is the Markdown/text
display, so a cell run in the same cell as the probe (or headless) keeps today's output.

The probe also tells whether the page reaches the gateway: only when the kernel's gateway is
the Jupyter server extension of the server that started it (same origin as the page) and the
page's `{baseUrl}interactions/health` answers. Then views follow streams from the page and
the kernel does no per-event work; otherwise the kernel follows and pushes coalesced events.
"""

from __future__ import annotations

import threading
from typing import Any

import traitlets

from .base import ViewWidget, asset

GATEWAY_PATH = "interactions/"  # the server extension's mount, under the server's base URL


class Probe(ViewWidget):
    """Hidden; its front end says hello (and whether the page reaches `gateway`)."""

    _esm = traitlets.Unicode().tag(sync=True)

    def __init__(self, gateway: str) -> None:
        super().__init__(_esm=asset("probe.js").read_text(), gateway=gateway)
        self.answered = threading.Event()
        self.page_reaches_gateway = False

    def on_front_end_message(self, content: dict[str, Any]) -> None:
        if content.get("type") == "hello":
            self.page_reaches_gateway = bool(content.get("gateway"))
            self.answered.set()
            self.close()  # its job is done; nothing of it stays in widget state

    def __repr__(self) -> str:
        return "Probe()"


class FrontEnd:
    """What this kernel's front end can do, learnt once per kernel from a Probe."""

    def __init__(self) -> None:
        self._probe: Probe | None = None
        self._lock = threading.Lock()
        # Tests, benchmarks and users may say it outright.
        self.forced: bool | None = None
        self.forced_follower: str | None = None

    def probe(self) -> None:
        """Open the probe (once per kernel; a no-op outside one)."""
        with self._lock:
            if self._probe is not None or not in_kernel():
                return
            self._probe = Probe(GATEWAY_PATH)

    @property
    def live(self) -> bool:
        """True once a widget front end has answered the probe."""
        if self.forced is not None:
            return self.forced
        return self._probe is not None and self._probe.answered.is_set()

    def follower_for(self, session: Any) -> str:
        """Who follows a view's stream: "browser" when the page reaches the gateway and the
        session's gateway is that same one (the server extension of the kernel's server)."""
        if self.forced_follower is not None:
            return self.forced_follower
        reaches = self._probe is not None and self._probe.page_reaches_gateway
        if reaches and not session.direct and session.connection.origin == "jupyter-server":
            return "browser"
        return "kernel"

    @staticmethod
    def gateway_for(follower: str) -> str:
        return GATEWAY_PATH if follower == "browser" else ""

    def wait(self, timeout: float) -> bool:
        """Wait for the probe's answer (only useful off the main thread)."""
        return self._probe is not None and self._probe.answered.wait(timeout)


def in_kernel() -> bool:
    """True inside an ipykernel (a comm can reach a front end), not a terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


FRONT_END = FrontEnd()
