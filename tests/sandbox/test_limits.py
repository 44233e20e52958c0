"""Limits of a whole local sandbox, in every tier, measured from outside it: memory for all
its processes together, its disk quota, its CPU budget per run, and no process of it left
after a limit (or a timeout) ends a run. CPU seconds and memory come from /proc and the
cgroup, never from the wall clock. Where the machine gives no cgroups or quota disks, the
fallback holds: per-run CPU budget, disk accounting with a refusal, and warnings that say so.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from tests.sandbox.conftest import TEST_LIMITS

from jupyter_interactions.sandbox import cgroups, disk, isolated
from jupyter_interactions.sandbox.base import Limits, Sandbox
from jupyter_interactions.sandbox.disk import IMAGE, DiskQuotas
from jupyter_interactions.sandbox.isolation import available_tiers
from jupyter_interactions.sandbox.local import LocalSandbox

sandbox_ids = ("local-bubblewrap", "local-landlock", "local-limits")
pytestmark = pytest.mark.asyncio(loop_scope="session")
Factory = Callable[..., Awaitable[Sandbox]]

GiB = 1024**3
_support = cgroups.detect()
needs_cgroups = pytest.mark.skipif(
    _support is None or not _support.limits_whole_sandbox or _support.cpu is None,
    reason="this machine gives the tests no memory, pids and CPU cgroups",
)
needs_quota_disks = pytest.mark.skipif(
    not disk.supported(), reason="quota disks need root and loop devices"
)


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes_of(uid: int, named: str | None = None, zombies: bool = False) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            head = Path(entry.path, "stat").read_text().rsplit(")", 1)
            name, state = head[0].split("(", 1)[1], head[1].split()[0]
        except (OSError, IndexError):
            continue
        if (named is None or name == named) and (zombies or state != "Z"):
            found.append(int(entry.name))
    return found


class Sampler:
    """Samples, in a thread, the CPU time of every process of a uid (the highest seen per
    pid: a lower bound of what each used) and the private memory they held together."""

    def __init__(self, uid: int) -> None:
        self.uid = uid
        self.cpu: dict[int, float] = {}
        self.command: dict[int, bytes] = {}
        self.peak_private_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            private = 0
            for pid in processes_of(self.uid):
                try:
                    self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu_seconds(pid))
                    self.command[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("RssAnon:"):
                        private += int(line.split()[1]) * 1024
            self.peak_private_bytes = max(self.peak_private_bytes, private)
            self._stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _uid(sandbox: Sandbox) -> int:
    uid = sandbox.kernel.identity.uid  # type: ignore[attr-defined]
    if uid is None:
        pytest.skip("the sandbox runs as the gateway's uid: its processes are not told apart")
    return uid


def _only_the_new_kernel_is_left(sandbox: Sandbox, before: set[int]) -> None:
    """Every process of the sandbox now is of its restarted kernel: none from before."""
    kernel = sandbox.kernel  # type: ignore[attr-defined]
    now = set(processes_of(_uid(sandbox), zombies=True))
    assert not now & before, f"left over: {sorted(now & before)}"
    if kernel.cgroup is not None:
        supervisor = kernel.runner.pid
        tree = set(isolated.descendants(supervisor))
        assert set(kernel.cgroup.pids()) <= tree


@needs_cgroups
async def test_children_together_are_held_to_the_memory_limit(sandbox_factory: Factory) -> None:
    limit = 2 * GiB
    limits = dataclasses.replace(TEST_LIMITS, memory_bytes=limit, cpu_seconds=120, wall_seconds=300)
    sandbox = await sandbox_factory(limits=limits)
    uid = _uid(sandbox)
    await sandbox.run("kept = 1")
    before = set(processes_of(uid))
    hog = "import time; b = bytearray(1024**3); time.sleep(600)"
    with Sampler(uid) as sampler:
        result = await sandbox.run(
            f"for i in $(seq 8); do python3 -c '{hog}' & done; wait; echo all-done",
            language="bash",
        )
    assert result.error is not None and result.error.name == "KernelDied", result.text()
    assert "memory limit (2 GiB for all its processes)" in result.error.value
    assert "variables are lost" in result.error.value
    assert "all-done" not in result.stdout
    assert sampler.peak_private_bytes <= limit
    assert 0 < sandbox.kernel.cgroup.memory_peak() <= limit  # type: ignore[attr-defined]
    assert processes_of(uid, named="python3") == []
    _only_the_new_kernel_is_left(sandbox, before)
    after = await sandbox.run("print('kept' in globals())")
    assert after.stdout == "False\n", after.text()


@needs_cgroups
async def test_a_cpu_loop_stops_within_its_budget(sandbox_factory: Factory) -> None:
    sandbox = await sandbox_factory()
    budget = sandbox.limits.cpu_seconds
    kernel = sandbox.kernel.kernel_pid()  # type: ignore[attr-defined]
    await sandbox.run(
        "import time\nend = time.process_time() + 1\nwhile time.process_time() < end: pass"
    )
    before = set(processes_of(_uid(sandbox)))
    at_start = cpu_seconds(kernel)  # kernel start and the run above do not count
    with Sampler(_uid(sandbox)) as sampler:
        result = await sandbox.run("while True:\n    pass", timeout=600)
    used = sampler.cpu[kernel] - at_start
    assert result.error is not None and "CPU time limit" in result.error.value, result.text()
    assert budget - 0.5 <= used <= budget + 1
    _only_the_new_kernel_is_left(sandbox, before)


LOOP = b"while True: pass"


@needs_cgroups
async def test_the_cpu_budget_counts_every_process_of_the_sandbox(
    sandbox_factory: Factory,
) -> None:
    sandbox = await sandbox_factory()
    budget = sandbox.limits.cpu_seconds
    uid = _uid(sandbox)
    with Sampler(uid) as sampler:
        result = await sandbox.run(
            f"for i in 1 2 3; do python3 -c '{LOOP.decode()}' & done; wait",
            language="bash",
            timeout=600,
        )
    # The loops' own command lines (a fork not yet exec'd still shows the shell's).
    loops = [cpu for pid, cpu in sampler.cpu.items() if b"-c\0" + LOOP in sampler.command[pid]]
    assert loops  # (one may die before it is ever seen running)
    assert result.error is not None and "CPU time limit" in result.error.value, result.text()
    assert sum(loops) <= budget + 1
    assert processes_of(uid, named="python3") == []


@needs_quota_disks
async def test_writing_past_the_disk_quota_fails_inside_and_the_host_holds_the_quota(
    sandbox_factory: Factory, disk_quotas: DiskQuotas
) -> None:
    quota = GiB
    limits = dataclasses.replace(TEST_LIMITS, disk_bytes=quota, file_bytes=4 * GiB)
    sandbox = await sandbox_factory(limits=limits)
    result = await sandbox.run(
        "written = 0\n"
        "try:\n"
        "    with open('filler.bin', 'wb') as out:\n"
        "        for _ in range(3 * 1024):\n"
        "            written += out.write(bytes(1024**2))\n"
        "except OSError as error:\n"
        "    print(error.errno, written)\n"
        "else:\n"
        "    print('no error', written)"
    )
    code, written = result.stdout.split()
    assert int(code) in (errno.ENOSPC, errno.EDQUOT), result.text()
    assert int(written) <= quota
    root = sandbox.root
    assert root is not None
    await sandbox.stop()
    await disk_quotas.detach(root)  # the image, beneath the mount until now
    assert (root / IMAGE).stat().st_blocks * 512 <= quota  # what the host's disk gave


@needs_cgroups
async def test_a_timeout_ends_what_the_run_started_and_keeps_the_kernel(
    sandbox_factory: Factory,
) -> None:
    sandbox = await sandbox_factory()
    uid = _uid(sandbox)
    await sandbox.run("kept = 2")
    result = await sandbox.run(
        "import subprocess, time\n"
        "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "subprocess.Popen(['sh', '-c', 'sleep 301 > /dev/null 2>&1 &'])\n"
        "while True:\n    time.sleep(0.05)",
        timeout=2,
    )
    assert result.timed_out and result.error is None, result.text()
    assert processes_of(uid, named="sleep", zombies=True) == []
    assert (await sandbox.run("print(kept)")).stdout == "2\n"


# -- where the machine gives no cgroups and no quota disks -------------------------------------


@pytest.fixture
def without_cgroups_or_quota_disks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a machine that gives the gateway neither (not root, no delegation)."""
    monkeypatch.setattr(isolated, "detect", lambda: None)
    monkeypatch.setattr(disk, "supported", lambda: False)
    yield


