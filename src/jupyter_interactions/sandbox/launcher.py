"""The sandbox launcher: supervises the sandbox, applies a tier's rules, then execs the kernel.

Run as `python -I -S launcher.py` with its plan (`isolation.py` writes it, the provisioner
hands it over) as JSON in the environment variable JUPYTER_INTERACTIONS_SANDBOX_PLAN; standard
library only (ctypes), so it starts fast and needs nothing importable. The plan never lies in
a file: the sandbox can write to its runtime directory, and a plan it rewrote would be obeyed,
outside the sandbox, at the next restart. The plan says what to do:

1. Supervise: fork. This process stays outside the sandbox as its supervisor: a child
   subreaper that reaps every process the sandbox orphans (this machine's init may not), and,
   when the sandbox's top process ends or on SIGTERM (also sent when the gateway dies), kills
   every process left and exits as that process did.
2. In the child: join the sandbox's cgroups; then either exec bubblewrap (`wrap`), which runs
   this launcher again as `launcher.py --confine FD`, FD a pipe holding the plan (bubblewrap
   clears the environment; the passwd and group it binds come through pipes too), or confine
   at once.
3. Confine: no_new_privs, resource limits, Landlock, seccomp, dropping to an unprivileged uid,
   parent-death signal, child subreaper, then `execve` of the kernel with a minimal env.
   Landlock and the uid change must come after every file the launcher itself needs is open.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import resource
import signal
import struct
import sys

TYPE_CHECKING = False  # typing stays unimported: this script starts as fast as it can
if TYPE_CHECKING:
    from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
SECCOMP_MODE_FILTER = 2

CAP_DAC_READ_SEARCH = 2

# --- Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every arch.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_TRUNCATE = 1 << 14
FS_IOCTL_DEV = 1 << 15
# Everything a path rule can grant, per ABI version (v2 adds REFER, v3 TRUNCATE, v5 IOCTL_DEV).
_FS_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_FS_ALL_LATEST = (1 << 16) - 1
# Rights that make sense on a regular file (others make add_rule fail with EINVAL).
_FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1


def landlock_abi() -> int:
    """The running kernel's Landlock ABI version, 0 if Landlock is unavailable."""
    result = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(result), 0)


