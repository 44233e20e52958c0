"""Load: 200 concurrent background `echo` interactions against one gateway, side by side in
one run through two clients:

- the kernel's SDK client, built by `jupyter_interactions.client.build_client` (so with
  _sdk.py's patches), one thread per interaction as background Jobs follow them in a kernel:
  `create(background=True)`, then `get(id, stream=True)` to the end;
- raw HTTP (aiohttp, one event loop): the same two requests, the SSE read by hand.

For each: time to first event (from the create call to the first event of the stream) and to
completion (to `interaction.completed`), p50 and p99; and the gateway's resident memory
(VmRSS from /proc) before, after each run, and its peak (VmHWM). Every interaction must end
`completed` with a whole event log, or the script fails.

Run: `python benchmarks/load.py` (or `make bench`); about half a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from jupyter_interactions.client import build_client
from jupyter_interactions.config import Secret
from jupyter_interactions.launch import Connection, serve_command

CONCURRENT = 200
INPUT = " ".join(f"word{i}" for i in range(40))  # echo answers in 8 deltas: 12 events each


def start_gateway(work: Path) -> tuple[subprocess.Popen[str], str, str]:
    token = secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_INTERACTIONS_CONFIG=str(work / "none.json"),
    )
    command = [*serve_command(token=token, data_dir=work / "data"), "--log-level=WARNING"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("Serving on "):
        proc.kill()
        raise SystemExit("the gateway did not start")
    return proc, line.removeprefix("Serving on ").strip(), token


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- through the kernel's SDK client -------------------------------------------------------------


def sdk_run(url: str, token: str) -> tuple[list[tuple[float, float]], float]:
    client = build_client(Connection(url, Secret(token)), "load-benchmark.ipynb")
    barrier = threading.Barrier(CONCURRENT)

    def one(_: int) -> tuple[float, float]:
        barrier.wait()  # all 200 start together
        t0 = time.perf_counter()
        job = client.interactions.create(model="echo", input=INPUT, background=True)
        first = None
        status = None
        for event in client.interactions.get(job.id, stream=True):
            first = first or time.perf_counter()
            if event.event_type == "interaction.completed":
                status = event.interaction.status
        assert status == "completed" and first is not None, (job.id, status)
        return (first - t0) * 1000, (time.perf_counter() - t0) * 1000

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(CONCURRENT) as pool:
            samples = list(pool.map(one, range(CONCURRENT)))
    finally:
        client.close()
    return samples, time.perf_counter() - t0


# -- raw HTTP ------------------------------------------------------------------------------------


async def raw_run(url: str, token: str) -> tuple[list[tuple[float, float]], float]:
    headers = {"x-goog-api-key": token}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as http:
        start = asyncio.Event()

        async def one() -> tuple[float, float]:
            await start.wait()
            t0 = time.perf_counter()
            body = {"model": "echo", "input": INPUT, "background": True}
            async with http.post("v1beta/interactions", json=body) as response:
                interaction_id = (await response.json())["id"]
            first = None
            last = b""
            params = {"stream": "true"}
            async with http.get(f"v1beta/interactions/{interaction_id}", params=params) as stream:
                async for line in stream.content:
                    if line.startswith(b"data: {"):
                        first = first or time.perf_counter()
                        last = line
            completed = json.loads(last[6:])
            assert completed["interaction"]["status"] == "completed" and first is not None
            return (first - t0) * 1000, (time.perf_counter() - t0) * 1000

        tasks = [asyncio.ensure_future(one()) for _ in range(CONCURRENT)]
        await asyncio.sleep(0.1)  # all 200 are waiting to start together
        t0 = time.perf_counter()
        start.set()
        samples = await asyncio.gather(*tasks)
        return list(samples), time.perf_counter() - t0


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="ji-load-"))
    gateway, url, token = start_gateway(work)
    try:
        # Warm up both paths (imports, first connections) before measuring anything.
        warmup = build_client(Connection(url, Secret(token)), "warmup")
        warmup.interactions.create(model="echo", input="warm up")
        warmup.close()
        rss = {"at start": memory_mb(gateway.pid)}
        runs = {}
        runs["SDK, kernel side (200 threads)"] = sdk_run(url, token)
        rss["after the SDK run"] = memory_mb(gateway.pid)
        runs["raw HTTP (aiohttp, 1 loop)"] = asyncio.run(raw_run(url, token))
        rss["after the raw run"] = memory_mb(gateway.pid)
        peak = memory_mb(gateway.pid, "VmHWM")
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)

    print(
        f"jupyter-interactions load: {CONCURRENT} concurrent background `echo` interactions "
        f"({os.cpu_count()} CPUs, loopback)\n"
    )
    print(f"{'':<34}{'first event ms':>16}{'':>8}{'completed ms':>14}{'':>8}{'wall s':>8}")
    print(f"{'':<34}{'p50':>16}{'p99':>8}{'p50':>14}{'p99':>8}")
    for label, (samples, wall) in runs.items():
        firsts = [first for first, _ in samples]
        dones = [done for _, done in samples]
        print(
            f"  {label:<32}{percentile(firsts, 0.5):>16.1f}{percentile(firsts, 0.99):>8.1f}"
            f"{percentile(dones, 0.5):>14.1f}{percentile(dones, 0.99):>8.1f}{wall:>8.2f}"
        )
    print("\ngateway memory (VmRSS): " + ", ".join(f"{v:.1f} MB {k}" for k, v in rss.items()))
    print(f"gateway peak (VmHWM): {peak:.1f} MB; all {2 * CONCURRENT} interactions completed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
