"""Kernels on ipc sockets for the Jupyter servers the tests start.

A kernel manager picks TCP ports by binding and releasing them; on a busy machine running two
test suites, another run's kernel sometimes takes such a port first, and the kernel dies at
start ("Address already in use"). Unix sockets in a private directory have no such race.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def ipc_kernel_options() -> Iterator[list[str]]:
    """Command-line options that put a Jupyter server's kernels on ipc sockets, in a
    directory of their own (a short path: a Unix socket's allows about 100 bytes), removed
    on exit."""
    sockets = tempfile.mkdtemp(prefix="ji-ipc-")
    try:
        yield ["--KernelManager.transport=ipc", f"--KernelManager.ip={sockets}/kernel"]
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