def _fs_all(abi: int) -> int:
    return _FS_ALL_BY_ABI.get(abi, _FS_ALL_LATEST)


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def apply_landlock(read: list[str], write: list[str], devices: list[str], deny_tcp: bool) -> None:
    """Only `read` paths readable, `write` paths writable; TCP bind/connect denied (ABI>=4);
    signals and abstract unix sockets scoped to the sandbox (ABI>=6)."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available in this kernel")
    fs_all = _fs_all(abi)
    net = (NET_BIND_TCP | NET_CONNECT_TCP) if (deny_tcp and abi >= 4) else 0
    scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("QQQ", fs_all, net, scoped)
    elif abi >= 4:
        attr = struct.pack("QQ", fs_all, net)
    else:
        attr = struct.pack("Q", fs_all)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(
        _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)), 0),
        "landlock_create_ruleset",
    )
    grants = [(p, FS_READ) for p in read] + [(p, fs_all) for p in write]
    grants += [(p, FS_READ_FILE | FS_WRITE_FILE | (fs_all & FS_IOCTL_DEV)) for p in devices]
    for path, access in grants:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # absent on this system: nothing to grant
        try:
            if not os.path.isdir(path):
                access &= _FS_FILE_RIGHTS
            rule = ctypes.create_string_buffer(struct.pack("=Qi", access & fs_all, fd), 12)
            _check(
                _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, rule, 0),
                f"landlock_add_rule({path})",
            )
        finally:
            os.close(fd)
    _check(_libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    os.close(ruleset)


# --- seccomp: a hand-assembled classic BPF filter. It refuses UDP, raw and packet sockets
# and io_uring (which could open sockets behind the filter's back). TCP and netlink stay:
# libzmq creates AF_INET sockets and reads interfaces over netlink even with ipc transport;
# Landlock is what denies TCP connect and bind.
_ARCHES = {  # machine -> (AUDIT_ARCH, SYS_socket, SYS_io_uring_setup, has x32 ABI)
    "x86_64": (0xC000003E, 41, 425, True),
    "aarch64": (0xC00000B7, 198, 425, False),
}
_RET_ALLOW = 0x7FFF0000
_RET_EACCES = 0x00050000 | errno.EACCES
_LD_W_ABS, _JEQ_K, _JGE_K, _AND_K, _RET_K = 0x20, 0x15, 0x35, 0x54, 0x06


def seccomp_supported() -> bool:
    return platform.machine() in _ARCHES


def _seccomp_program() -> list[tuple[int, int, int, int]]:
    arch, sys_socket, sys_io_uring, x32 = _ARCHES[platform.machine()]
    deny, allow = "deny", "allow"
    # (code, jump-if-true label or 0, jump-if-false label or 0, k); labels resolved below.
    program: list[tuple[int | str, object, object, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 0, deny, arch),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if x32:
        program.append((_JGE_K, deny, 0, 0x40000000))
    program += [
        (_JEQ_K, deny, 0, sys_io_uring),
        (_JEQ_K, "socket", allow, sys_socket),
        ("socket", 0, 0, 0),
        (_LD_W_ABS, 0, 0, 16),  # args[0]: the address family
        (_JEQ_K, deny, 0, 17),  # AF_PACKET
        (_JEQ_K, "inet", 0, 2),  # AF_INET
        (_JEQ_K, "inet", allow, 10),  # AF_INET6
        ("inet", 0, 0, 0),
        (_LD_W_ABS, 0, 0, 24),  # args[1]: the socket type, with flags
        (_AND_K, 0, 0, 0xF),
        (_JEQ_K, allow, deny, 1),  # SOCK_STREAM only
        (allow, 0, 0, 0),
        (_RET_K, 0, 0, _RET_ALLOW),
        (deny, 0, 0, 0),
        (_RET_K, 0, 0, _RET_EACCES),
    ]
    labels: dict[object, int] = {}
    instructions: list[tuple[int, object, object, int]] = []
    for code, jt, jf, k in program:
        if isinstance(code, str):
            labels[code] = len(instructions)
        else:
            instructions.append((code, jt, jf, k))

    def offset(target: object, at: int) -> int:
        return 0 if target == 0 else labels[target] - at - 1

    return [(c, offset(jt, i), offset(jf, i), k) for i, (c, jt, jf, k) in enumerate(instructions)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def apply_seccomp() -> None:
    program = _seccomp_program()
    raw = b"".join(struct.pack("=HBBI", c, jt, jf, k) for c, jt, jf, k in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


# --- identity
class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_bounding_set(keep: int) -> None:
    for cap in range(64):
        if cap != keep and _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
            if ctypes.get_errno() == errno.EINVAL:
                break  # past the last capability this kernel knows
            # EPERM: no CAP_SETPCAP (inside bubblewrap); no_new_privs covers it there.


def become(uid: int, gid: int, keep_dac_read_search: bool) -> None:
    """Switch to uid/gid for good. keep_dac_read_search keeps one ambient capability, used
    only when the Python interpreter sits in a directory the new uid cannot traverse."""
    _drop_bounding_set(CAP_DAC_READ_SEARCH if keep_dac_read_search else -1)
    if keep_dac_read_search:
        _check(_libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keepcaps")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if keep_dac_read_search:
        bit = 1 << CAP_DAC_READ_SEARCH
        header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (_CapData * 2)(_CapData(bit, bit, bit), _CapData(0, 0, 0))
        _check(_libc.capset(ctypes.byref(header), data), "capset")
        _check(
            _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, 0, 0),
            "ambient capability",
        )


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (children of each of its threads)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(child) for child in handle.read().split()]
            except OSError:
                continue
            found.extend(children)
            queue.extend(children)
    return found


def _kill_below(pid: int) -> None:
    for process in _descendants(pid):
        try:
            os.kill(process, signal.SIGKILL)
        except OSError:
            pass


def _exit_as(status: int) -> None:
    """End this process the way the supervised one ended, so the gateway reads its cause."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [number])
        os.kill(os.getpid(), number)
        os._exit(128 + number)  # a signal whose default is not to terminate
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def supervise(gateway_pid: int) -> None:
    """Fork; return in the child (the sandbox). The parent reaps and cleans up (see above)
    and never returns."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != gateway_pid:
        sys.exit("the gateway exited before the sandbox started")
    me = os.getpid()
    ended: list[int] = []

    def stop(signum: int, frame: object) -> None:
        _kill_below(me)

    signal.signal(signal.SIGTERM, stop)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return
    while True:
        if ended:
            _kill_below(me)  # also what was being forked while the last kill went round
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child:
            ended.append(status)
    _exit_as(ended[0] if ended else 0)


def join_cgroups(procs_files: list[str]) -> None:
    for path in procs_files:
        with open(path, "w") as handle:
            handle.write("0")


def confine(plan: dict[str, Any]) -> None:
    """Apply the tier's rules to this process and exec the kernel."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for name, (soft, hard) in plan.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    parent = os.getppid()
    os.chdir(plan["cwd"])
    landlock = plan.get("landlock")
    if landlock:
        apply_landlock(landlock["read"], landlock["write"], landlock["devices"], True)
    if plan.get("seccomp"):
        apply_seccomp()
    if plan.get("uid") is not None:
        become(plan["uid"], plan["gid"], bool(plan.get("keep_dac_read_search")))
    # Set after the uid change, which clears it: the kernel dies with its supervisor.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit("the sandbox's supervisor exited before the kernel started")
    # Orphans of the code it runs become the kernel's children, for its bash helper to reap,
    # rather than zombies counted against the sandbox's process limit. Kept across execve.
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    argv = plan["argv"]
    os.execve(argv[0], argv, plan["env"])


