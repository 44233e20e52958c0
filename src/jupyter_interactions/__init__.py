"""jupyter-interactions: models and agents from Jupyter cells, through the Interactions API.

`%load_ext jupyter_interactions` registers the magics; the server extension mounts the
gateway inside Jupyter Server. Both entry points import lazily, so neither side pulls in
the other (the gateway never imports IPython).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .gateway.extension import InteractionsExtension

    return [{"module": "jupyter_interactions.gateway.extension", "app": InteractionsExtension}]
