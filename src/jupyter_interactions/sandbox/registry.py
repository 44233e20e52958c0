"""Sandbox kinds, found through the `jupyter_interactions.sandboxes` entry points.

Built-ins (`local`, `jupyter`) register the same way a third-party plugin does, so choosing
a kind is a lookup, never a branch on its name. A plugin that fails to load is logged and
skipped: one broken package must not take the gateway down.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ..config import GatewayConfig
from ..errors import SandboxUnavailable
from .base import Sandbox

__all__ = ["GROUP", "available", "create", "create_for"]

log = logging.getLogger(__name__)
GROUP = "jupyter_interactions.sandboxes"


def _load(entry_point: EntryPoint) -> type[Sandbox]:
    """The Sandbox class behind one entry point; raises with the reason it is unusable."""
    loaded = entry_point.load()
    if not (isinstance(loaded, type) and issubclass(loaded, Sandbox)):
        raise TypeError(f"{entry_point.value} is not a Sandbox subclass")
    return loaded


def available() -> dict[str, type[Sandbox]]:
    """Every sandbox kind that loads here, by entry point name."""
    kinds: dict[str, type[Sandbox]] = {}
    for entry_point in entry_points(group=GROUP):
        try:
            kinds[entry_point.name] = _load(entry_point)
        except Exception as exc:  # a broken plugin is skipped, never fatal
            log.warning("skipping sandbox plugin %r: %s", entry_point.name, exc)
    return kinds


def create(kind: str, **options: Any) -> Sandbox:
    """A new, not yet started, sandbox of that kind, built with these options."""
    matches = list(entry_points(group=GROUP, name=kind))
    if not matches:
        raise SandboxUnavailable(
            f"unknown sandbox kind {kind!r}; known kinds: {sorted(available())}. Install the "
            f"package that provides it, or set 'sandbox' in jupyter_interactions.json"
        )
    try:
        cls = _load(matches[0])
    except Exception as exc:
        raise SandboxUnavailable(
            f"the sandbox plugin {kind!r} cannot be loaded ({type(exc).__name__}: {exc}); "
            f"reinstall it, or choose one of {sorted(available())}"
        ) from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise SandboxUnavailable(
            f"sandbox {kind!r} does not accept these options ({exc}); check 'sandbox_options' "
            f"(or 'sandbox_kinds.{kind}') in jupyter_interactions.json"
        ) from None


def create_for(config: GatewayConfig, kind: str | None = None, **options: Any) -> Sandbox:
    """The sandbox a request gets: its own `kind` if it names one, else the configured one.
    A kind's options come from `config.sandbox_kinds[kind]`, then, for the configured kind,
    `config.sandbox_options` on top; `options` (e.g. the environment's root and limits) are
    added last either way.
    """
    chosen, configured = options_for(config, kind)
    return create(chosen, **{**configured, **options})


def options_for(config: GatewayConfig, kind: str | None = None) -> tuple[str, dict[str, Any]]:
    """The kind a request gets and the options configured for it (see `create_for`)."""
    chosen = kind or config.sandbox
    configured = dict(config.sandbox_kinds.get(chosen) or {})
    if chosen == config.sandbox:
        configured.update(config.sandbox_options)
    return chosen, configured
