"""The Sandbox conformance suite: what every implementation must do, as a user sees it.

Not collected on its own: a test module subclasses `SandboxConformance` (named Test...) and
may set `sandbox_ids`; the `sandbox` and `sandbox_factory` fixtures come from conftest.py.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from jupyter_interactions.errors import InteractionsError, NotFoundError, RequestError
from jupyter_interactions.sandbox.base import RunResult, Sandbox

# A 1x1 transparent PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4"
        "890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
).decode()


class SandboxConformance:
    pytestmark = pytest.mark.asyncio(loop_scope="session")

    async def test_state_persists_between_runs_and_output_streams(self, sandbox: Sandbox) -> None:
        assert sandbox.isolation not in ("", "none")
        assert isinstance(sandbox.warnings, list)
        first = await sandbox.run("x = 41")
        assert first.ok, first.text()
        chunks: list[tuple[str, str]] = []
        result = await sandbox.run(
            "import sys\nprint(x + 1)\nprint('careful', file=sys.stderr)",
            on_output=lambda name, text: chunks.append((name, text)),
        )
        assert result.ok
        assert result.stdout == "42\n"
        assert "careful" in result.stderr
        assert ("stdout", "42\n") in chunks
        assert any(name == "stderr" and "careful" in text for name, text in chunks)

    async def test_an_exception_is_reported_and_the_sandbox_carries_on(
        self, sandbox: Sandbox
    ) -> None:
        result = await sandbox.run("values = [1]\n1 / 0")
        assert not result.ok
        assert result.error is not None
        assert result.error.name == "ZeroDivisionError"
        assert "ZeroDivisionError" in result.text()
        after = await sandbox.run("print(values)")
        assert after.ok and after.stdout == "[1]\n"

    async def test_bash_runs_in_the_workspace_and_fails_on_nonzero_exit(
        self, sandbox: Sandbox
    ) -> None:
        chunks: list[str] = []
        result = await sandbox.run(
            "pwd; echo to-stderr >&2; echo done",
            language="bash",
            on_output=lambda name, text: chunks.append(text),
        )
        assert result.ok, result.text()
        lines = result.stdout.splitlines()
        assert lines[0].endswith("/workspace") and lines[-1] == "done"
        assert "to-stderr" in result.stderr
        assert "done\n" in "".join(chunks)
        failed = await sandbox.run("echo partial; exit 3", language="bash")
        assert not failed.ok
        assert failed.stdout == "partial\n"
        assert failed.error is not None and "3" in failed.error.value

    async def test_a_step_ends_with_its_shell_and_nohup_keeps_a_process(
        self, sandbox: Sandbox
    ) -> None:
        # Held until the background sleep ended, the run would time out first.
        result = await sandbox.run("sleep 60 & echo started", language="bash", timeout=30)
        assert result.ok and result.stdout == "started\n", result.text()
        kept = await sandbox.run(
            "nohup sleep 60 > /dev/null 2>&1 & echo $! > kept.pid", language="bash"
        )
        assert kept.ok, kept.text()
        alive = await sandbox.run(
            "import os\npid = int(open('kept.pid').read())\nos.kill(pid, 0)\nos.kill(pid, 9)"
        )
        assert alive.ok, alive.text()

    async def test_variables_reach_python_and_bash_and_outlive_a_kernel_death(
        self, sandbox: Sandbox
    ) -> None:
        await sandbox.set_variables({"GREETING": "hello there", "EMPTY": ""})
        await sandbox.set_variables({"SECOND": "2"})
        python = await sandbox.run("import os\nprint(os.environ['GREETING'], os.environ['SECOND'])")
        assert python.stdout == "hello there 2\n", python.text()
        bash = await sandbox.run('echo "$GREETING|${EMPTY-unset}|$SECOND"', language="bash")
        assert bash.stdout == "hello there||2\n", bash.text()
        # Set without a trace in the kernel's input history.
        history = await sandbox.run("print(any('hello' + ' there' in cell for cell in In))")
        assert history.stdout == "False\n", history.text()
        died = await sandbox.run("import os\nos._exit(1)")
        assert died.error is not None and died.error.name == "KernelDied"
        after = await sandbox.run("import os\nprint(os.environ.get('GREETING'))")
        assert after.stdout == "hello there\n", after.text()

    async def test_rich_outputs_are_returned_as_mimebundles(self, sandbox: Sandbox) -> None:
        result = await sandbox.run(
            "from IPython.display import display\n"
            f"display({{'image/png': '{PNG}', 'text/plain': '<image>'}}, raw=True)\n"
            "6 * 7"
        )
        assert result.ok, result.text()
        assert any(bundle.get("image/png") == PNG for bundle in result.outputs)
        assert any(bundle.get("text/plain") == "42" for bundle in result.outputs)
        assert "42" in result.text()

    async def test_a_timeout_interrupts_and_keeps_state(self, sandbox: Sandbox) -> None:
        await sandbox.run("y = 7")
        result = await sandbox.run("while True:\n    pass", timeout=1.0)
        assert result.timed_out and not result.ok
        assert result.error is None  # interrupted, not restarted
        assert "time limit" in result.text()
        after = await sandbox.run("print(y)")
        assert after.stdout == "7\n"

    async def test_interrupt_stops_a_run_from_another_task(self, sandbox: Sandbox) -> None:
        await sandbox.run("z = 3")
        started = asyncio.Event()
        running = asyncio.ensure_future(
            sandbox.run(
                "import time\nprint('start', flush=True)\ntime.sleep(60)",
                on_output=lambda name, text: started.set(),
            )
        )
        await started.wait()  # the code is running: the interrupt reaches it, not its start
        await sandbox.interrupt()
        result: RunResult = await asyncio.wait_for(running, 15)
        assert result.error is not None and result.error.name == "KeyboardInterrupt"
        assert "start" in result.stdout
        assert (await sandbox.run("print(z)")).stdout == "3\n"

    async def test_files_written_by_either_side_are_seen_by_the_other(
        self, sandbox: Sandbox
    ) -> None:
        await sandbox.files.write("workspace/data/in.txt", b"hello")
        result = await sandbox.run(
            "text = open('data/in.txt').read()\n"
            "open('data/in.txt', 'a').write(' again')\n"
            "open('out.txt', 'w').write(text.upper())"
        )
        assert result.ok, result.text()
        assert await sandbox.files.read("workspace/out.txt") == b"HELLO"
        assert await sandbox.files.read("workspace/data/in.txt") == b"hello again"
        names = {info.path for info in await sandbox.files.list("workspace", recursive=True)}
        assert {"workspace/out.txt", "workspace/data/in.txt"} <= names
        info = await sandbox.files.stat("workspace/out.txt")
        assert info.type == "file" and info.size == 5
        with pytest.raises(NotFoundError):
            await sandbox.files.read("workspace/missing.txt")

    async def test_file_paths_cannot_leave_the_root(self, sandbox: Sandbox) -> None:
        for bad in ("../outside.txt", "workspace/../../outside.txt", "/etc/passwd"):
            with pytest.raises(RequestError):
                await sandbox.files.read(bad)
            with pytest.raises(RequestError):
                await sandbox.files.write(bad, b"x")
        made = await sandbox.run("import os\nos.symlink('/etc', 'escape')")
        assert made.ok, made.text()
        with pytest.raises(RequestError):
            await sandbox.files.read("workspace/escape/passwd")
        with pytest.raises(RequestError):
            await sandbox.files.write("workspace/escape/evil", b"x")

    async def test_hostile_entries_are_listed_as_what_they_are_and_never_opened(
        self, sandbox: Sandbox
    ) -> None:
        made = await sandbox.run(
            "import os, socket\n"
            "os.mkfifo('trap')\n"
            "os.symlink('loop_b', 'loop_a')\n"
            "os.symlink('loop_a', 'loop_b')\n"
            "listener = socket.socket(socket.AF_UNIX)\n"
            "listener.bind('sock')\n"
            "os.symlink('/etc', 'etc')\n"
            "os.makedirs('many')\n"
            "for i in range(2000):\n"
            "    open(f'many/{i:04d}', 'w').close()\n"
        )
        assert made.ok, made.text()
        listed = {info.path: info.type for info in await sandbox.files.list("workspace")}
        expected = {"trap": "fifo", "loop_a": "symlink", "sock": "socket", "etc": "symlink"}
        for name, kind in {**expected, "many": "directory"}.items():
            assert listed[f"workspace/{name}"] == kind, listed
        everything = [info.path for info in await sandbox.files.list("", recursive=True)]
        assert sum(path.startswith("workspace/many/") for path in everything) == 2000
        assert not any(path.startswith("workspace/etc/") for path in everything)
        assert (await sandbox.files.stat("workspace/loop_a")).type == "symlink"

        reasons = {"trap": "FIFO", "sock": "socket", "loop_a": "symbolic link"}
        for name, reason in reasons.items():
            with pytest.raises(RequestError, match=f"'workspace/{name}' is a {reason}"):
                await sandbox.files.read(f"workspace/{name}")
            with pytest.raises(RequestError, match=reason):
                await sandbox.files.write(f"workspace/{name}", b"replaced")
        with pytest.raises(RequestError, match="symbolic link"):
            await sandbox.files.read("workspace/etc/passwd")
        with pytest.raises(RequestError, match="symbolic link"):
            await sandbox.files.write("workspace/loop_a/inside.txt", b"x")
        # Nothing was opened or replaced, and the kernel was never held.
        after = await sandbox.run(
            "import stat\nprint(stat.S_ISFIFO(os.lstat('trap').st_mode), os.readlink('loop_a'))"
        )
        assert after.stdout == "True loop_b\n", after.text()

    async def test_stop_is_idempotent_and_the_context_manager_starts_and_stops(
        self, sandbox_factory
    ) -> None:
        sandbox = await sandbox_factory(start=False)
        async with sandbox as started:
            assert (await started.run("print('in')")).stdout == "in\n"
        await sandbox.stop()
        with pytest.raises(InteractionsError):
            await sandbox.run("print('after stop')")
