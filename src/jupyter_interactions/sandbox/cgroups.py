"""Control groups for local sandboxes: one memory and one process limit for all of a sandbox's
processes, its CPU time, and what its limits did (OOM kills, refused forks).

Detected once per process, like the isolation tiers. A sandbox's cgroup is made only beneath
the gateway's own cgroup in each hierarchy (`/proc/self/cgroup`); the limits of that cgroup
and of its parents are never touched. cgroup v2 serves a controller when the gateway's
cgroup already delegates it to children (`cgroup.subtree_control`); otherwise a writable v1
hierarchy of that controller does (these machines mount v1 `memory` and `pids`, and v2 with
no controllers, which still gives `cgroup.kill` and CPU time). Without either (not root, no
delegation), `detect()` returns None and the sandbox says which limits hold per process only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import secrets
import select
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["CgroupSupport", "SandboxCgroup", "detect", "remove_stale"]

_PREFIX = "ji-"  # ji-<gateway pid>-<random>: stale ones (dead gateway) are removed at detection
_STALE = re.compile(rf"^{_PREFIX}(\d+)-[0-9a-f]+$")


@dataclass(frozen=True)
class Hierarchy:
    """One controller's home: a cgroup version and the gateway's own cgroup directory there."""

    version: int
    base: Path


@dataclass(frozen=True)
class CgroupSupport:
    """Where each job is done. `unified`: a v2 cgroup of ours (kill, CPU time) even when
    v2 has no controllers; `memory`, `pids`, `cpu`: hierarchies for limits and CPU time."""

    memory: Hierarchy | None
    pids: Hierarchy | None
    cpu: Hierarchy | None
    unified: Path | None

    @property
    def limits_whole_sandbox(self) -> bool:
        return self.memory is not None and self.pids is not None

    def describe(self) -> str:
        parts = [
            f"{name} v{h.version}"
            for name, h in (("memory", self.memory), ("pids", self.pids), ("cpu", self.cpu))
            if h is not None
        ]
        return "cgroups: " + (", ".join(parts) or "none")


def _own_cgroups() -> dict[str, str]:
    """Controller (or "" for v2) -> the gateway's cgroup path in that hierarchy."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller.removeprefix("name=")] = path
    return paths


def _mounts() -> dict[str, tuple[Path, str]]:
    """Controller (or "" for cgroup2) -> (mount point, the cgroup path mounted there)."""
    found: dict[str, tuple[Path, str]] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3].split(",")
        mount_root, mount_point = fields[3], Path(fields[4].replace("\\040", " "))
        if fstype == "cgroup2":
            found.setdefault("", (mount_point, mount_root))
        elif fstype == "cgroup":
            for option in options:
                found.setdefault(option.removeprefix("name="), (mount_point, mount_root))
    return found


def _base(mount: tuple[Path, str], own: str) -> Path | None:
    mount_point, mount_root = mount
    if own != mount_root and not own.startswith(mount_root.rstrip("/") + "/"):
        return None  # our cgroup is not visible through this mount
    relative = own[len(mount_root) :].lstrip("/")
    return mount_point / relative if relative else mount_point


def _can_make_children(base: Path) -> bool:
    probe = base / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.rmdir()
    return True


@functools.cache
def detect() -> CgroupSupport | None:
    """What this process may do with cgroups (probed once; None when nothing)."""
    try:
        own, mounts = _own_cgroups(), _mounts()
    except OSError:
        return None
    unified = None
    delegated: set[str] = set()
    if "" in mounts and "" in own:
        base = _base(mounts[""], own[""])
        if base is not None and _can_make_children(base):
            unified = base
            with contextlib.suppress(OSError):
                delegated = set((base / "cgroup.subtree_control").read_text().split())

    def home(controller: str, v1_name: str) -> Hierarchy | None:
        if unified is not None and controller in delegated:
            return Hierarchy(2, unified)
        if v1_name in mounts and v1_name in own:
            base = _base(mounts[v1_name], own[v1_name])
            if base is not None and _can_make_children(base):
                return Hierarchy(1, base)
        return None

    support = CgroupSupport(
        memory=home("memory", "memory"),
        pids=home("pids", "pids"),
        cpu=Hierarchy(2, unified) if unified is not None else home("cpu", "cpuacct"),
        unified=unified,
    )
    if not any((support.memory, support.pids, support.cpu, support.unified)):
        return None
    remove_stale(support)
    return support


def _bases(support: CgroupSupport) -> set[Path]:
    homes = (support.memory, support.pids, support.cpu)
    bases = {h.base for h in homes if h is not None}
    if support.unified is not None:
        bases.add(support.unified)
    return bases


