"""Isolation tiers for the local sandbox: which ones work here, and how to launch a kernel in each.

Tiers, strongest first: "bubblewrap" (namespaces: no network, read-only system, private
/tmp and home), "landlock" (Landlock filesystem and TCP rules plus a seccomp filter, no
root or namespaces needed), "limits" (resource limits only). Every tier applies the same
resource limits and, when the gateway runs as root, drops the kernel to an unprivileged uid
of its own, because root ignores RLIMIT_NPROC and a fork bomb would not be contained. Where
the sandbox has cgroups (`cgroups.py`), they hold its memory and process limits for all its
processes together, and the rlimits are a per-process backstop.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SandboxUnavailable
from . import launcher
from .base import WORKSPACE, Limits
from .ownership import give_tree

TIERS = ("bubblewrap", "landlock", "limits")
LAUNCHER = Path(launcher.__file__).resolve()
SANDBOX_ROOT = "/sandbox"  # where the environment directory appears inside bubblewrap
LIMITS_WARNING = (
    "sandbox is NOT isolated from the network or the filesystem: only resource limits "
    "apply (install bubblewrap, or use a kernel with Landlock)"
)
OLD_LANDLOCK_WARNING = (
    "sandbox filesystem is confined, but this kernel's Landlock (ABI {abi}) cannot block "
    "TCP connections: use Linux 6.7 or later, or install bubblewrap"
)
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/mime.types",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/fonts",
    "/etc/matplotlibrc",
)
_ACCOUNTS = ("/etc/passwd", "/etc/group")  # generated for bubblewrap: see _accounts
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


@dataclass(frozen=True)
class Identity:
    """Who the kernel runs as: a uid of its own when we are root, else ourselves."""

    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
        return self.uid is not None

    def take(self, path: Path) -> None:
        """Hand a directory tree (or a file) to this uid; a no-op unless it switches."""
        if self.uid is not None and self.gid is not None:
            give_tree(path, self.uid, self.gid)


@dataclass(frozen=True)
class Layout:
    """Host paths of one sandbox: the environment root and a private runtime directory
    (the kernel's files, which `KernelRunner` names, and HOME/TMPDIR outside bwrap). The sandbox
    can write to both, so nothing the launcher trusts is kept there: its plan is handed to
    it in memory (`provisioner.py`)."""

    root: Path
    runtime: Path

    @property
    def workspace(self) -> Path:
        return self.root / WORKSPACE

    @property
    def home_and_tmp(self) -> tuple[Path, Path]:
        """HOME and TMPDIR outside bubblewrap (inside, both are tmpfs)."""
        return self.runtime / "home", self.runtime / "tmp"


def _is_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def bubblewrap_works() -> bool:
    """One quick `bwrap ... true`: user namespaces or root, and no seccomp policy in the way."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False
    argv = [bwrap, "--ro-bind", "/", "/", *_unshare_args(), "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@functools.cache
def landlock_abi() -> int:
    return launcher.landlock_abi() if sys.platform == "linux" else 0


def available_tiers() -> tuple[str, ...]:
    """The tiers that work on this machine, strongest first (probed once per process)."""
    tiers = []
    if bubblewrap_works():
        tiers.append("bubblewrap")
    if landlock_abi() >= 1 and launcher.seccomp_supported():
        tiers.append("landlock")
    tiers.append("limits")
    return tuple(tiers)


def choose_tier(requested: str = "auto") -> str:
    tiers = available_tiers()
    if requested == "auto":
        return tiers[0]
    if requested not in TIERS:
        raise SandboxUnavailable(f"unknown isolation tier {requested!r}; use one of {TIERS}")
    if requested not in tiers:
        raise SandboxUnavailable(
            f"isolation tier {requested!r} does not work on this machine (available: "
            f"{', '.join(tiers)}); use tier='auto' to pick the strongest available"
        )
    return requested


def tier_warnings(tier: str) -> list[str]:
    if tier == "limits":
        return [LIMITS_WARNING]
    if tier == "landlock" and landlock_abi() < 4:
        return [OLD_LANDLOCK_WARNING.format(abi=landlock_abi())]
    return []


def _unshare_args() -> list[str]:
    # As root, no user namespace: the launcher inside must be able to drop to a real
    # unprivileged uid (a namespace would map it back to root, which ignores NPROC).
    if _is_root():
        return [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
    return ["--unshare-all"]


def _traversable_by_others(path: Path) -> bool:
    """Can an unrelated uid reach `path`? (Every ancestor directory searchable by others.)"""
    for directory in [path, *path.parents]:
        try:
            mode = directory.stat().st_mode
        except OSError:
            return False
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return False
    return True


def python_dirs() -> list[Path]:
    """The directories the kernel's interpreter and its packages live in."""
    dirs = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    resolved = sorted({d.resolve() for d in dirs if d.exists()})
    # Drop directories nested in another one: one rule or bind mount covers them.
    return [d for d in resolved if not any(o != d and o in d.parents for o in resolved)]


KERNEL_START_CPU_SECONDS = 10
LIFETIME_CPU_SECONDS = 3600


def rlimits(limits: Limits, identity: Identity, cgroup: bool = False) -> dict[str, tuple[int, int]]:
    """Per-process limits. `cgroup`: the sandbox's cgroup holds its memory, process count and
    CPU budget for all its processes; these are then the backstop and must not bind first."""
    processes = limits.processes
    if cgroup:
        processes += processes // 4 + 16  # above pids.max: a refused fork is then counted
    if not identity.switches:
        # NPROC counts every process of the uid, the gateway's included: allow those too.
        processes += _process_count(os.getuid())
    # SIGXCPU at the soft limit (the kernel dies, and we can tell why); SIGKILL at the hard
    # one, the kernel's lifetime cap. Starting the kernel costs CPU too: it gets an allowance,
    # and each run then renews the soft limit from inside the kernel (raising another uid's
    # limit would need CAP_SYS_RESOURCE). With a cgroup, its CPU time is watched instead.
    cpu_soft = LIFETIME_CPU_SECONDS if cgroup else limits.cpu_seconds + KERNEL_START_CPU_SECONDS
    cpu_hard = max(cpu_soft + 1, LIFETIME_CPU_SECONDS)
    return {
        "RLIMIT_CPU": (cpu_soft, cpu_hard),
        "RLIMIT_AS": (limits.memory_bytes, limits.memory_bytes),
        "RLIMIT_FSIZE": (limits.file_bytes, limits.file_bytes),
        "RLIMIT_NPROC": (processes, processes),
        "RLIMIT_CORE": (0, 0),
    }


def _process_count(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def launcher_command() -> list[str]:
    """How the launcher is run (`python -I -S`: nothing importable is trusted)."""
    return [sys.executable, "-I", "-S", str(LAUNCHER)]


def _env(home: str, tmp: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "JPY_SESSION_NAME": "sandbox",
    }
    if "VIRTUAL_ENV" in os.environ or sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env


def launch_plan(
    tier: str,
    layout: Layout,
    limits: Limits,
    identity: Identity,
    cgroup_procs: list[str] | None = None,
) -> dict[str, Any]:
    """The launcher's plan for `tier`, without the kernel's argv (the provisioner adds the
    kernel spec's). `cgroup_procs`: the `cgroup.procs` files the sandbox joins (its
    cgroups, if any)."""
    plan: dict[str, Any] = {
        "rlimits": rlimits(limits, identity, cgroup=bool(cgroup_procs)),
        "uid": identity.uid,
        "gid": identity.gid,
        "parent_pid": os.getpid(),
        "cgroups": cgroup_procs or [],
    }
    if tier == "bubblewrap":
        plan["cwd"] = f"{SANDBOX_ROOT}/{WORKSPACE}"
        plan["env"] = _env("/home/sandbox", "/tmp")
        plan["wrap"] = bubblewrap_argv(layout, limits)
        plan["files"] = _accounts(identity)  # bound read-only from memory, by the launcher
        plan["confine"] = [*launcher_command(), "--confine"]
    else:
        plan["cwd"] = str(layout.workspace)
        home, tmp = layout.home_and_tmp
        plan["env"] = _env(str(home), str(tmp))
        plan["keep_dac_read_search"] = identity.switches and not all(
            _traversable_by_others(d) for d in python_dirs()
        )
        if tier == "landlock":
            plan["seccomp"] = True
            plan["landlock"] = {
                "read": [*map(str, python_dirs()), *_system_read_paths()],
                "write": [str(layout.root), str(layout.runtime)],
                "devices": list(_DEVICES),
            }
    return plan


def _accounts(identity: Identity) -> dict[str, str]:
    """passwd and group naming the sandbox's uid, so `ls -l` and `id` show "sandbox" rather
    than a raw number (and the host's accounts stay out of sight)."""
    uid = identity.uid if identity.uid is not None else os.getuid()
    gid = identity.gid if identity.gid is not None else os.getgid()
    accounts = {0: "root", uid: "sandbox", 65534: "nobody"}
    passwd = "".join(
        f"{name}:x:{number}:{gid if number == uid else number}:{name}:"
        f"{'/home/sandbox' if number == uid else '/nonexistent'}:/bin/sh\n"
        for number, name in accounts.items()
    )
    groups = {0: "root", gid: "sandbox", 65534: "nogroup"}
    group = "".join(f"{n}:x:{g}:\n" for g, n in groups.items())
    return dict(zip(_ACCOUNTS, (passwd, group), strict=True))


def _system_read_paths() -> list[str]:
    return ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", *_ETC_FILES]


def bubblewrap_argv(layout: Layout, limits: Limits) -> list[str]:
    bwrap = shutil.which("bwrap") or "bwrap"
    argv = [bwrap, *_unshare_args(), "--die-with-parent", "--new-session", "--clearenv"]
    made: set[str] = {"/"}

    def parents_of(path: str) -> list[str]:
        # bwrap creates missing parents as 0700, unreachable for the unprivileged uid.
        out = []
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                made.add(str(parent))
                out += ["--perms", "0755", "--dir", str(parent)]
        made.add(path)
        return out

    argv += ["--ro-bind", "/usr", "/usr"]
    made.add("/usr")
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        target = Path("/") / name
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), str(target)]
    for path in _ETC_FILES:
        if path in _ACCOUNTS:
            argv += parents_of(path)  # the launcher binds the file itself (see _accounts)
        elif os.path.exists(path):
            argv += [*parents_of(path), "--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    tmpfs_size = str(min(limits.file_bytes * 4, 1024**3))
    for path in ("/tmp", "/home/sandbox"):
        argv += [*parents_of(path), "--perms", "01777", "--size", tmpfs_size, "--tmpfs", path]
    for directory in [*python_dirs(), LAUNCHER.parent]:
        if str(directory) not in made and Path("/usr") not in directory.parents:
            argv += [*parents_of(str(directory)), "--ro-bind", str(directory), str(directory)]
    argv += [*parents_of(str(layout.runtime)), "--bind", str(layout.runtime), str(layout.runtime)]
    argv += ["--bind", str(layout.root), SANDBOX_ROOT]
    argv += ["--chdir", f"{SANDBOX_ROOT}/{WORKSPACE}"]
    if _is_root():
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return argv  # the launcher adds the files it binds, "--" and itself
