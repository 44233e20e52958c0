"""How the widgets plug into the kernel side: `install()` opens the front-end probe and
registers the view factory the core asks for richer views (render.live.rich_view)."""

from __future__ import annotations

from typing import Any

from ..render import live
from .files import FileBrowser
from .frontend import FRONT_END
from .run import RunView


def views(kind: str, *, session: Any, **context: Any) -> Any:
    """The widget for `kind`, displayed, or None when no widget front end is live."""
    if not FRONT_END.live:
        return None
    if kind == "run":
        return RunView(session, thread=context.get("thread")).show()
    if kind == "job":
        job = context["job"]
        view = RunView(session, thread=job.thread).show()
        view.begin(job.id, background=True, job=job)
        return view
    if kind == "files":
        return FileBrowser(session, context["environment_id"], live=context.get("live", False))
    return None


def install() -> None:
    """Once per kernel: probe the front end, and offer the views to the core."""
    FRONT_END.probe()
    if views not in live.RICH_VIEWS:
        live.RICH_VIEWS.append(views)


def uninstall() -> None:
    if views in live.RICH_VIEWS:
        live.RICH_VIEWS.remove(views)


def job_board(session: Any) -> Any:
    """The live job board, or None (the caller shows the text table)."""
    from .jobs import JobBoard

    return JobBoard(session) if FRONT_END.live else None


def panel(session: Any) -> Any:
    """The agent panel; it needs a widget front end."""
    from ..errors import RequestError
    from .panel import AgentPanel

    if not FRONT_END.live:
        raise RequestError(
            "the agent panel needs a live widget front end (JupyterLab, Notebook 7, VS Code); "
            "use %%interaction here"
        )
    return AgentPanel(session)
