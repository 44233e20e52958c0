"""The Sandbox conformance suite against remote kernels: a real `jupyter server` (files
through its contents API) and a real Kernel Gateway (files through the kernel)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# Loaded by path under the same unique name as test_local_conformance.py does.
_spec = importlib.util.spec_from_file_location(
    "sandbox_conformance", Path(__file__).with_name("conformance.py")
)
assert _spec is not None and _spec.loader is not None
conformance = sys.modules.setdefault("sandbox_conformance", importlib.util.module_from_spec(_spec))
if not hasattr(conformance, "SandboxConformance"):
    _spec.loader.exec_module(conformance)


class TestJupyterConformance(conformance.SandboxConformance):
    sandbox_ids = ("jupyter-server", "kernel-gateway")
