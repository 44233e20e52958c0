"""jupyter-interactions: models and agents from Jupyter cells, through the Interactions API.

`%load_ext jupyter_interactions` registers the magics; the server extension mounts the
gateway inside Jupyter Server. Session, Thread, TurnOptions, Reply and Job load on first use
(the error classes, which are cheap, at once), so neither side pulls in the other (the gateway
never imports IPython) and importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors
from .version import __version__

if TYPE_CHECKING:  # what a user's type checker sees; at run time __getattr__ loads them
    from .errors import *  # noqa: F403  (every error class: errors.__all__)
    from .jobs import Job
    from .reply import Reply
    from .session import Session, Thread, TurnOptions

# Public name -> the module that defines it (the TYPE_CHECKING imports above name the same).
_PUBLIC = {
    "Session": "session",
    "Thread": "session",
    "TurnOptions": "session",
    "Reply": "reply",
    "Job": "jobs",
    **dict.fromkeys(errors.__all__, "errors"),
}

__all__ = [
    "Job",
    "Reply",
    "Session",
    "Thread",
    "TurnOptions",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
]
__all__ += errors.__all__


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_interactions' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext jupyter_interactions`: register the magics (and the widgets' hooks)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext jupyter_interactions`: remove what load_ipython_extension registered."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    # The package root is the entry point of both sides: the one place outside the gateway
    # that names it (the import contracts in pyproject.toml list the kernel side without it).
    from .gateway.extension import InteractionsExtension

    return [{"module": "jupyter_interactions.gateway.extension", "app": InteractionsExtension}]
