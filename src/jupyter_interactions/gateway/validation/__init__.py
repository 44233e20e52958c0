"""Validation at the edge: every route's path, query, headers and body are checked here,
before anything reaches the engine, a model or a sandbox (`routes`, one entry per route).
Bodies are strict JSON (`strict_json`) checked against google-genai's own request types
(`bodies`); single values follow shared rules (`rules`). A mistake is a 400 that names the
field and says what to send."""

from __future__ import annotations

from .bodies import preload
from .routes import SESSION_HEADER, THREAD_HEADER

__all__ = ["SESSION_HEADER", "THREAD_HEADER", "preload"]
