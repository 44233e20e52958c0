"""Host side of the in-kernel helper (`jupyter_kernel`): the code that installs it in a
sandbox kernel and the expressions that call it. Local and remote sandboxes share both."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import RequestError
from . import jupyter_kernel, safe_files

__all__ = [
    "HELPER",
    "call",
    "code_for",
    "cpu_budget_code",
    "egress_code",
    "install_code",
    "reap_code",
    "setup_code",
    "variables_code",
]

HELPER = f"__import__('sys').modules[{jupyter_kernel.MODULE_NAME!r}]"
# Installs the helper as a module, leaving nothing in the user's namespace.
_BOOTSTRAP = (
    "import sys, types\n"
    "module = types.ModuleType(NAME)\n"
    "exec(SOURCE, module.__dict__)\n"
    "sys.modules[NAME] = module\n"
)


@functools.cache
def install_code() -> str:
    """Code that installs the helper module, and safe_files which it uses, in a kernel
    (after every start or restart)."""
    modules = [
        (jupyter_kernel.FILES_MODULE_NAME, safe_files),
        (jupyter_kernel.MODULE_NAME, jupyter_kernel),
    ]
    return "\n".join(
        f"exec({_BOOTSTRAP!r}, {{'NAME': {name!r}, 'SOURCE': {_source(module)!r}}})"
        for name, module in modules
    )


def _source(module: ModuleType) -> str:
    assert module.__file__ is not None
    return Path(module.__file__).read_text()


def variables_code(variables: Mapping[str, str]) -> str:
    """Code that sets environment variables in a kernel (its subprocesses inherit them)."""
    return f"__import__('os').environ.update({dict(variables)!r})"


def egress_code(socket_path: str) -> str:
    """Code that relays the kernel's HTTP(S)_PROXY to the egress proxy's socket."""
    return call("forward_egress", socket_path)


# RLIMIT_CPU counts a process's whole life: the next run's budget is what the kernel has used
# so far, rounded up, plus the budget (never past the hard limit, its lifetime cap).
_CPU_BUDGET = """
import math, resource
used = math.ceil(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
soft = used + SECONDS if hard == resource.RLIM_INFINITY else min(used + SECONDS, hard)
resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
"""
_REAP = """
import os
try:
    while os.waitpid(-1, os.WNOHANG)[0]:
        pass
except ChildProcessError:
    pass
"""


def cpu_budget_code(seconds: int) -> str:
    """Code that gives the kernel's next run `seconds` of CPU time (its RLIMIT_CPU)."""
    return f"exec({_CPU_BUDGET!r}, {{'SECONDS': {int(seconds)}}})"


def reap_code() -> str:
    """Code that reaps the kernel's exited children (after the gateway killed them)."""
    return f"exec({_REAP!r}, {{}})"


def setup_code(variables: Mapping[str, str], egress_socket: str | None = None) -> str:
    """What a kernel runs, silently, after every start or restart."""
    parts = [install_code()]
    if variables:
        parts.append(variables_code(variables))
    if egress_socket:
        parts.append(egress_code(egress_socket))
    return "\n".join(parts)


def call(function: str, *args: Any) -> str:
    """A Python expression calling one helper function with literal arguments."""
    return f"{HELPER}.{function}({', '.join(repr(a) for a in args)})"


def code_for(code: str, language: str) -> str:
    """What a kernel runs for `code` in `language`: Python as it is, bash through the helper."""
    if language == "python":
        return code
    if language == "bash":
        return call("bash", code)
    raise RequestError(f"language {language!r} is not supported; use 'python' or 'bash'")
