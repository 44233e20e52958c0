"""Record and replay of interactions at the gateway: cassettes beside notebooks, so a shared
notebook re-runs for real without a key (service.py says how the parts fit)."""

from __future__ import annotations

from .service import MODES, Cassettes, ReplayMismatch

__all__ = ["MODES", "Cassettes", "ReplayMismatch"]
