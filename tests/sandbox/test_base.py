"""The Sandbox contract's own logic: `run` settles its arguments and hands them to the kind."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from jupyter_interactions.sandbox.base import CodeRun, Limits, RunResult, Sandbox


class _Idle(Sandbox):
    """A kind that starts and stops but runs nothing of its own."""

    kind = "idle"

    async def start(self) -> None: ...
    async def set_variables(self, variables: Mapping[str, str]) -> None: ...
    async def interrupt(self) -> None: ...
    async def stop(self) -> None: ...


class _Recorder(_Idle):
    """A kind that keeps what it was asked to run."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits=limits)
        self.runs: list[CodeRun] = []

    async def _run(self, run: CodeRun) -> RunResult:
        self.runs.append(run)
        return RunResult(stdout=run.code)


def _show(stream: str, text: str) -> None:
    print(stream, text)


async def test_the_kind_runs_the_call_with_its_timeout_settled() -> None:
    sandbox = _Recorder(Limits(wall_seconds=7.0))
    assert (await sandbox.run("1 + 1")).stdout == "1 + 1"
    await sandbox.run("echo hi", language="bash", timeout=2.5, on_output=_show)
    assert sandbox.runs == [
        CodeRun("1 + 1", "python", 7.0, None),
        CodeRun("echo hi", "bash", 2.5, _show),
    ]


async def test_a_kind_that_implements_no_run_says_so() -> None:
    with pytest.raises(NotImplementedError, match="_Idle implements neither _run nor run"):
        await _Idle().run("1 + 1")
