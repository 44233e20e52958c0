"""The Sandbox conformance suite against remote kernels: a real `jupyter server` (files
through its contents API) and a real Kernel Gateway (files through the kernel)."""

from __future__ import annotations

from tests.sandbox import conformance


class TestJupyterConformance(conformance.SandboxConformance):
    sandbox_ids = ("jupyter-server", "kernel-gateway")
