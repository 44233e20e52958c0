"""Widgets for live front ends (JupyterLab, Notebook 7, VS Code): the run view, the file
browser, the job board and the agent panel, built on anywidget. The core never imports this
package; the magics install it (`install`), which hooks the views into the kernel side."""

from __future__ import annotations

from .files import FileBrowser
from .frontend import FRONT_END
from .jobs import JobBoard
from .panel import AgentPanel
from .run import RunView

__all__ = ["FRONT_END", "AgentPanel", "FileBrowser", "JobBoard", "RunView"]
