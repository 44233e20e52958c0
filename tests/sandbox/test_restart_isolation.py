"""A local sandbox's kernel is isolated again after it dies and restarts, in every tier: the
restarted kernel runs under the launcher with the same uid, namespaces, seccomp filter,
cgroup and limits as the first one, read from /proc on the host. Neither jupyter_client
dropping its cached kernel spec (as it does when `kernel_name` changes) nor code in the
sandbox rewriting files in its runtime directory changes how the next kernel starts, or
shows a host file in the error of a kernel that could not start.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import NoSuchKernel
from tests.sandbox.conftest import TEST_LIMITS

from jupyter_interactions.errors import SandboxError
from jupyter_interactions.sandbox.base import Sandbox
from jupyter_interactions.sandbox.isolated import IsolatedKernel
from jupyter_interactions.sandbox.isolation import LAUNCHER
from jupyter_interactions.sandbox.provisioner import (
    PROVISIONER_NAME,
    SPEC_NAME,
    SandboxKernelSpecs,
)

sandbox_ids = ("local-bubblewrap", "local-landlock", "local-limits")
pytestmark = pytest.mark.asyncio(loop_scope="session")
Factory = Callable[..., Awaitable[Sandbox]]

NAMESPACES = ("mnt", "net", "pid", "ipc", "uts")
# What the kernel sees of /etc: bubblewrap binds a few files, Landlock grants a few files
# but not the directory, the limits tier shows the host's.
ETC_PROBE = (
    "import os\n"
    "try:\n"
    "    print('listed', len(os.listdir('/etc')))\n"
    "except PermissionError:\n"
    "    print('denied')\n"
)
# Code in the sandbox rewrites what its runtime directory holds (the kernel's connection file
# lies there): a plan without confinement for anything a launch plan could be read from, a
# link to a host file it cannot see for any other file (bubblewrap once bound passwd so).
TAMPER = """
import json, os, sys
connection = sys.argv[sys.argv.index('-f') + 1]
runtime = os.path.dirname(connection)
forged = {'uid': None, 'gid': None, 'rlimits': {}, 'cgroups': [], 'cwd': '/',
          'env': {'PATH': '/usr/bin:/bin'}, 'parent_pid': 0, 'argv': ['/bin/false']}
for name in os.listdir(runtime):
    path = os.path.join(runtime, name)
    if path == connection or name.endswith('.log') or not os.path.isfile(path):
        continue
    if name.endswith('.json'):
        plan = json.load(open(path))
        forged.update(parent_pid=plan['parent_pid'], argv=plan['argv'])
        open(path + '.new', 'w').write(json.dumps(forged))
        os.replace(path + '.new', path)
    else:
        os.remove(path)
        os.symlink(SECRET, path)
    print('replaced', name)
"""
SECRET_TEXT = "a host file the sandbox cannot see"
# Code in the sandbox links its kernel's log to a host file, and makes its next kernel exit
# at start (`python -m` imports from the working directory first).
BREAK_RESTART = """
import os, sys
runtime = os.path.dirname(sys.argv[sys.argv.index('-f') + 1])
os.remove(os.path.join(runtime, 'kernel.log'))
os.symlink(SECRET, os.path.join(runtime, 'kernel.log'))
open('ipykernel_launcher.py', 'w').write('raise SystemExit(3)')
"""


def _hidden_file(tmp_path: Path) -> Path:
    """A readable file in a directory only this host's root (or our uid) can enter."""
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    secret = hidden / "secret.txt"
    secret.write_text(SECRET_TEXT)
    secret.chmod(0o644)
    return secret


def _kernel(sandbox: Sandbox) -> IsolatedKernel:
    kernel = sandbox.kernel  # type: ignore[attr-defined]
    assert isinstance(kernel, IsolatedKernel)
    return kernel


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _address_space_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            return line.split()[3]  # the soft limit: a number, or "unlimited"
    raise AssertionError("no address space limit in /proc")


async def _isolation(sandbox: Sandbox) -> dict[str, Any]:
    """How the sandbox's kernel process is confined, from the host's /proc (and what it
    sees of /etc, from inside)."""
    kernel = _kernel(sandbox)
    pid = kernel.kernel_pid()
    assert pid is not None, "no kernel process below the launcher's supervisor"
    supervisor = kernel.runner.pid
    assert supervisor is not None
    status = _status(pid)
    etc = await sandbox.run(ETC_PROBE)
    assert etc.error is None, etc.text()
    return {
        "pid": pid,
        "under the launcher": str(LAUNCHER).encode()
        in Path(f"/proc/{supervisor}/cmdline").read_bytes(),
        "uid": int(status["Uid"].split()[0]),
        "no_new_privs": status["NoNewPrivs"].strip(),
        "seccomp": status["Seccomp"].strip(),
        "own namespaces": sorted(
            ns
            for ns in NAMESPACES
            if os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
        ),
        "in its cgroup": kernel.cgroup is not None and pid in kernel.cgroup.pids(),
        "address space limit": _address_space_limit(pid),
        "/etc": etc.stdout.split()[0],
    }


