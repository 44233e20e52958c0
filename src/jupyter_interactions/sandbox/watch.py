"""`LimitWatch`: ends a run when its sandbox crosses a limit its cgroup counts.

During a run it watches the CPU time of all the sandbox's processes against the run's budget
(from the cgroup, so kernel start and earlier runs do not count) and the kernel's OOM kills for
the memory limit (a notification, not a poll). After the run it tells whether the process
limit refused a fork. The CPU check is a timer set for the earliest moment the budget could be
spent (what is left, divided by the CPUs the sandbox may use): a handful of reads per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from .cgroups import OomNotifier, SandboxCgroup

__all__ = ["CPU", "MEMORY", "PROCESSES", "LimitWatch"]

CPU, MEMORY, PROCESSES = "cpu", "memory", "processes"
_SHORTEST_CHECK = 0.02  # seconds: what the CPU time may overshoot by is this times the CPUs


class LimitWatch:
    """Watch one run. `crossed` resolves with CPU or MEMORY when the run must end."""

    def __init__(
        self, cgroup: SandboxCgroup, cpu_budget: float, notifier: OomNotifier | None
    ) -> None:
        self.cgroup = cgroup
        self.cpu_budget = cpu_budget
        self.notifier = notifier
        self.loop = asyncio.get_running_loop()
        self.crossed: asyncio.Future[str] = self.loop.create_future()
        self.cpus = max(len(os.sched_getaffinity(0)), 1)
        self._timer: asyncio.TimerHandle | None = None
        if notifier is not None:
            notifier.drain()  # what happened between runs is not this run's doing
        self.cpu_at_start = cgroup.cpu_seconds()
        self.oom_at_start = cgroup.oom_kills()
        self.forks_refused_at_start = cgroup.refused_forks()
        if notifier is not None:
            self.loop.add_reader(notifier.fileno(), self._on_oom)
        self._schedule(cpu_budget)

    def cpu_used(self) -> float:
        return self.cgroup.cpu_seconds() - self.cpu_at_start

    def _schedule(self, left: float) -> None:
        self._timer = self.loop.call_later(max(left / self.cpus, _SHORTEST_CHECK), self._check)

    def _check(self) -> None:
        left = self.cpu_budget - self.cpu_used()
        if left <= 0:
            self._cross(CPU)
        else:
            self._schedule(left)

    def _on_oom(self) -> None:
        assert self.notifier is not None
        self.notifier.drain()
        self._cross(MEMORY)

    def _cross(self, limit: str) -> None:
        if not self.crossed.done():
            self.crossed.set_result(limit)
        self.close()

    def crossed_after_run(self) -> str | None:
        """The limit the run crossed, all told: what `crossed` said, else MEMORY if the kernel
        killed for memory, PROCESSES if a fork was refused, else None (a run that ends a
        moment past its CPU budget, before the check, ended on its own)."""
        if self.crossed.done():
            return self.crossed.result()
        if self.cgroup.oom_kills() > self.oom_at_start:
            return MEMORY
        if self.cgroup.refused_forks() > self.forks_refused_at_start:
            return PROCESSES
        return None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.notifier is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(self.notifier.fileno())
