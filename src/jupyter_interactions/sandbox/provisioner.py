"""How jupyter_client starts a sandbox kernel: a kernel provisioner that runs every start
and restart through the isolation launcher, and the one kernel spec that names it.

Both are jupyter_client's public extension points. `SandboxProvisioner` (entry point
`jupyter-interactions-sandbox` in `jupyter_client.kernel_provisioners`) wraps whatever
command the kernel spec gives in the launcher, and hands the launcher its plan in memory
(`launcher.PLAN_VARIABLE`), never through a file the sandbox could rewrite. Sandbox kernel
managers look specs up in `SandboxKernelSpecs`, which knows only the sandbox's spec and reads
no kernel directory (the user's, the environment's or the system's): a manager that is asked
for another kernel name refuses it rather than starting a kernel outside the launcher.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from ..errors import SandboxError
from .isolation import launcher_command
from .launcher import PLAN_VARIABLE
from .ownership import give_tree

__all__ = [
    "PLAN_ARGUMENT",
    "PROVISIONER_NAME",
    "SPEC_NAME",
    "SandboxKernelSpecs",
    "SandboxProvisioner",
]

SPEC_NAME = "jupyter-interactions-sandbox"
PROVISIONER_NAME = "jupyter-interactions-sandbox"  # the entry point's name (pyproject.toml)
PLAN_ARGUMENT = "sandbox_plan"  # start_kernel/restart_kernel keyword: the launcher's plan
LAUNCHER_PATH = "/usr/bin:/bin"  # the launcher builds the kernel's environment itself


def sandbox_spec() -> KernelSpec:
    # History in memory: IPython otherwise commits every step to SQLite in HOME, which on
    # a disk (rather than bubblewrap's tmpfs) doubles the round trip.
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return KernelSpec(
        argv=[*argv, "--HistoryManager.hist_file=:memory:"],
        display_name="sandbox",
        language="python",
        interrupt_mode="message",
        metadata={"kernel_provisioner": {"provisioner_name": PROVISIONER_NAME}},
    )


class SandboxKernelSpecs(KernelSpecManager):
    """The sandbox's kernel spec, and no other."""

    def find_kernel_specs(self) -> dict[str, str]:
        return {}  # no directory holds it: it is built here

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != SPEC_NAME:
            raise NoSuchKernel(kernel_name)
        return sandbox_spec()


class SandboxProvisioner(LocalProvisioner):
    """A local kernel process, started by the isolation launcher with the plan given to
    start_kernel as `sandbox_plan=` (jupyter_client keeps it for restarts; a restart may
    pass a new one)."""

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        plan = kwargs.pop(PLAN_ARGUMENT, None)
        if plan is None:
            raise SandboxError(
                f"a sandbox kernel needs its launch plan: pass {PLAN_ARGUMENT}= to start_kernel"
            )
        kwargs = await super().pre_launch(**kwargs)
        # jupyter_client wrote the connection file just now, readable by us alone.
        if plan.get("uid") is not None and self.parent is not None:
            give_tree(Path(self.parent.connection_file), plan["uid"], plan["gid"])
        plan = {**plan, "argv": kwargs["cmd"]}
        kwargs["cmd"] = launcher_command()
        kwargs["env"] = {"PATH": LAUNCHER_PATH, PLAN_VARIABLE: json.dumps(plan)}
        return kwargs
