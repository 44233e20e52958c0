"""The Sandbox conformance suite against the local sandbox, in every tier this machine has."""

from __future__ import annotations

from tests.sandbox import conformance


class TestLocalConformance(conformance.SandboxConformance):
    sandbox_ids = ("local-bubblewrap", "local-landlock", "local-limits")
