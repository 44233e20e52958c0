"""What local sandboxes could leave on this machine when a test dies half-way: quota-disk
mounts and cgroups. The session's last fixture removes them (tests/conftest.py), so a failed
test never leaves one behind; a gateway killed by a test leaves cgroups that this removes
too (their owner is gone)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from jupyter_interactions.sandbox import cgroups


def _mount_points() -> list[Path]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        points.append(Path(line.split()[4].replace("\\040", " ")))
    return points


def remove_leftovers(base: Path) -> None:
    """Unmount everything mounted under `base` or on a temporary root of this process's
    sandboxes, deepest first; remove this session's cgroups and those of gateways that are
    gone. Another test run beside this one keeps its own."""
    temporary = Path(tempfile.gettempdir())
    mine = f"ji-env-{os.getpid()}-"
    ours = [
        point
        for point in _mount_points()
        if base in point.parents or (point.parent == temporary and point.name.startswith(mine))
    ]
    for point in sorted(ours, key=lambda p: len(p.parts), reverse=True):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    support = cgroups.detect()
    if support is not None:
        cgroups.remove_stale(support, mine=True)
