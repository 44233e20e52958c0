"""The Jupyter server extension's entry point, at the module path jupyter_interactions names
(`_jupyter_server_extension_points`); the extension itself is http/extension.py."""

from __future__ import annotations

from .http.extension import InteractionsExtension

__all__ = ["InteractionsExtension"]
