"""Hostile code in the local sandbox: each attack is stopped or blocked, reported in the run's
result, and the host (this event loop) and a second sandbox beside it carry on working.

Network attempts target only a listener this test opens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from jupyter_interactions.sandbox.base import RunResult, Sandbox

sandbox_ids = ("local-bubblewrap", "local-landlock", "local-limits")
pytestmark = pytest.mark.asyncio(loop_scope="session")


def _live_processes(uid: int, named: str) -> list[int]:
    """Processes of a uid with a given name, zombies (dead, unreaped) left out."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[1] == named and tail.split()[0] != "Z":
            found.append(int(pid))
    return found


@dataclasses.dataclass
class Scene:
    hostile: Sandbox
    neighbour: Sandbox

    async def attack(self, code: str, **options: Any) -> tuple[RunResult, int]:
        """Run hostile code while a ticker proves the host's event loop stays responsive."""
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        try:
            result = await self.hostile.run(code, **options)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        return result, ticks

    async def assert_everyone_carries_on(self) -> None:
        for sandbox in (self.neighbour, self.hostile):
            shell = await sandbox.run("echo alive", language="bash", timeout=20)
            assert shell.stdout == "alive\n", shell.text()
            python = await sandbox.run("print(6 * 7)", timeout=20)
            assert python.stdout == "42\n", python.text()
        assert subprocess.run(["true"], check=False).returncode == 0


@pytest_asyncio.fixture(loop_scope="session")
async def scene(sandbox_factory: Callable[..., Awaitable[Sandbox]]) -> AsyncIterator[Scene]:
    hostile, neighbour = await asyncio.gather(sandbox_factory(), sandbox_factory())
    yield Scene(hostile, neighbour)


async def test_a_fork_bomb_is_contained(scene: Scene) -> None:
    # The bomb's first shell returns at once; its forks hit the process limit. With a
    # cgroup, that limit ends the run and every process of the sandbox; without one, the
    # end of the step takes down the whole group. The timeout is long: only a last resort.
    cgroup = scene.hostile.kernel.cgroup  # type: ignore[attr-defined]
    refused = cgroup.refused_forks() if cgroup is not None else 0
    result, _ = await scene.attack(":(){ :|:& };:", language="bash", timeout=300)
    assert not result.timed_out
    if cgroup is not None and cgroup.refused_forks() > refused:  # else its group went first
        assert result.error is not None and "process limit (64 at once)" in result.error.value
    uid = scene.hostile.kernel.identity.uid  # type: ignore[attr-defined]
    if uid is not None:  # a uid of its own (the gateway runs as root): none of it is left
        assert _live_processes(uid, named="bash") == []
    await scene.assert_everyone_carries_on()


async def test_a_memory_bomb_gets_memory_error(scene: Scene) -> None:
    result, _ = await scene.attack("hog = bytearray(4 * 1024**3)")
    assert result.error is not None and result.error.name == "MemoryError"
    await scene.assert_everyone_carries_on()


async def test_an_infinite_loop_is_stopped_by_the_cpu_limit(scene: Scene) -> None:
    # Stopped by its CPU time (test_limits measures how much it got), not by the timeout.
    await scene.hostile.run("kept = 1")
    result, ticks = await scene.attack("while True:\n    pass", timeout=600)
    assert not result.timed_out
    assert result.error is not None and result.error.name == "KernelDied"
    assert "CPU time limit" in result.error.value
    assert "variables are lost" in result.text()
    assert ticks > 10
    gone = await scene.hostile.run("print(kept)")
    assert gone.error is not None and gone.error.name == "NameError"
    await scene.assert_everyone_carries_on()


async def test_a_disk_filler_hits_the_file_size_limit(scene: Scene) -> None:
    result, _ = await scene.attack(
        "with open('filler.bin', 'wb') as out:\n"
        "    for _ in range(64):\n"
        "        out.write(b'0' * 1024**2)\n"
    )
    assert result.error is not None
    assert "File too large" in result.error.value
    info = await scene.hostile.files.stat("workspace/filler.bin")
    assert info.size <= scene.hostile.limits.file_bytes
    await scene.assert_everyone_carries_on()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    yield server
    server.close()


def _accepted(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except (TimeoutError, OSError):
        return False
    connection.close()
    return True


async def test_a_network_connection_is_blocked_or_reported(
    scene: Scene, listener: socket.socket, sandbox_id: str
) -> None:
    port = listener.getsockname()[1]
    result, _ = await scene.attack(
        "import socket\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=3).close()\n"
        "print('connected')"
    )
    reached = await asyncio.to_thread(_accepted, listener)
    if sandbox_id == "local-limits":
        # This tier cannot block it; it says so, and the agent shows the warning.
        assert any("NOT isolated from the network" in w for w in scene.hostile.warnings)
        assert reached and result.stdout == "connected\n"
    else:
        assert not reached, "the sandbox reached a listener on the host"
        assert result.error is not None
        assert result.error.name in ("OSError", "PermissionError", "ConnectionRefusedError")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inbox:
            inbox.bind(("127.0.0.1", 0))
            inbox.settimeout(0.5)
            udp = await scene.hostile.run(
                "import socket\n"
                "socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                f".sendto(b'x', ('127.0.0.1', {inbox.getsockname()[1]}))"
            )
            with pytest.raises(TimeoutError):
                inbox.recv(16)
        if sandbox_id == "local-landlock":
            assert udp.error is not None and udp.error.name == "PermissionError"
    await scene.assert_everyone_carries_on()


async def test_files_outside_the_root_are_out_of_reach(
    scene: Scene, tmp_path: Path, sandbox_id: str
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host only")
    secret.chmod(0o644)
    result, _ = await scene.attack(f"print(open({str(secret)!r}).read())\nopen('/usr/evil', 'w')")
    if sandbox_id == "local-limits":
        assert any("NOT isolated" in w for w in scene.hostile.warnings)
    else:
        assert "host only" not in result.stdout
        assert result.error is not None
        assert result.error.name in ("FileNotFoundError", "PermissionError")
    assert not Path("/usr/evil").exists()
    await scene.assert_everyone_carries_on()
