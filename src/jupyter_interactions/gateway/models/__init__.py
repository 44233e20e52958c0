"""Model adapters, one per module, found through the `jupyter_interactions.models` entry points.

A model id resolves, in order, to: a name configured in `GatewayConfig.models`
({"adapter": ENTRY_POINT_NAME, **options}), or an entry point of that name (`echo`,
`local`, `scripted`, ...). Ids routed to Google's service (`gemini-*`) never get here: the
engine forwards them upstream. A broken plugin is logged and skipped, never fatal.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from ...errors import RequestError
from .base import Model

__all__ = ["Model", "ModelRegistry"]

log = logging.getLogger(__name__)
GROUP = "jupyter_interactions.models"


def _adapter_classes() -> dict[str, type[Model]]:
    classes: dict[str, type[Model]] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not take the gateway down
            log.warning("skipping model plugin %r: %s", ep.name, exc)
            continue
        if isinstance(cls, type) and issubclass(cls, Model):
            classes[ep.name] = cls
        else:
            log.warning("skipping model plugin %r: %r is not a Model subclass", ep.name, cls)
    return classes


class ModelRegistry:
    """Builds each named model once, on first use, and shares it between requests."""

    def __init__(self, configured: dict[str, dict[str, Any]] | None = None) -> None:
        self._configured = dict(configured or {})
        self._classes = _adapter_classes()
        self._instances: dict[str, Model] = {}

    def names(self) -> list[str]:
        builtin = [n for n in self._classes if n != "openai"]  # openai needs configuration
        return sorted(set(builtin) | set(self._configured))

    def get(self, name: str) -> Model:
        model = self._instances.get(name)
        if model is None:
            model = self._instances[name] = self._build(name)
        return model

    def _build(self, name: str) -> Model:
        if name in self._configured:
            options = dict(self._configured[name])
            adapter = options.pop("adapter", None)
            cls = self._classes.get(adapter or "")
            if cls is None:
                raise RequestError(
                    f"model {name!r} is configured with adapter {adapter!r}, which is not "
                    f"installed; known adapters: {sorted(self._classes)}"
                )
            return cls(name, **options)
        cls = self._classes.get(name)
        if cls is None or name == "openai":
            raise RequestError(
                f"unknown model {name!r}: use one of {self.names()} offline, a gemini-* model "
                "with GEMINI_API_KEY set on the gateway, or configure it under 'models' in "
                "jupyter_interactions.json"
            )
        return cls(name)

    async def aclose(self) -> None:
        for model in self._instances.values():
            await model.aclose()
        self._instances.clear()
