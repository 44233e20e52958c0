"""jupyter-interactions: models and agents from Jupyter cells, through the Interactions API.

`%load_ext jupyter_interactions` registers the magics; the server extension mounts the
gateway inside Jupyter Server. Names load on first use, so neither side pulls in the other
(the gateway never imports IPython) and importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

# Public name -> the module that defines it.
_PUBLIC = {
    "Session": "session",
    "Thread": "session",
    "Reply": "session",
    "Job": "jobs",
    "InteractionsError": "errors",
}

__all__ = [
    "InteractionsError",
    "Job",
    "Reply",
    "Session",
    "Thread",
    "__version__",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_interactions' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .gateway.extension import InteractionsExtension

    return [{"module": "jupyter_interactions.gateway.extension", "app": InteractionsExtension}]