@pytest.mark.parametrize("tier", ["bubblewrap", "landlock", "limits"])
async def test_without_cgroups_the_limits_hold_per_run_and_say_so(
    tier: str, tmp_path: Path, without_cgroups_or_quota_disks: None
) -> None:
    if tier not in available_tiers():
        pytest.skip(f"isolation tier {tier!r} does not work on this machine")
    limits = Limits(cpu_seconds=2, disk_bytes=32 * 1024**2, file_bytes=16 * 1024**2)
    async with LocalSandbox(root=tmp_path / "env", limits=limits, tier=tier) as sandbox:
        warnings = " ".join(sandbox.warnings)
        assert (
            "apply to each process" in warnings and "not enforced as files are written" in warnings
        )
        assert sandbox.kernel is not None and sandbox.kernel.cgroup is None
        burn = "import time\nend = time.process_time() + 1.5\nwhile time.process_time() < end: pass"
        for _ in range(2):  # 3 s in all: more than one budget, less than one per run
            assert (await sandbox.run(burn)).ok
        kernel = sandbox.kernel.kernel_pid()
        assert kernel is not None
        at_start = cpu_seconds(kernel)
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                try:
                    samples.append(cpu_seconds(kernel))
                except OSError:
                    return
                stop.wait(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            looped = await sandbox.run("while True:\n    pass", timeout=600)
        finally:
            stop.set()
            sampler.join()
        assert looped.error is not None and "CPU time limit" in looped.error.value
        assert max(samples) - at_start <= limits.cpu_seconds + 1

        filled = await sandbox.run(
            "for n in range(3):\n    open(f'part{n}.bin', 'wb').write(bytes(15 * 1024**2))"
        )
        assert filled.error is not None and filled.error.name == "DiskQuotaExceeded"
        refused = await sandbox.run("open('ran.txt', 'w').write('1')")
        assert refused.error is not None and refused.error.name == "DiskQuotaExceeded"
        assert not (tmp_path / "env" / "workspace" / "ran.txt").exists()
        (tmp_path / "env" / "workspace" / "part0.bin").unlink()
        (tmp_path / "env" / "workspace" / "part1.bin").unlink()
        assert (await sandbox.run("print('free again')")).stdout == "free again\n"