def remove_stale(support: CgroupSupport, mine: bool = False) -> None:
    """Remove sandbox cgroups whose gateway died without removing them (SIGKILL, a crash);
    `mine`: this process's own too (a test session checking that it left none)."""
    for base in _bases(support):
        with contextlib.suppress(OSError):
            for entry in base.iterdir():
                match = _STALE.match(entry.name)
                owner = int(match.group(1)) if match else None
                if owner is not None and (not _alive(owner) or (mine and owner == os.getpid())):
                    log.info("removing the cgroup %s of a gateway that is gone", entry)
                    _kill_and_remove(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids_in(directory: Path) -> list[int]:
    try:
        return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_and_remove(directory: Path, patience: float = 5.0) -> None:
    """SIGKILL every process in a cgroup directory, then remove it (retrying while the
    dying processes leave)."""
    deadline = time.monotonic() + patience
    while True:
        _signal_all(directory, signal.SIGKILL)
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                log.warning("could not remove the cgroup %s: %s", directory, exc)
                return
        time.sleep(0.01)


def _signal_all(directory: Path, signum: int) -> None:
    kill_file = directory / "cgroup.kill"
    if signum == signal.SIGKILL and kill_file.exists():
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
            return
    for pid in _pids_in(directory):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _write(path: Path, value: object) -> None:
    path.write_text(str(value))


def _counter(path: Path, key: str) -> int:
    """A `key value` line of a flat-keyed cgroup file, 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class SandboxCgroup:
    """One sandbox's cgroups (one directory per hierarchy used), with its limits set."""

    def __init__(self, support: CgroupSupport, directories: dict[str, Path]) -> None:
        self.support = support
        self.directories = directories  # "memory" | "pids" | "cpu" | "unified" -> directory

    @classmethod
    def create(cls, support: CgroupSupport, memory_bytes: int, processes: int) -> SandboxCgroup:
        name = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        bases: dict[str, Path] = {}
        for role, home in (("memory", support.memory), ("pids", support.pids)):
            if home is not None:
                bases[role] = home.base
        if support.cpu is not None:
            bases["cpu"] = support.cpu.base
        if support.unified is not None:
            bases["unified"] = support.unified
        directories: dict[str, Path] = {}
        made = cls(support, directories)
        try:
            for role, base in bases.items():
                directory = base / name
                if directory not in directories.values():
                    directory.mkdir()
                directories[role] = directory
            made._set_limits(memory_bytes, processes)
        except BaseException:
            made.remove()
            raise
        return made

    def _set_limits(self, memory_bytes: int, processes: int) -> None:
        memory = self.directories.get("memory")
        if memory is not None:
            if self.support.memory is not None and self.support.memory.version == 2:
                _write(memory / "memory.max", memory_bytes)
                if (memory / "memory.swap.max").exists():
                    _write(memory / "memory.swap.max", 0)
            else:
                _write(memory / "memory.limit_in_bytes", memory_bytes)
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    _write(memory / "memory.memsw.limit_in_bytes", memory_bytes)
        pids = self.directories.get("pids")
        if pids is not None:
            _write(pids / "pids.max", processes)

    @property
    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a process writes "0" into to join (each directory once)."""
        return sorted({str(d / "cgroup.procs") for d in self.directories.values()})

    def pids(self) -> list[int]:
        directory = self.directories.get("unified") or next(iter(self.directories.values()))
        return _pids_in(directory)

    def cpu_seconds(self) -> float:
        """CPU time used by every process that was ever in the sandbox (user + system)."""
        directory = self.directories.get("cpu")
        if directory is None:
            return 0.0
        try:
            if self.support.cpu is not None and self.support.cpu.version == 2:
                return _counter(directory / "cpu.stat", "usage_usec") / 1e6
            return int((directory / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return 0.0

    def oom_kills(self) -> int:
        directory = self.directories.get("memory")
        if directory is None:
            return 0
        if self.support.memory is not None and self.support.memory.version == 2:
            return _counter(directory / "memory.events", "oom_kill")
        return _counter(directory / "memory.oom_control", "oom_kill")

    def memory_peak(self) -> int:
        """The most memory all the sandbox's processes held at once (0 if not counted)."""
        directory = self.directories.get("memory")
        if directory is None or self.support.memory is None:
            return 0
        name = "memory.peak" if self.support.memory.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((directory / name).read_text())
        except (OSError, ValueError):
            return 0

    def refused_forks(self) -> int:
        directory = self.directories.get("pids")
        return _counter(directory / "pids.events", "max") if directory is not None else 0

    def oom_notifier(self) -> OomNotifier | None:
        """A file descriptor that turns readable when the memory limit makes the kernel kill
        (None when there is no memory cgroup)."""
        directory = self.directories.get("memory")
        if directory is None or self.support.memory is None:
            return None
        try:
            return OomNotifier(directory, self.support.memory.version)
        except OSError as exc:
            log.warning("no OOM notifications from %s: %s", directory, exc)
            return None

    def kill(self) -> None:
        """SIGKILL every process in the sandbox's cgroups."""
        for directory in self._distinct():
            _signal_all(directory, signal.SIGKILL)

    def remove(self) -> None:
        """Kill what is left and remove the directories. Idempotent."""
        for directory in self._distinct():
            _kill_and_remove(directory)
        self.directories.clear()

    def _distinct(self) -> Iterable[Path]:
        return dict.fromkeys(self.directories.values())


class OomNotifier:
    """Readable when the kernel killed a process for the cgroup's memory limit: an eventfd
    registered through `cgroup.event_control` (v1), or `memory.events` changing (v2, which
    signals a change with POLLPRI: an epoll set turns that into readability)."""

    def __init__(self, directory: Path, version: int) -> None:
        self._watched: int | None = None
        self._epoll: select.epoll | None = None
        if version == 1:
            self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            control = os.open(directory / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _write(directory / "cgroup.event_control", f"{self._fd} {control}")
            except OSError:
                os.close(self._fd)
                raise
            finally:
                os.close(control)
        else:
            self._watched = os.open(directory / "memory.events", os.O_RDONLY | os.O_CLOEXEC)
            os.read(self._watched, 4096)  # arm: a change is signalled after a read
            self._epoll = select.epoll()
            self._epoll.register(self._watched, select.EPOLLPRI | select.EPOLLERR)
            self._fd = self._epoll.fileno()

    def fileno(self) -> int:
        return self._fd

    def drain(self) -> None:
        """Consume the notification so the next one turns the descriptor readable again."""
        with contextlib.suppress(OSError):
            if self._epoll is None:
                os.eventfd_read(self._fd)
            else:
                self._epoll.poll(0)
                assert self._watched is not None
                os.pread(self._watched, 4096, 0)

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
            if self._watched is not None:
                os.close(self._watched)
        else:
            os.close(self._fd)
