"""Validation at the edge: every route's path, query, headers and body are checked here,
before anything reaches the engine, a model or a sandbox (`http/requests.py`, one entry per
route).
Bodies are strict JSON (`strict_json`) checked against google-genai's own request types
(`bodies`); single values follow shared rules (`rules`). A mistake is a 400 that names the
field and says what to send."""

from __future__ import annotations

from .bodies import preload

__all__ = ["preload"]
