"""The real-kernel fixtures of tests/kernel, for the widget tests that run in a kernel."""

from tests.kernel.conftest import isolated, kernel

__all__ = ["isolated", "kernel"]
