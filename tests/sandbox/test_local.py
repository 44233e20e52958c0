"""LocalSandbox specifics beyond the conformance suite: tier choice, the kernel's environment,
CPU budgets per run, restarts after an ignored interrupt, and no process left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_interactions.errors import RequestError, SandboxError, SandboxUnavailable
from jupyter_interactions.sandbox import isolation
from jupyter_interactions.sandbox.base import Limits
from jupyter_interactions.sandbox.isolation import available_tiers
from jupyter_interactions.sandbox.local import LocalSandbox

TIERS = ["bubblewrap", "landlock", "limits"]


def _need(tier: str) -> None:
    if tier not in available_tiers():
        pytest.skip(f"isolation tier {tier!r} does not work on this machine")


def _processes_of(uid: int) -> list[int]:
    """Live processes of a uid. Zombies are dead: killed orphans wait there for an init
    that reaps them (this machine's pid 1 may never do so)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid != uid:
                    continue
                state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A PATH without bwrap: detection really runs and really finds nothing."""
    monkeypatch.setenv("PATH", "/nonexistent")
    isolation.bubblewrap_works.cache_clear()
    yield
    monkeypatch.undo()
    isolation.bubblewrap_works.cache_clear()


def test_auto_picks_the_strongest_tier_and_limits_is_always_there() -> None:
    tiers = available_tiers()
    assert tiers[-1] == "limits"
    assert list(tiers) == [t for t in TIERS if t in tiers]
    assert isolation.choose_tier("auto") == tiers[0]
    with pytest.raises(SandboxUnavailable, match="use one of"):
        isolation.choose_tier("docker")


async def test_a_forced_tier_that_cannot_work_says_what_to_do(
    without_bubblewrap: None, tmp_path: Path
) -> None:
    assert "bubblewrap" not in available_tiers()
    sandbox = LocalSandbox(root=tmp_path / "env", tier="bubblewrap")
    with pytest.raises(SandboxUnavailable, match="tier='auto'"):
        await sandbox.start()
    await sandbox.stop()


async def test_run_before_start_and_unknown_languages_are_refused(tmp_path: Path) -> None:
    sandbox = LocalSandbox(root=tmp_path / "env")
    with pytest.raises(SandboxError, match="start"):
        await sandbox.run("print(1)")
    async with sandbox:
        with pytest.raises(RequestError, match="python"):
            await sandbox.run("puts 1", language="ruby")  # type: ignore[arg-type]


@pytest.mark.parametrize("tier", TIERS)
async def test_the_kernel_gets_a_minimal_private_environment(
    tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need(tier)
    monkeypatch.setenv("GEMINI_API_KEY", "host-secret-value")
    sandbox = LocalSandbox(tier=tier)  # no root: a temporary one, removed at stop
    async with sandbox:
        assert sandbox.isolation == tier
        assert sandbox.root is not None and (sandbox.root / "workspace").is_dir()
        result = await sandbox.run(
            "import os, tempfile\n"
            "print(sorted(os.environ))\n"
            "print(os.path.expanduser('~'), tempfile.gettempdir())\n"
            "open(os.path.join(os.path.expanduser('~'), 'x'), 'w').write('home is writable')"
        )
        assert result.ok, result.text()
        assert "GEMINI_API_KEY" not in result.stdout
        assert "host-secret-value" not in result.text()
        home, tmp = result.stdout.splitlines()[1].split()
        assert home not in ("/root", os.path.expanduser("~"))
        assert tmp != "/tmp" or tier == "bubblewrap"  # bubblewrap's /tmp is a private tmpfs
        assert (sandbox.warnings != []) == (tier == "limits")
    assert not sandbox.root.exists()


@pytest.mark.parametrize("tier", TIERS)
async def test_stop_leaves_no_process_behind(tier: str, tmp_path: Path) -> None:
    _need(tier)
    sandbox = LocalSandbox(root=tmp_path / "env", tier=tier)
    await sandbox.start()
    assert sandbox.kernel is not None
    kernel_pid = sandbox.kernel.runner.pid
    uid = sandbox.kernel.identity.uid
    started = await sandbox.run(
        "sleep 300 & disown; setsid sleep 301 & python3 -c 'import os; os.fork(); "
        '__import__("time").sleep(302)\' &',
        language="bash",
    )
    assert started.ok, started.text()
    await sandbox.stop()
    await sandbox.stop()  # idempotent
    assert kernel_pid is not None and not os.path.exists(f"/proc/{kernel_pid}/cmdline")
    if uid is not None:
        assert _processes_of(uid) == []


async def test_each_run_gets_its_own_cpu_budget(tmp_path: Path) -> None:
    async with LocalSandbox(root=tmp_path / "env", limits=Limits(cpu_seconds=1)) as sandbox:
        burn = "import time\nend = time.process_time() + 0.7\nwhile time.process_time() < end: pass"
        for _ in range(2):  # 1.4 s in all: more than one budget, less than one per run
            result = await sandbox.run(burn)
            assert result.ok, result.text()


async def test_code_that_ignores_the_interrupt_gets_its_kernel_restarted(tmp_path: Path) -> None:
    sandbox = LocalSandbox(root=tmp_path / "env", interrupt_grace=1.0)
    async with sandbox:
        await sandbox.run("kept = 1")
        result = await sandbox.run(
            "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
            timeout=1.0,
        )
        assert result.timed_out
        assert result.error is not None and result.error.name == "KernelRestarted"
        assert "variables are lost" in result.error.value
        assert sandbox.restarts == 1
        after = await sandbox.run("print(kept)")
        assert after.error is not None and after.error.name == "NameError"
        assert (await sandbox.run("print('fresh')")).stdout == "fresh\n"


async def test_the_sandbox_user_has_a_name_in_bubblewrap(tmp_path: Path) -> None:
    _need("bubblewrap")
    async with LocalSandbox(root=tmp_path / "env", tier="bubblewrap") as sandbox:
        result = await sandbox.run(
            "touch made; ls -l made; id -un; id -gn; cut -d: -f1 /etc/passwd", language="bash"
        )
        assert result.ok, result.text()
        listing, user, group, *accounts = result.stdout.splitlines()
        assert listing.split()[2:4] == ["sandbox", "sandbox"]
        assert user == group == "sandbox"
        assert accounts == ["root", "sandbox", "nobody"]  # not the host's accounts


# Not "landlock": its kernel cannot read /proc, to see which processes hold the output and
# whether they are still running, so it hangs up the whole group when the shell exits.
@pytest.mark.parametrize("tier", ["bubblewrap", "limits"])
async def test_nohup_keeps_a_process_that_had_not_run_when_the_shell_ended(
    tier: str, tmp_path: Path
) -> None:
    # What a busy machine does to `nohup server > log 2>&1 &`, made certain: the background
    # process is still running (a counting loop, where the scheduler may leave a forked shell)
    # and holding the step's output when the shell exits; then it redirects and ignores
    # SIGHUP. The end of the step must wait for a holder that is still running, not hang it up.
    _need(tier)
    async with LocalSandbox(root=tmp_path / "env", tier=tier) as sandbox:
        kept = await sandbox.run(
            "{ i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done\n"
            "  exec nohup sleep 60 > /dev/null 2>&1; } & echo $! > kept.pid",
            language="bash",
        )
        assert kept.ok, kept.text()
        alive = await sandbox.run(
            "import os\npid = int(open('kept.pid').read())\nos.kill(pid, 0)\nos.kill(pid, 9)"
        )
        assert alive.ok, alive.text()
