"""How a local sandbox's limits hold here, in words: per limit, the mechanism in force, the
warnings for those that do not hold for the sandbox as a whole, and what a run that crossed
one is told. One place for these facts: the README's table says the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Limits
from .cgroups import CgroupSupport
from .watch import CPU, MEMORY, PROCESSES

__all__ = ["Enforcement", "crossed_note", "size"]

NO_CGROUP_WARNING = (
    "sandbox memory and process limits apply to each process (RLIMIT_AS, RLIMIT_NPROC), not "
    "to all of the sandbox's processes together, and its CPU budget to the kernel process "
    "only: this gateway may not use cgroups (run it as root, or delegate cgroup v2 memory and "
    "pids controllers to it)"
)
NO_DISK_WARNING = (
    "sandbox disk quota ({quota}) is not enforced as files are written (quota disks need "
    "root and loop devices): the files are counted after each run, and runs are refused "
    "while they take more"
)


def size(count: float) -> str:
    """Bytes for people: 2 GiB, 256 MiB, 1.5 GiB."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{int(count)} bytes"


@dataclass(frozen=True)
class Enforcement:
    """What holds for one local sandbox: `cgroups` as detected (None: none usable) and
    whether its files are on a quota disk."""

    tier: str
    cgroups: CgroupSupport | None
    disk_quota: bool

    @property
    def memory_and_processes_whole(self) -> bool:
        return self.cgroups is not None and self.cgroups.limits_whole_sandbox

    @property
    def cpu_watched(self) -> bool:
        return self.cgroups is not None and self.cgroups.cpu is not None

    def mechanisms(self) -> dict[str, str]:
        """Limit -> how it holds (the README's table, for this machine)."""
        whole = self.memory_and_processes_whole
        return {
            "memory": "cgroup, all processes" if whole else "RLIMIT_AS, each process",
            "processes": "cgroup pids.max" if whole else "RLIMIT_NPROC, per uid",
            "cpu": "cgroup CPU time per run" if self.cpu_watched else "RLIMIT_CPU, kernel, per run",
            "disk": "ext4 quota disk" if self.disk_quota else "counted after each run",
            "file size": "RLIMIT_FSIZE",
            "wall": "interrupt, then restart",
            "network": {"bubblewrap": "none", "landlock": "no TCP, UDP or raw"}.get(
                self.tier, "NOT isolated"
            ),
        }

    def warnings(self, limits: Limits) -> list[str]:
        found = []
        if not self.memory_and_processes_whole:
            found.append(NO_CGROUP_WARNING)
        if not self.disk_quota:
            found.append(NO_DISK_WARNING.format(quota=size(limits.disk_bytes)))
        return found


def crossed_note(limit: str, limits: Limits) -> str:
    """What the run that crossed a limit says: which limit, and what it cost."""
    cause = {
        CPU: f"its CPU time limit ({limits.cpu_seconds} CPU-seconds per run, all its "
        "processes together)",
        MEMORY: f"its memory limit ({size(limits.memory_bytes)} for all its processes)",
        PROCESSES: f"its process limit ({limits.processes} at once)",
    }[limit]
    return (
        f"the sandbox was stopped by {cause}: every process in it was stopped, the kernel was "
        "restarted and its variables are lost"
    )
