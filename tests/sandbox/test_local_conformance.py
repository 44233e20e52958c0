"""The Sandbox conformance suite against the local sandbox, in every tier this machine has."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# Loaded by path under a unique name: test directories are not packages, and another
# directory may hold its own conformance.py.
_spec = importlib.util.spec_from_file_location(
    "sandbox_conformance", Path(__file__).with_name("conformance.py")
)
assert _spec is not None and _spec.loader is not None
conformance = sys.modules.setdefault("sandbox_conformance", importlib.util.module_from_spec(_spec))
if not hasattr(conformance, "SandboxConformance"):
    _spec.loader.exec_module(conformance)


class TestLocalConformance(conformance.SandboxConformance):
    sandbox_ids = ("local-bubblewrap", "local-landlock", "local-limits")
