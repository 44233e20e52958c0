"""Model adapters, one per module, found through the `jupyter_interactions.models` entry points.

A model id resolves, in order, to: a name configured in `GatewayConfig.models`
({"adapter": ENTRY_POINT_NAME, **options}), or an entry point of that name (`echo`,
`local`, `scripted`, ...) whose adapter needs no settings. A name configured with
`{"adapter": "google"}` is not served here: the engine forwards it to Google's service, as it
does any id this registry does not serve when the gateway has a key. A broken plugin is
logged and skipped, never fatal.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from ...errors import RequestError
from .base import Model

__all__ = ["FORWARDED", "Model", "ModelRegistry"]

log = logging.getLogger(__name__)
GROUP = "jupyter_interactions.models"
# The "adapter" of a configured name that runs on Google's service (forwarded, not built).
FORWARDED = "google"


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
        """The ids served here."""
        builtin = [n for n, cls in self._classes.items() if not cls.needs_configuration]
        local = [n for n, o in self._configured.items() if o.get("adapter") != FORWARDED]
        return sorted(set(builtin) | set(local))

    def serves(self, name: str) -> bool:
        return name in self.names()

    def forwards(self, name: str) -> bool:
        """True if the configuration sends this id to Google's service."""
        return (self._configured.get(name) or {}).get("adapter") == FORWARDED

    def adapter(self, name: str) -> tuple[str, type[Model]] | None:
        """The adapter `name` is built with (its entry-point name and class), if it is known."""
        adapter = str(self._configured[name].get("adapter")) if name in self._configured else name
        cls = self._classes.get(adapter)
        return (adapter, cls) if cls is not None else None

    def get(self, name: str) -> Model:
        model = self._instances.get(name)
        if model is None:
            model = self._instances[name] = self._build(name)
        return model

    def _build(self, name: str) -> Model:
        if name in self._configured and not self.forwards(name):
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
        if cls is None or cls.needs_configuration or self.forwards(name):
            raise RequestError(
                f"unknown model {name!r}: use one of {self.names()} offline, set "
                "GEMINI_API_KEY on the gateway to forward it to Google's service, or configure "
                "it under 'models' in jupyter_interactions.json"
            )
        return cls(name)

    async def aclose(self) -> None:
        for model in self._instances.values():
            await model.aclose()
        self._instances.clear()