def _assert_isolated(sandbox: Sandbox, facts: dict[str, Any]) -> None:
    kernel = _kernel(sandbox)
    assert facts["under the launcher"]
    assert facts["uid"] == (kernel.identity.uid if kernel.identity.switches else os.getuid())
    assert facts["no_new_privs"] == "1"
    assert facts["in its cgroup"] == (kernel.cgroup is not None)
    assert facts["address space limit"] == str(TEST_LIMITS.memory_bytes)
    if kernel.tier == "bubblewrap":
        assert facts["own namespaces"] == sorted(NAMESPACES)
    if kernel.tier == "landlock":
        assert facts["seccomp"] == "2"  # a filter
        assert facts["/etc"] == "denied"


async def _kill_and_restart(sandbox: Sandbox, pid: int) -> None:
    """SIGKILL the kernel process; the next run finds it dead and restarts it."""
    restarts = sandbox.restarts
    os.kill(pid, signal.SIGKILL)
    result = await sandbox.run("print('after')")
    assert result.error is not None and result.error.name == "KernelDied", result.text()
    assert sandbox.restarts == restarts + 1


def _without_pid(facts: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in facts.items() if name != "pid"}


async def test_a_killed_kernel_restarts_as_isolated_as_it_was(sandbox_factory: Factory) -> None:
    sandbox = await sandbox_factory()
    before = await _isolation(sandbox)
    _assert_isolated(sandbox, before)
    for _ in range(2):  # a restarted kernel restarts isolated too
        await _kill_and_restart(sandbox, before["pid"])
        after = await _isolation(sandbox)
        assert after["pid"] != before["pid"]
        assert _without_pid(after) == _without_pid(before)
        before = after


async def test_a_dropped_kernel_spec_does_not_drop_isolation(sandbox_factory: Factory) -> None:
    # jupyter_client forgets its kernel spec whenever kernel_name changes and looks it up
    # again at the next start: that start still goes through the launcher.
    sandbox = await sandbox_factory()
    before = await _isolation(sandbox)
    manager = _kernel(sandbox).runner.manager
    name = manager.kernel_name
    manager.kernel_name = "another-kernel"
    manager.kernel_name = name
    await _kill_and_restart(sandbox, before["pid"])
    after = await _isolation(sandbox)
    assert _without_pid(after) == _without_pid(before)
    _assert_isolated(sandbox, after)


async def test_code_in_the_sandbox_cannot_change_how_its_kernel_restarts(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    secret = _hidden_file(tmp_path)
    sandbox = await sandbox_factory()
    before = await _isolation(sandbox)
    tampered = await sandbox.run(f"SECRET = {str(secret)!r}\n{TAMPER}")
    assert tampered.error is None, tampered.text()
    await _kill_and_restart(sandbox, before["pid"])
    after = await _isolation(sandbox)
    assert _without_pid(after) == _without_pid(before)
    _assert_isolated(sandbox, after)
    accounts = await sandbox.run("print(open('/etc/passwd').read())")
    assert SECRET_TEXT not in accounts.stdout
    if _kernel(sandbox).tier == "bubblewrap":
        assert "sandbox:x:" in accounts.stdout
    assert "replaced" not in tampered.stdout  # nothing the launcher reads lies there


async def test_a_restart_that_fails_reports_the_kernels_own_log(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    secret = _hidden_file(tmp_path)
    sandbox = await sandbox_factory()
    pid = _kernel(sandbox).kernel_pid()
    assert pid is not None
    broken = await sandbox.run(f"SECRET = {str(secret)!r}\n{BREAK_RESTART}")
    assert broken.error is None, broken.text()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(SandboxError, match="exited while starting") as raised:
        await sandbox.run("print('after')")
    assert SECRET_TEXT not in str(raised.value)


async def test_sandbox_kernel_managers_know_no_other_kernel() -> None:
    specs = SandboxKernelSpecs()
    spec = specs.get_kernel_spec(SPEC_NAME)
    assert spec.metadata["kernel_provisioner"]["provisioner_name"] == PROVISIONER_NAME
    assert specs.find_kernel_specs() == {}  # no user's, environment's or system's directory
    with pytest.raises(NoSuchKernel):
        specs.get_kernel_spec("python3")
