"""Sandbox benchmark: cold start per isolation tier, first step from the warm pool, the warm
step round trip, and a remote kernel's round trip, each beside its baseline in the same run.

    .venv/bin/python benchmarks/sandbox.py [--runs N]

Baselines: a bare `python -c pass` for cold starts; a direct jupyter_client execute on an
unsandboxed kernel for the warm round trips. Targets: first step from the pool under 50 ms;
warm round trip under 1.5x the direct execute; a remote run on a real `jupyter server` with
quick ACKs beside one without them (delayed ACKs cost ~40 ms a run).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from jupyter_interactions.sandbox import jupyter_remote
from jupyter_interactions.sandbox.base import Sandbox
from jupyter_interactions.sandbox.disk import DiskQuotas
from jupyter_interactions.sandbox.isolation import available_tiers
from jupyter_interactions.sandbox.jupyter import JupyterSandbox
from jupyter_interactions.sandbox.local import LocalSandbox
from jupyter_interactions.sandbox.pool import WarmPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' real servers
from tests.sandbox.jupyter_servers import jupyter_server

POOL_TARGET_SECONDS = 0.050
ROUND_TRIP_TARGET_RATIO = 1.5


async def median_of(runs: int, measure: Callable[[], Awaitable[float]]) -> float:
    return statistics.median([await measure() for _ in range(runs)])


def bare_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


async def cold_start(tier: str, base: Path) -> float:
    sandbox = LocalSandbox(root=Path(tempfile.mkdtemp(dir=base)), tier=tier)
    started = time.perf_counter()
    await sandbox.start()
    elapsed = time.perf_counter() - started
    await sandbox.stop()
    return elapsed


async def pool_first_step(tier: str, pool: WarmPool, base: Path) -> float:
    await pool.wait_ready(tier)
    disks = DiskQuotas()  # as the gateway's: takes the slot's quota disk, where there is one
    sandbox = LocalSandbox(root=Path(tempfile.mkdtemp(dir=base)), tier=tier, pool=pool, disks=disks)
    started = time.perf_counter()
    await sandbox.start()
    result = await sandbox.run("print(1)")
    elapsed = time.perf_counter() - started
    assert result.stdout == "1\n", result.text()
    await sandbox.stop()
    await disks.close()
    return elapsed


async def median_step(sandbox: Sandbox, steps: int) -> float:
    """The median time of `x += 1` runs in a started sandbox."""
    await sandbox.run("x = 0")
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        await sandbox.run("x += 1")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def sandbox_round_trip(tier: str, base: Path, steps: int) -> float:
    async with LocalSandbox(root=Path(tempfile.mkdtemp(dir=base)), tier=tier) as sandbox:
        return await median_step(sandbox, steps)


QUICKACK = jupyter_remote.QUICKACK


async def remote_round_trip(url: str, token: str, steps: int, quick_ack: bool) -> float:
    jupyter_remote.QUICKACK = QUICKACK if quick_ack else None
    try:
        async with JupyterSandbox(url, token=token) as sandbox:
            return await median_step(sandbox, steps)
    finally:
        jupyter_remote.QUICKACK = QUICKACK


async def direct_kernel_start() -> float:
    manager = AsyncKernelManager()
    started = time.perf_counter()
    await manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        return time.perf_counter() - started
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


async def direct_round_trip(steps: int) -> float:
    manager = AsyncKernelManager()
    await manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        await client.execute_interactive("x = 0", output_hook=lambda msg: None)
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            await client.execute_interactive("x += 1", output_hook=lambda msg: None)
            times.append(time.perf_counter() - started)
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
    return statistics.median(times)


def row(name: str, value: float, baseline: float | None = None, target: str = "") -> str:
    ratio = f"{value / baseline:6.2f}x" if baseline else " " * 7
    return f"  {name:<54} {value * 1000:8.1f} ms  {ratio}  {target}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per cold-start figure")
    parser.add_argument("--steps", type=int, default=50, help="steps per round-trip figure")
    args = parser.parse_args()
    tiers = available_tiers()
    print(f"isolation tiers available here: {', '.join(tiers)}")
    print(f"medians: cold starts n={args.runs}, pool n={args.runs}, round trips n={args.steps}")
    with tempfile.TemporaryDirectory(prefix="ji-bench-") as scratch:
        base = Path(scratch)
        bare = statistics.median(bare_python() for _ in range(max(args.runs, 10)))
        print("\ncold start (start until the kernel is ready)")
        print(row("bare `python -c pass` (baseline)", bare))
        direct_start = await median_of(args.runs, direct_kernel_start)
        print(row("unsandboxed jupyter_client kernel (reference)", direct_start, bare))
        for tier in tiers:
            value = await median_of(args.runs, lambda tier=tier: cold_start(tier, base))
            print(row(f"LocalSandbox tier={tier}", value, bare))

        print("\nfirst step from the warm pool (start + run `print(1)`)")
        pool = WarmPool(size=1, base_dir=base)
        try:
            for tier in tiers:
                value = await median_of(
                    args.runs, lambda tier=tier: pool_first_step(tier, pool, base)
                )
                met = "met" if value < POOL_TARGET_SECONDS else "NOT met"
                print(row(f"tier={tier}", value, target=f"target < 50 ms: {met}"))
        finally:
            await pool.close()

        print("\nwarm step round trip (`x += 1`)")
        direct = await direct_round_trip(args.steps)
        print(row("direct jupyter_client execute, unsandboxed (baseline)", direct))
        for tier in tiers:
            value = await sandbox_round_trip(tier, base, args.steps)
            ratio = value / direct
            met = "met" if ratio < ROUND_TRIP_TARGET_RATIO else "NOT met"
            print(row(f"LocalSandbox tier={tier}", value, direct, f"target < 1.5x: {met}"))

        print("\nremote round trip (`x += 1` on a real `jupyter server` kernel)")
        with jupyter_server(base / "remote") as server:
            slow = await remote_round_trip(server.url, server.token, args.steps, False)
            print(row("JupyterSandbox, delayed ACKs (baseline)", slow, direct))
            quick = await remote_round_trip(server.url, server.token, args.steps, True)
            print(row("JupyterSandbox, quick ACKs", quick, slow))


if __name__ == "__main__":
    asyncio.run(main())