PLAN_VARIABLE = "JUPYTER_INTERACTIONS_SANDBOX_PLAN"
_PIPE_CAPACITY = 65536  # Linux's default: each pipe is filled before anyone reads it


def _pipe(data: bytes) -> str:
    """An inheritable pipe holding `data`, for bubblewrap or the launcher inside it."""
    if len(data) >= _PIPE_CAPACITY:
        sys.exit(f"the sandbox's launch plan is too large ({len(data)} bytes)")
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    os.set_inheritable(read, True)
    return str(read)


def wrapped(plan: dict[str, Any]) -> list[str]:
    """bubblewrap's argv: its options, the files it binds read-only from memory (never
    from a path the sandbox could have replaced), then this launcher, to confine inside."""
    argv = list(plan["wrap"])
    for path, text in plan.get("files", {}).items():
        argv += ["--perms", "0644", "--ro-bind-data", _pipe(text.encode()), path]
    return [*argv, "--", *plan["confine"], _pipe(json.dumps(plan).encode())]


def main(arguments: list[str]) -> None:
    if arguments[:1] == ["--confine"]:  # inside bubblewrap
        with os.fdopen(int(arguments[1])) as pipe:
            inside = json.load(pipe)
        confine(inside)  # closed first: the kernel inherits no plan
    plan = json.loads(os.environ.pop(PLAN_VARIABLE))
    supervise(plan["parent_pid"])
    join_cgroups(plan.get("cgroups", []))
    if plan.get("wrap"):
        argv = wrapped(plan)
        os.execv(argv[0], argv)
    confine(plan)


if __name__ == "__main__":
    main(sys.argv[1:])
